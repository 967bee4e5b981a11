"""A Beagle heap OOM in the middle of a real run under ``--scheduler chromosched``.

The RAM prior is made to under-predict one chromosome only (a prior file whose formula gives the
chromosome with more panel markers a 4 MB heap, the other a sufficient 60 MB): that Beagle job runs
out of heap, the wrapper classifies the exit, the plugin sees the retry as an out-of-memory
failure, escalates the next attempt's mem_mb (hence -Xmx), the run completes with the same scores
as a run without the fault, and the model learns from both chromosomes.
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO, pipeline_config, run_snakemake

from chromosched.dynamic.ram_regressor import RegressorRegistry
from chromosched.json_lines import read_json_lines
from chromosched.prior.prior_file import builtin_prior_path
from chromosched.runtime.prediction_store import PredictionStore


def _under_predicting_prior(cohort, path):
    sites = {
        c["chrom"]: c["n_panel_sites"]
        for c in json.loads((cohort.out_dir / "manifest.json").read_text())["chromosomes"]
    }
    assert len(set(sites.values())) == 2
    small, big = sorted(sites, key=sites.get)
    threshold = (sites[small] + sites[big]) / 2
    data = json.loads(builtin_prior_path("beagle").read_text())
    # heap (MB): 60 for the chromosome below the threshold, 4 (Beagle cannot run) above it
    # (the tiny chromosomes are shorter than one window: reference markers per window = all of them)
    data["expression"] = f"min(60, 4 + 60 * max(0, {threshold} - ref_markers_per_window))"
    data["floor_mb"]["mb"] = 1.0  # no floor: the starved job must get its 4 MB heap
    for calibration in data["calibration"].values():
        calibration["knots"] = [[1.0, 1.0], [1e4, 1e4]]  # no calibration margin: the formula as written
    path.write_text(json.dumps(data))
    return path, big, small


@pytest.fixture(scope="module")
def oom_run(tiny_cohort, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("oom_retry")
    prior, starved, fed = _under_predicting_prior(tiny_cohort, workdir.parent / f"{workdir.name}_prior.json")
    proc = run_snakemake(
        workdir,
        pipeline_config(tiny_cohort),
        "--profile",
        str(REPO / "profiles" / "local"),
        "--cores",
        "2",
        "--scheduler-chromosched-prior",
        str(prior),
    )
    return workdir, proc, starved, fed


def test_oom_detected_retried_with_more_heap_and_run_completes(oom_run):
    workdir, proc, starved, fed = oom_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = read_json_lines(workdir / "logs" / "impute" / f"{starved}.attempts.jsonl")
    assert [r["kind"] for r in runs] == ["heap_oom", "ok"]
    assert runs[0]["heap_mb"] == 4 and runs[1]["heap_mb"] > runs[0]["heap_mb"]
    assert runs[1]["mem_mb"] >= 1.3 * runs[0]["mem_mb"]  # the session's escalation factor
    assert [r["kind"] for r in read_json_lines(workdir / "logs" / "impute" / f"{fed}.attempts.jsonl")] == ["ok"]
    assert f"impute {starved} attempt 1 failed out of memory with {runs[0]['mem_mb']} MB" in proc.stderr


def test_retry_heap_is_the_stored_escalation(oom_run):
    workdir, _, starved, _ = oom_run
    store = PredictionStore(workdir / ".chromosched" / "predictions")
    runs = read_json_lines(workdir / "logs" / "impute" / f"{starved}.attempts.jsonl")
    first, second = (store.get("impute", {"chrom": starved}, attempt) for attempt in (1, 2))
    assert first.source == "prior" and first.mem_mb == runs[0]["mem_mb"]
    assert second.source == "escalation" and second.mem_mb == runs[1]["mem_mb"]
    events = read_json_lines(workdir / ".chromosched" / "events.jsonl")
    fails = [e for e in events if e["event"] == "fail"]
    assert len(fails) == 1 and fails[0]["oom"] is True and fails[0]["wildcards"] == {"chrom": starved}


def test_model_learns_from_both_chromosomes(oom_run):
    workdir, proc, starved, fed = oom_run
    registry = RegressorRegistry.load(workdir / ".chromosched" / "model.json")
    assert registry.get("impute").n_observed == 2
    assert f"learned impute {starved}" in proc.stderr and f"learned impute {fed}" in proc.stderr


def test_scores_match_a_run_without_the_fault(oom_run, pipeline_run):
    workdir, _, _, _ = oom_run
    assert (workdir / "results" / "prs" / "prs.tsv").read_text() == (
        pipeline_run[0] / "results" / "prs" / "prs.tsv"
    ).read_text()
    assert not [p.name for p in (workdir / "results" / "imputed").iterdir() if p.name.startswith(".")]


def test_report_of_the_run_shows_the_retry(oom_run):
    from chromosched.cli import main

    workdir, _, starved, _ = oom_run
    assert main(["report", str(workdir), "--out", str(workdir / "rep")]) == 0
    numbers = json.loads((workdir / "rep" / "summary.json").read_text())
    assert numbers["oom_retries"] == 1 and numbers["retries"] == 1
    assert numbers["oom_attempts"][0]["wildcards"] == {"chrom": starved}
    assert numbers["per_rule"]["impute"]["attempts"] == 3 and numbers["peak_reserved_mb"] <= numbers["budget_mb"]
    assert "<h2>Memory over time</h2>" in (workdir / "rep" / "report.html").read_text()
