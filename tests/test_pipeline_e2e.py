"""End-to-end: a real Snakemake run of the pipeline (real Beagle, real VCFs) on two small
simulated chromosomes, checked against plink2 and the simulated truth."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import pipeline_config, run_snakemake

CHROMS = ["chr21", "chr22"]
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def run(pipeline_run):
    workdir, proc = pipeline_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_outputs_exist_and_vcfs_are_indexed_with_contigs(run):
    for chrom in CHROMS:
        vcf = run / "results" / "imputed" / f"{chrom}.vcf.gz"
        assert Path(f"{vcf}.tbi").is_file()
        with gzip.open(vcf, "rt") as fh:
            header = [line for line in fh if line.startswith("##contig")]
        # Beagle writes no ##contig lines; they are restored with the panel's naming and length.
        assert len(header) == 1 and header[0].startswith(f"##contig=<ID={chrom},length=")
    for name in (
        "prs/prs.tsv",
        "prs/match_summary.tsv",
        "report/prs_distribution.png",
        "report/job_resources.tsv",
        "report/job_resources.png",
        "report/imputation_quality.png",
        "report/imputation_accuracy.tsv",
    ):
        assert (run / "results" / name).stat().st_size > 0, name
    # no temporary files left behind anywhere in the results
    assert not [p for p in (run / "results").rglob("*") if ".tmp" in p.name]


def test_heap_oom_was_retried_with_more_memory(run):
    for chrom in CHROMS:
        attempts = [
            json.loads(line) for line in (run / "logs" / "impute" / f"{chrom}.attempts.jsonl").read_text().splitlines()
        ]
        assert [a["kind"] for a in attempts] == ["heap_oom", "ok"], attempts
        assert attempts[0]["exit_code"] == 3 and attempts[0]["mem_mb"] == 100 and attempts[0]["heap_mb"] == 4
        assert attempts[1]["mem_mb"] == 200 and attempts[1]["heap_mb"] > attempts[0]["heap_mb"]
        assert attempts[1]["peak_rss_mb"] > 0
    table = {r["job"]: r for r in _tsv(run / "results" / "report" / "job_resources.tsv") if r["rule"] == "impute"}
    assert set(table) == set(CHROMS)
    assert all(r["attempts"] == "2" and r["heap_oom_attempts"] == "1" and r["mem_mb"] == "200" for r in table.values())


def _plink2_score_file(scores: Path, chroms: list[str], out: Path) -> None:
    """plink2 --score input built independently of our matcher: every scoring row becomes the
    variant IDs it could have in the panel (chr:pos:ref:alt, either allele as REF, and the
    complemented alleles unless A/T or C/G); plink2 keeps the IDs that exist."""
    names = {c[3:] for c in chroms}
    lines, seen = [], set()
    with open(scores) as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh if not line.startswith("#")]
    for chr_name, pos, effect, other, weight in rows[1:]:
        if chr_name not in names:
            continue
        candidates = [(effect, other)]
        if COMPLEMENT.get(effect) != other:
            candidates.append((COMPLEMENT[effect], COMPLEMENT[other]))
        for eff, oth in candidates:
            for ref, alt in ((oth, eff), (eff, oth)):
                vid = f"chr{chr_name}:{pos}:{ref}:{alt}"
                if vid not in seen:
                    seen.add(vid)
                    lines.append(f"{vid}\t{eff}\t{weight}")
    out.write_text("\n".join(lines) + "\n")


@pytest.mark.skipif(
    shutil.which("plink2") is None or shutil.which("bcftools") is None, reason="plink2/bcftools not installed"
)
def test_prs_equals_plink2_score(run, tiny_cohort, tmp_path):
    merged = tmp_path / "all.vcf.gz"
    subprocess.run(
        ["bcftools", "concat", "-Oz", "-o", str(merged)]
        + [str(run / "results" / "imputed" / f"{c}.vcf.gz") for c in CHROMS],
        check=True,
        capture_output=True,
    )
    score_file = tmp_path / "plink.score"
    _plink2_score_file(tiny_cohort.scores, CHROMS, score_file)
    subprocess.run(
        [
            "plink2",
            "--vcf",
            str(merged),
            "dosage=DS",
            "--score",
            str(score_file),
            "1",
            "2",
            "3",
            "cols=+scoresums",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "plink"),
        ],
        check=True,
        capture_output=True,
    )
    with open(tmp_path / "plink.sscore") as fh:
        rows = [line.split() for line in fh]
    col = rows[0].index("SCORE1_SUM")
    plink = {r[0]: float(r[col]) for r in rows[1:]}
    ours = {r["sample"]: float(r["prs"]) for r in _tsv(run / "results" / "prs" / "prs.tsv")}
    assert set(ours) == set(plink) and len(ours) == 50
    diff = max(abs(ours[s] - plink[s]) for s in ours)
    assert diff < 1e-4, diff
    # the scores must vary across samples, or the comparison would be vacuous
    assert np.std(list(ours.values())) > 0.05


def test_match_rate_counts_flips_swaps_and_missing(run):
    summary = {r["chrom"]: r for r in _tsv(run / "results" / "prs" / "match_summary.tsv")}
    total = summary["all"]
    assert int(total["flipped"]) > 0 and int(total["effect_is_ref"]) > 0 and int(total["absent"]) > 0
    assert int(total["n_matched"]) == int(total["matched"]) + int(total["flipped"])
    prs = _tsv(run / "results" / "prs" / "prs.tsv")
    rate = int(total["n_matched"]) / int(total["n_variants"])
    assert abs(float(prs[0]["match_rate"]) - rate) < 1e-6 and 0.85 < rate < 1.0


def test_imputed_dosage_r2_against_truth(run, tiny_cohort):
    from chromosched_pipeline.imputation.accuracy import dosage_r2

    for chrom in CHROMS:
        acc = dosage_r2(
            run / "results" / "imputed" / f"{chrom}.vcf.gz", tiny_cohort.out_dir / "truth" / f"{chrom}.vcf.gz", 0.05
        )
        assert acc.n_variants > 50
        assert acc.mean_r2 > 0.9 and acc.pooled_r2 > 0.9, (chrom, acc)


def test_report_builds_with_prs_and_resources(run, tiny_cohort):
    config = pipeline_config(tiny_cohort, resources={"impute": {"mem_mb": 100}})
    proc = run_snakemake(run, config, "--report", str(run / "report.html"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (run / "report.html").read_text(errors="replace")
    for name in ("prs_distribution.png", "job_resources.png", "job_resources.tsv", "match_summary.tsv"):
        assert name in html, name


def test_rerun_is_a_no_op(run, tiny_cohort):
    config = pipeline_config(tiny_cohort, resources={"impute": {"mem_mb": 100}})
    proc = run_snakemake(run, config, "-n", "--cores", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lint_has_no_errors(tiny_cohort, tmp_path):
    proc = run_snakemake(tmp_path, pipeline_config(tiny_cohort), "--lint")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_chromosome_missing_from_panel_is_a_clear_start_error(tiny_cohort, tmp_path):
    config = pipeline_config(tiny_cohort, chromosomes=["chr21", "chr20"])
    proc = run_snakemake(tmp_path, config, "--cores", "1")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert any("chr20 is not in the reference panel" in line and "panel/chr20.vcf.gz" in line for line in lines), (
        proc.stderr
    )
    assert not (tmp_path / "results").exists()


def test_truncated_target_is_a_clear_error_and_leaves_nothing(tiny_cohort, tmp_path):
    data = tiny_cohort.target.read_bytes()
    bad = tmp_path / "truncated.vcf.gz"
    bad.write_bytes(data[: len(data) // 2])
    (tmp_path / "truncated.vcf.gz.tbi").write_bytes(Path(f"{tiny_cohort.target}.tbi").read_bytes())
    proc = run_snakemake(tmp_path / "w", pipeline_config(tiny_cohort, target={"vcf": str(bad)}), "--cores", "1")
    assert proc.returncode != 0
    assert "truncated bgzip file" in proc.stderr and "truncated.vcf.gz" in proc.stderr, proc.stderr
    assert not (tmp_path / "w" / "results").exists()


def test_schema_rejects_bad_config_readably(tiny_cohort, tmp_path):
    config = pipeline_config(tiny_cohort, beagle={"window": -5})
    proc = run_snakemake(tmp_path, config, "-n")
    assert proc.returncode != 0
    msg = [line for line in proc.stderr.splitlines() if "beagle.window" in line]
    assert msg and "-5" in msg[0] and "minimum" in msg[0], proc.stderr


def test_empty_target_vcf_is_a_clear_error(tiny_cohort, tmp_path):
    from chromosched_pipeline.vcfio import read_header_lines, write_bgzipped_vcf

    empty = tmp_path / "empty.vcf.gz"
    write_bgzipped_vcf(empty, read_header_lines(tiny_cohort.target), [])
    proc = run_snakemake(tmp_path / "w", pipeline_config(tiny_cohort, target={"vcf": str(empty)}), "--cores", "1")
    assert proc.returncode != 0
    assert "empty.vcf.gz: no variant records (empty VCF)" in proc.stderr, proc.stderr
    assert not (tmp_path / "w" / "results").exists()
