"""Bad inputs are refused before any job runs: real Snakemake runs of the pipeline on the tiny
cohort, each asserting the exit status, one line naming the file or job, no Python traceback, and
that nothing was written (no results/, no scheduler state). Plus the per-kind start-up checks
(chromosched_pipeline.input_checks, chromosched.runtime.run_inputs) and ``chromosched plan`` reporting
the same problems without running anything."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, pipeline_config, run_snakemake

from chromosched.errors import ChromoschedError
from chromosched.prior import load_builtin_prior
from chromosched.prior.prior_file import builtin_prior_path
from chromosched.runtime.job_record import JobRecord
from chromosched.runtime.run_inputs import check_budget, check_settings
from chromosched.runtime.session import SessionSettings
from chromosched_pipeline import input_checks
from chromosched_pipeline.config import load_pipeline_config

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"
PROFILE = ("--profile", str(REPO / "profiles" / "local"), "--cores", "2")


def _write_bgzip_vcf(path: Path, text: str) -> Path:
    subprocess.run(["bgzip", "-c"], input=text.encode(), stdout=open(path, "wb"), check=True)
    subprocess.run(["tabix", "-f", "-p", "vcf", str(path)], check=True)
    return path


def _duplicate_sample_target(cohort, tmp_path: Path, sample="TGT0001") -> Path:
    """The cohort's target VCF with sample 2 renamed to sample 1's ID."""
    text = gzip.open(cohort.target, "rt").read()
    header = next(line for line in text.splitlines() if line.startswith("#CHROM"))
    columns = header.split("\t")
    columns[10] = sample
    return _write_bgzip_vcf(tmp_path / "dup_target.vcf.gz", text.replace(header, "\t".join(columns)))


def _bad_prior(tmp_path: Path) -> Path:
    data = json.loads(builtin_prior_path("beagle").read_text())
    data["expression"] = "__import__('os').system('touch pwned')"
    path = tmp_path / "bad_prior.json"
    path.write_text(json.dumps(data))
    return path


def _refused(proc, workdir: Path, *needles: str) -> str:
    """Non-zero exit, one error line containing every needle, no traceback, nothing written."""
    assert proc.returncode != 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if all(n in line for n in needles)]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr, proc.stderr[-3000:]
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()
    assert not (workdir / ".chromosched").exists()
    assert not (workdir / "pwned").exists()
    return lines[0]


# -- the four cases of issue 16, as real runs -------------------------------------------------------
def test_duplicate_sample_ids_refused_before_beagle(tiny_cohort, tmp_path):
    target = _duplicate_sample_target(tiny_cohort, tmp_path)
    config = pipeline_config(tiny_cohort, target={"vcf": str(target)})
    proc = run_snakemake(tmp_path / "run", config, *PROFILE)
    line = _refused(proc, tmp_path / "run", str(target), "duplicate sample ID TGT0001")
    assert "IllegalArgumentException" not in proc.stderr and line.startswith("chromosched pipeline: error:")


def test_budget_below_the_largest_job_stops_before_anything_runs(tiny_cohort, tmp_path):
    proc = run_snakemake(tmp_path, pipeline_config(tiny_cohort), *PROFILE, "--resources", "mem_mb=50")
    line = _refused(proc, tmp_path, "job impute chr2", "more than the whole memory budget of 50 MB")
    assert "--resources mem_mb" in line
    assert "Shell command" not in proc.stderr and "-Xmx" not in proc.stderr  # no job was started


def test_unsafe_prior_refused_when_the_run_starts(tiny_cohort, tmp_path):
    prior = _bad_prior(tmp_path / "..")
    proc = run_snakemake(tmp_path, pipeline_config(tiny_cohort), *PROFILE, "--scheduler-chromosched-prior", str(prior))
    _refused(proc, tmp_path, str(prior), "rejected")
    assert "Shell command" not in proc.stderr  # before prepare_target, not when impute becomes ready


def test_corrupt_ordering_table_is_one_line(tiny_cohort, tmp_path):
    table = tmp_path.parent / f"{tmp_path.name}_table.tsv"
    table.write_text("garbage\tline\n1\t2\n")
    proc = run_snakemake(
        tmp_path,
        pipeline_config(tiny_cohort),
        *PROFILE,
        "--scheduler-chromosched-mode",
        "static",
        "--scheduler-chromosched-ordering",
        str(table),
    )
    _refused(proc, tmp_path, str(table), "expected the header")


def test_bad_setting_is_one_line(tiny_cohort, tmp_path):
    proc = run_snakemake(tmp_path, pipeline_config(tiny_cohort), *PROFILE, "--scheduler-chromosched-gamma-max", "3")
    _refused(proc, tmp_path, "setting gamma-max: must be in (0, 1], got 3")


# -- chromosched plan reports the same problems without running anything ----------------------------
def _plan(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    import shutil
    import sys

    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    chromosched = shutil.which("chromosched") or str(Path(sys.executable).with_name("chromosched"))
    cmd = [
        chromosched,
        "plan",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--profile",
        str(REPO / "profiles" / "local"),
        "--cores",
        "2",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir)


@pytest.mark.parametrize("case", ["duplicate", "budget", "prior"])
def test_plan_reports_the_same_problems(tiny_cohort, tmp_path, case):
    config, extra, needles = pipeline_config(tiny_cohort), [], []
    if case == "duplicate":
        target = _duplicate_sample_target(tiny_cohort, tmp_path)
        config["target"] = {"vcf": str(target)}
        needles = [str(target), "duplicate sample ID TGT0001"]
    elif case == "budget":
        extra, needles = ["--budget-mb", "50"], ["job impute chr2", "whole memory budget of 50 MB"]
    else:
        prior = _bad_prior(tmp_path)
        extra, needles = ["--prior", str(prior)], [str(prior), "rejected"]
    workdir = tmp_path / "run"
    proc = _plan(workdir, config, *extra)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chromosched: error:") and all(n in lines[0] for n in needles), (
        proc.stderr
    )
    assert not (workdir / "results").exists() and not (workdir / ".chromosched").exists()


# -- the start-up checks, one kind of input at a time ----------------------------------------------
def test_duplicate_panel_sample_named(tiny_cohort, tmp_path):
    panel = tiny_cohort.out_dir / "panel" / "chr21.vcf.gz"
    text = gzip.open(panel, "rt").read()
    header = next(line for line in text.splitlines() if line.startswith("#CHROM"))
    cols = header.split("\t")
    cols[12] = cols[9]
    bad = _write_bgzip_vcf(tmp_path / "chr21.vcf.gz", text.replace(header, "\t".join(cols)))
    with pytest.raises(
        ChromoschedError, match=f"reference.panel {bad}: duplicate sample ID {cols[9]} \\(samples 1 and 4\\)"
    ):
        input_checks.check_vcf_header(str(bad), "reference.panel")


def test_vcf_without_fixed_columns(tmp_path):
    bad = _write_bgzip_vcf(
        tmp_path / "t.vcf.gz",
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t5\tA\tC\t.\t.\t.\tGT\t0|1\n",
    )
    with pytest.raises(ChromoschedError, match=f"target.vcf {bad}: #CHROM header line must be"):
        input_checks.check_vcf_header(str(bad), "target.vcf")


@pytest.mark.parametrize(
    "rows, message",
    [
        ("chr21 rs1 0.1\n", "line 1: expected 4 columns"),
        ("chr21 rs1 zero 100\n", "line 1: cM and bp must be numbers"),
        ("", "file is empty"),
    ],
)
def test_bad_genetic_map(tmp_path, rows, message):
    path = tmp_path / "chr21.map"
    path.write_text(rows)
    with pytest.raises(ChromoschedError) as err:
        input_checks.check_genetic_map(str(path))
    assert str(err.value).startswith(f"reference.map {path}") and message in str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("chr_name\tchr_position\teffect_weight\n21\t100\t0.1\n", "missing column(s) effect_allele"),
        ("chr_name\tchr_position\teffect_allele\teffect_weight\n21\tabc\tA\t0.1\n", "is not a number"),
    ],
)
def test_bad_scoring_file(tmp_path, text, message):
    path = tmp_path / "scores.txt"
    path.write_text(text)
    with pytest.raises(ChromoschedError) as err:
        input_checks.check_scoring_file(str(path))
    assert str(err.value).startswith(f"prs.scoring_file scoring file {path}") and message in str(err.value)


def test_sample_list_checked_against_the_target(tiny_cohort, tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("TGT0001\nNOBODY\n")
    config = pipeline_config(tiny_cohort, target={"vcf": str(tiny_cohort.target), "samples": str(keep)})
    with pytest.raises(
        ChromoschedError, match=f"cfg: target.samples {keep}: 1 sample\\(s\\) not in target.vcf .* e.g. NOBODY"
    ):
        load_pipeline_config(config, SCHEMA, source="cfg")
    keep.write_text("TGT0001\nTGT0001\n")
    with pytest.raises(ChromoschedError, match="duplicate sample ID TGT0001"):
        load_pipeline_config(config, SCHEMA, source="cfg")


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(packer="best"), "setting packer: must be one of knapsack, greedy, firstfit, got 'best'"),
        (dict(gamma_min=0.9, gamma_max=0.8), "settings gamma-min (0.9) must not exceed gamma-max (0.8)"),
        (dict(degree=9), "setting degree: must be 1 to 5, got 9"),
    ],
)
def test_bad_plugin_settings(changes, message):
    with pytest.raises(ChromoschedError) as err:
        check_settings(SessionSettings(**changes))
    assert str(err.value) == message


def test_budget_floor_uses_the_prior_when_features_are_known():
    prior = load_builtin_prior("beagle")
    facts = dict(
        threads=1,
        burnin=3,
        iterations=12,
        window_cm=40.0,
        target_variants=5000,
        target_samples=1000,
        ref_variants=200000,
        ref_samples=2000,
        overlap_cm=2.0,
    )
    big = JobRecord(uid="impute[chrom=chr1]", rule="impute", wildcards={"chrom": "chr1"}, prior_features=facts)
    unknown = JobRecord(uid="impute[chrom=chr2]", rule="impute", wildcards={"chrom": "chr2"})
    check_budget(150, [unknown], prior, "impute")  # the JVM floor (110 MB) fits
    with pytest.raises(ChromoschedError, match="job impute chr1 needs at least .* point estimate"):
        check_budget(150, [unknown, big], prior, "impute")
