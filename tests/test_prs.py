"""PRS allele matching and scoring on a hand-made dosage VCF with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from chromosched.errors import ChromoschedError
from chromosched_pipeline.prs import scores as prs
from chromosched_pipeline.vcfio import write_bgzipped_vcf

HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=chr1,length=10000>",
    '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dose">',
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3",
]
RECORDS = [
    ("100", "A", "G", ["0.5", "1", "2"]),
    ("200", "A", "C", ["0.1", "0.2", "0.3"]),  # split multi-allelic site: A>C ...
    ("200", "A", "T", ["1", "0", "0.5"]),  # ... and A>T
    ("300", "G", "A,T", ["0.5,0.25", "0,1", "1,1"]),  # unsplit multi-allelic record
    ("500", "C", "T", ["0.3", "0.6", "0.9"]),
    ("800", "A", "G", [".", "1", "0.5"]),  # one missing dosage
]
SCORES = """###PGS CATALOG SCORING FILE
#genome_build=GRCh37
chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight
1\t100\tG\tA\t1.0
1\t100\tA\tG\t2.0
1\t200\tT\tA\t1.0
1\t200\tA\tC\t0.5
1\t200\tA\t\t1.0
1\t300\tT\tG\t1.0
1\t300\tG\tA\t1.0
1\t500\tA\tG\t1.0
1\t500\tA\tT\t1.0
1\t700\tA\tG\t1.0
1\t800\tG\tA\t1.0
2\t100\tG\tA\t9.0
"""
EXPECTED_ROWS = [  # (status, contribution per sample)
    ("matched", [0.5, 1, 2]),  # G is ALT
    ("matched", [3, 2, 0]),  # A is REF: 2 * (2 - DS)
    ("matched", [1, 0, 0.5]),  # T from the A>T split record
    ("matched", [0.95, 0.9, 0.85]),  # REF vs C: 0.5 * (2 - DS_C)
    ("matched", [0.9, 1.8, 1.2]),  # REF, no other allele: 2 - DS_C - DS_T
    ("matched", [0.25, 1, 1]),  # second ALT of the multi-allelic record
    ("matched", [1.25, 1, 0]),  # REF of the multi-allelic record: 2 - both ALT doses
    ("flipped", [0.3, 0.6, 0.9]),  # A/G is T/C on the other strand: effect A = T
    ("allele_mismatch", [0, 0, 0]),  # A/T is strand-ambiguous: no flip tried, C/T does not fit
    ("absent", [0, 0, 0]),
    ("matched", [0.75, 1, 0.5]),  # missing dose -> mean of the others (plink2's default)
]


@pytest.fixture()
def scored(tmp_path):
    vcf = tmp_path / "imputed.vcf.gz"
    write_bgzipped_vcf(
        vcf,
        HEADER,
        [f"chr1\t{p}\tchr1:{p}:{r}:{a}\t{r}\t{a}\t.\tPASS\t.\tDS\t" + "\t".join(ds) for p, r, a, ds in RECORDS],
    )
    scores = tmp_path / "scores.txt"
    scores.write_text(SCORES)
    return vcf, scores, prs.partial_score(vcf, "chr1", prs.read_scoring_file(scores))


def test_partial_score_matches_hand_computed_values(scored):
    _, _, score = scored
    assert score.samples == ["S1", "S2", "S3"]
    assert [m.status for m in score.matches] == [s for s, _ in EXPECTED_ROWS]
    expected = np.sum([c for _, c in EXPECTED_ROWS], axis=0)
    assert np.allclose(score.sums, expected, atol=1e-6), (score.sums, expected)
    assert score.n_variants == 11 and score.n_matched == 9  # the chromosome-2 row is not counted here
    counts = score.counts()
    assert counts["flipped"] == 1 and counts["absent"] == 1 and counts["allele_mismatch"] == 1
    assert counts["effect_is_ref"] == 4


def test_partial_and_combine_files(scored, tmp_path):
    _, scores, score = scored
    partial, matches = tmp_path / "p" / "chr1.tsv", tmp_path / "p" / "chr1.matches.tsv"
    prs.write_partial(score, partial, matches)
    table = prs.combine_partials([partial], [matches], scores)
    assert table.samples == ["S1", "S2", "S3"] and table.n_matched == 9 and table.n_variants == 11
    assert table.n_other_chromosomes == 1
    assert np.allclose(table.prs, score.sums, atol=1e-8)
    out, summary = tmp_path / "prs.tsv", tmp_path / "summary.tsv"
    prs.write_prs_table(table, out, summary)
    lines = out.read_text().splitlines()
    assert lines[0] == "sample\tprs\tn_variants_matched\tn_variants\tmatch_rate"
    assert lines[1].split("\t")[2:] == ["9", "11", f"{9 / 11:.6f}"]
    rows = [line.split("\t") for line in summary.read_text().splitlines()]
    assert rows[1][:3] == ["chr1", "11", "9"] and rows[-1][:2] == ["not_processed", "1"]


def test_combine_rejects_mismatched_samples(tmp_path):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("sample\tchrom\tscore_sum\tn_matched\tn_variants\nS1\tchr1\t1\t1\t1\n")
    b.write_text("sample\tchrom\tscore_sum\tn_matched\tn_variants\nS2\tchr2\t1\t1\t1\n")
    with pytest.raises(ChromoschedError, match="samples differ"):
        prs.combine_partials([a, b])


def test_min_match_rate_fails_without_writing(scored, tmp_path, capsys):
    _, scores, score = scored
    partial = tmp_path / "chr1.tsv"
    prs.write_partial(score, partial)
    out = tmp_path / "prs.tsv"
    code = prs.main(["combine", "--partial", str(partial), "--out", str(out), "--min-match-rate", "0.95"])
    assert code == 2 and not out.exists()
    assert "below prs.min_match_rate=0.95" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        ("chr_name\tchr_position\teffect_allele\n1\t5\tA\n", "missing column(s) effect_weight"),
        ("rsID\teffect_allele\teffect_weight\nrs1\tA\t0.1\n", "rsID-only files are not supported"),
        ("chr_name\tchr_position\teffect_allele\teffect_weight\n1\tfive\tA\t0.1\n", "line 2: chr_position 'five'"),
        ("#only comments\n", "no header line"),
    ],
)
def test_bad_scoring_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ChromoschedError) as err:
        prs.read_scoring_file(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_harmonised_positions_and_gzip_are_read(tmp_path):
    import gzip

    path = tmp_path / "s.txt.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("#x\nhm_chr\thm_pos\teffect_allele\tother_allele\teffect_weight\nchr3\t10\ta\tg\t0.5\n")
    (row,) = prs.read_scoring_file(path)
    assert (row.chrom, row.pos, row.effect, row.other, row.weight) == ("chr3", 10, "A", "G", 0.5)
