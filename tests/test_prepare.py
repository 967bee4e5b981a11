"""Per-chromosome preparation: contig harmonisation, panel/map checks, bad target files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from chromosched.errors import ChromoschedError
from chromosched_pipeline.imputation.prepare import main, prepare_chromosome
from chromosched_pipeline.vcfio import read_header_lines, write_bgzipped_vcf


def _inputs(cohort, chrom="chr22"):
    out = cohort.out_dir
    return cohort.target, out / "panel" / f"{chrom}.vcf.gz", out / "map" / f"{chrom}.map"


def _outputs(tmp_path):
    return tmp_path / "out" / "target.vcf.gz", tmp_path / "out" / "genetic.map"


def _left_behind(tmp_path):
    out = tmp_path / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_plain_target_contig_is_renamed_to_the_panels(tiny_cohort, tmp_path):
    target, panel, gmap = _inputs(tiny_cohort)
    vcf, out_map = _outputs(tmp_path)
    done = prepare_chromosome("22", target, panel, gmap, vcf, out_map)  # config may say "22" too
    assert (done.target_contig, done.panel_contig, done.map_contig) == ("22", "chr22", "chr22")
    assert done.n_samples == 50 and done.n_records == tiny_cohort.chromosomes[1].n_target_sites
    header = read_header_lines(vcf)
    assert header[1] == "##contig=<ID=chr22,length=256522>"
    with gzip.open(vcf, "rt") as fh:
        contigs = {line.split("\t", 1)[0] for line in fh if not line.startswith("#")}
    assert contigs == {"chr22"} and Path(f"{vcf}.tbi").is_file()
    assert {line.split("\t")[0] for line in out_map.read_text().splitlines()} == {"chr22"}


def test_sample_subset(tiny_cohort, tmp_path):
    target, panel, gmap = _inputs(tiny_cohort)
    keep = tmp_path / "keep.txt"
    keep.write_text("TGT0003\nTGT0001\n")
    vcf, out_map = _outputs(tmp_path)
    done = prepare_chromosome("chr22", target, panel, gmap, vcf, out_map, keep)
    assert done.n_samples == 2 and read_header_lines(vcf)[-1].split("\t")[9:] == ["TGT0003", "TGT0001"]
    keep.write_text("NOBODY\n")
    with pytest.raises(ChromoschedError, match="not in the file, e.g. NOBODY"):
        prepare_chromosome("chr22", target, panel, gmap, *_outputs(tmp_path / "x"), keep)


def test_chromosome_missing_from_panel_is_a_clear_error(tiny_cohort, tmp_path, capsys):
    target, panel, gmap = _inputs(tiny_cohort)
    vcf, out_map = _outputs(tmp_path)
    code = main(
        [
            "--chrom",
            "chr5",
            "--target",
            str(target),
            "--panel",
            str(panel),
            "--map",
            str(gmap),
            "--out-vcf",
            str(vcf),
            "--out-map",
            str(out_map),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        f"prepare: error: reference panel {panel}: chromosome chr5 is not in the panel (it has: chr22)"
    ]
    assert _left_behind(tmp_path) == []


def test_chromosome_missing_from_map_is_a_clear_error(tiny_cohort, tmp_path):
    target, panel, _ = _inputs(tiny_cohort)
    other_map = tiny_cohort.out_dir / "map" / "chr21.map"
    with pytest.raises(ChromoschedError, match="chromosome chr22 is not in the map \\(it has: chr21\\)"):
        prepare_chromosome("chr22", target, panel, other_map, *_outputs(tmp_path))
    assert _left_behind(tmp_path) == []


def test_truncated_target_is_an_error_and_leaves_nothing(tiny_cohort, tmp_path):
    target, panel, gmap = _inputs(tiny_cohort)
    data = target.read_bytes()
    bad = tmp_path / "cut.vcf.gz"
    bad.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ChromoschedError, match="truncated bgzip file"):
        prepare_chromosome("chr22", bad, panel, gmap, *_outputs(tmp_path))
    assert _left_behind(tmp_path) == []


def test_corrupt_block_inside_target_is_an_error_and_leaves_nothing(tiny_cohort, tmp_path):
    # Damage in the middle with the end-of-file block intact: found while reading the records.
    target, panel, gmap = _inputs(tiny_cohort)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    bad = tmp_path / "corrupt.vcf.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ChromoschedError, match="corrupt or truncated data"):
        prepare_chromosome("chr22", bad, panel, gmap, *_outputs(tmp_path))
    assert _left_behind(tmp_path) == []


def test_empty_target_is_an_error(tiny_cohort, tmp_path):
    _, panel, gmap = _inputs(tiny_cohort)
    empty = tmp_path / "empty.vcf.gz"
    write_bgzipped_vcf(empty, read_header_lines(tiny_cohort.target), [])
    with pytest.raises(ChromoschedError, match="no variant records \\(empty VCF\\)"):
        prepare_chromosome("chr22", empty, panel, gmap, *_outputs(tmp_path))
    assert _left_behind(tmp_path) == []


def test_plain_gzip_is_rejected_with_advice(tiny_cohort, tmp_path):
    _, panel, gmap = _inputs(tiny_cohort)
    plain = tmp_path / "plain.vcf.gz"
    with gzip.open(tiny_cohort.target, "rb") as src, gzip.open(plain, "wb") as dst:
        dst.write(src.read())
    with pytest.raises(ChromoschedError, match="plain gzip, not bgzip"):
        prepare_chromosome("chr22", plain, panel, gmap, *_outputs(tmp_path))


def test_unindexed_target_is_scanned(tiny_cohort, tmp_path):
    target, panel, gmap = _inputs(tiny_cohort)
    copy = tmp_path / "noindex.vcf.gz"
    copy.write_bytes(target.read_bytes())
    done = prepare_chromosome("chr22", copy, panel, gmap, *_outputs(tmp_path))
    assert done.n_records == tiny_cohort.chromosomes[1].n_target_sites
