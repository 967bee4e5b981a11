"""The cluster path on a real Slurm (tests/cluster/slurm.py starts one for the session; without it
these tests skip and say why).

1. The tiny pipeline (chr21, chr22: prepare, Beagle, PRS) with ``--profile profiles/slurm`` as
   shipped (plus a smaller ``--resources mem_mb`` budget and ``--slurm-keep-successful-logs``), the
   Slurm executor and chromosched in the submitting process: same scores as a local run; every
   job's ``--mem`` in Slurm's accounting is its prediction-store entry; the plugin stayed idle in
   the jobs' own Snakemake; the running jobs' ``--mem`` never summed above the budget.
2. tests/data/cluster_workflow: a job whose prior predicts too little is OOM-killed by the cgroup,
   chromosched recognises the kill (sacct OUT_OF_MEMORY) and the retry runs with a larger
   ``--mem``; a job declaring ``gpu=1`` gets ``--gpus`` and the GRES device.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cluster.slurm import slurm_cluster  # noqa: F401 - the session fixture
from conftest import REPO, pipeline_config

from chromosched.runtime.prediction_store import PredictionStore
from chromosched.runtime.slurm_outcomes import parse_mem_mb

PIPELINE_BUDGET_MB = 1000  # binds: two prepare jobs fit at once, two PRS jobs do not
CLUSTER_WORKFLOW = Path(__file__).parent / "data" / "cluster_workflow"
SACCT_FIELDS = "JobID,Comment,State,ExitCode,ReqMem,Start,End,WorkDir,AllocTRES"


def snakemake(cluster, workdir: Path, *args: str, timeout: int = 480) -> subprocess.CompletedProcess:
    env = dict(cluster.env(), PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--directory",
        str(workdir),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--slurm-keep-successful-logs",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)


def slurm_jobs(cluster, workdir: Path) -> list[dict]:
    """Slurm's accounting records of the jobs run from ``workdir`` (job lines and step lines)."""
    out = cluster.run("sacct", "-P", "-n", "-a", "-S", "now-2hours", "-o", SACCT_FIELDS)
    rows = [dict(zip(SACCT_FIELDS.split(","), line.split("|"))) for line in out.splitlines() if line.strip()]
    jobs = {r["JobID"]: r for r in rows if "." not in r["JobID"]}
    steps = [r for r in rows if "." in r["JobID"]]
    for job in jobs.values():
        job["steps"] = [s for s in steps if s["JobID"].split(".")[0] == job["JobID"]]
    return [j for j in jobs.values() if Path(j["WorkDir"]).resolve() == workdir.resolve()]


def rule_and_wildcards(comment: str, names: dict[str, list[str]]) -> tuple[str, dict[str, str]]:
    """Snakemake's --comment: rule_<rule>_wildcards_<values joined by _> (or rule_<rule>)."""
    body = comment.removeprefix("rule_")
    rule, _, values = body.partition("_wildcards_")
    return rule, dict(zip(names.get(rule, []), values.split("_"))) if values else {}


def store_check(cluster, workdir: Path, names: dict[str, list[str]]) -> list[tuple]:
    """(rule, wildcards, attempt, --mem, store entry) per Slurm job, attempts in job-ID order."""
    store = PredictionStore(workdir / ".chromosched" / "predictions")
    seen: dict[tuple, int] = {}
    rows = []
    for job in sorted(slurm_jobs(cluster, workdir), key=lambda j: int(j["JobID"])):
        rule, wildcards = rule_and_wildcards(job["Comment"], names)
        key = (rule, tuple(sorted(wildcards.items())))
        seen[key] = attempt = seen.get(key, 0) + 1
        entry = store.get(rule, wildcards, attempt)
        rows.append(
            (rule, wildcards, attempt, parse_mem_mb(job["ReqMem"]), None if entry is None else entry.mem_mb, job)
        )
    return rows


def peak_requested_mb(jobs: list[dict]) -> int:
    """Largest sum of --mem over jobs running at once (Slurm's Start/End, half-open intervals)."""
    events = []
    for job in jobs:
        if job["Start"] in ("", "Unknown", "None") or job["End"] in ("", "Unknown"):
            continue
        mem = parse_mem_mb(job["ReqMem"]) or 0
        events += [(job["Start"], 1, mem), (job["End"], 0, -mem)]
    level = peak = 0
    for _, _, delta in sorted(events):  # ISO times sort as text; an end sorts before a start at the same second
        level += delta
        peak = max(peak, level)
    return peak


@pytest.fixture(scope="module")
def slurm_pipeline(slurm_cluster, tiny_cohort, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("slurm_pipeline")
    (workdir / "config.yaml").write_text(yaml.safe_dump(pipeline_config(tiny_cohort)))
    proc = snakemake(
        slurm_cluster,
        workdir,
        "results/prs/prs.tsv",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--configfile",
        str(workdir / "config.yaml"),
        "--resources",
        f"mem_mb={PIPELINE_BUDGET_MB}",
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir, proc


@pytest.fixture(scope="module")
def slurm_oom_run(slurm_cluster, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("slurm_oom")
    # The prior predicts 600 MB for the tool (12.5 MB per Mbp, 48 Mbp); the job allocates 780 MB.
    # --mem is 600 + 250 (the job's own Snakemake): the cgroup kills it, 1.3 x 600 + 250 is enough.
    prior = workdir / "work-prior.json"
    prior.write_text(
        json.dumps(
            {
                "format": "chromosched-prior/1",
                "tool": "work",
                "target": {"name": "mem_mb", "unit": "MB"},
                "features": [{"name": "length_mb", "unit": "Mbp", "description": "chromosome length"}],
                "feature_ranges": {"length_mb": [1, 300]},
                "expression": "12.5 * length_mb",
                "level": 0.9,
                "calibration": {"0.9": {"level": 0.9, "n_calibration": 100, "knots": [[1, 1], [10000, 10000]]}},
            }
        )
    )
    (workdir / "config.yaml").write_text(yaml.safe_dump({"chrom": "chr21", "length_mb": 48.0, "need_mb": 780}))
    proc = snakemake(
        slurm_cluster,
        workdir,
        "--snakefile",
        str(CLUSTER_WORKFLOW / "Snakefile"),
        "--configfile",
        str(workdir / "config.yaml"),
        "--resources",
        "mem_mb=4000",
        "gpu=1",
        "--scheduler-chromosched-prior",
        str(prior),
        "--scheduler-chromosched-prior-rule",
        "work",
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir, proc


# -- 1. the pipeline ---------------------------------------------------------------------------------
def test_same_scores_as_a_local_run(slurm_pipeline, pipeline_run):
    def scores(workdir):
        with open(workdir / "results" / "prs" / "prs.tsv") as fh:
            return {r["sample"]: float(r["prs"]) for r in csv.DictReader(fh, delimiter="\t")}

    ours, local = scores(slurm_pipeline[0]), scores(pipeline_run[0])
    assert ours.keys() == local.keys() and len(ours) == 50
    assert max(abs(ours[s] - local[s]) for s in ours) < 1e-6


def test_every_jobs_mem_is_its_prediction(slurm_cluster, slurm_pipeline):  # noqa: F811
    workdir, proc = slurm_pipeline
    rows = store_check(slurm_cluster, workdir, {r: ["chrom"] for r in ("prepare_target", "impute", "prs_partial")})
    assert sorted(r[0] for r in rows) == sorted(
        ["prepare_target"] * 2 + ["impute"] * 2 + ["prs_partial"] * 2 + ["prs_combine"]
    )
    for rule, wildcards, attempt, mem, stored, job in rows:
        assert job["State"] == "COMPLETED", job
        assert stored is not None and mem == stored, (rule, wildcards, attempt, mem, stored)
    # Beagle's heap is sized from the tool's share (--mem less the job's own Snakemake), not from --mem
    store = PredictionStore(workdir / ".chromosched" / "predictions")
    for chrom in {r[1]["chrom"] for r in rows if r[0] == "impute"}:
        entry = store.get("impute", {"chrom": chrom}, 1)
        assert entry.overhead_mb > 0, entry
        lines = [
            json.loads(x) for x in (workdir / "logs" / "impute" / f"{chrom}.attempts.jsonl").read_text().splitlines()
        ]
        assert lines[0]["mem_mb"] == entry.tool_mem_mb == entry.mem_mb - entry.overhead_mb, (lines[0], entry)
    assert "chromosched: dynamic mode" in proc.stderr


def test_plugin_idle_in_the_jobs_own_snakemake(slurm_pipeline):
    workdir, _ = slurm_pipeline
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(logs) == 7
    for log in logs:
        text = log.read_text()
        assert "--scheduler chromosched" in text  # each job's Snakemake was started with the plugin ...
        assert "chromosched:" not in text  # ... and it said and chose nothing there
    events = [json.loads(line) for line in (workdir / ".chromosched" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("begin") == 1  # one session: the submitting process's
    assert not (workdir / ".chromosched" / "predictions.previous").exists()  # no job process archived the store


def test_budget_held_by_the_running_jobs_mem(slurm_cluster, slurm_pipeline):  # noqa: F811
    jobs = slurm_jobs(slurm_cluster, slurm_pipeline[0])
    assert len(jobs) == 7
    largest = max(parse_mem_mb(j["ReqMem"]) for j in jobs)
    # Jobs did run side by side (the sum is not one job's --mem), and never above the budget.
    assert largest < peak_requested_mb(jobs) <= PIPELINE_BUDGET_MB


# -- 2. an OOM kill by Slurm, and a GPU job ----------------------------------------------------------
def test_oom_kill_is_learned_and_the_retry_gets_more(slurm_cluster, slurm_oom_run):  # noqa: F811
    workdir, proc = slurm_oom_run
    rows = [r for r in store_check(slurm_cluster, workdir, {"work": ["chrom"]}) if r[0] == "work"]
    assert [r[2] for r in rows] == [1, 2], rows
    (_, _, _, first_mem, first_store, first), (_, _, _, second_mem, second_store, second) = rows
    assert "OUT_OF_MEMORY" in [first["State"]] + [s["State"] for s in first["steps"]]
    assert second["State"] == "COMPLETED"
    assert first_mem == first_store == 600 + 250
    assert second_mem == second_store and second_mem >= 1.3 * 600 + 250
    assert (
        f"Slurm job {first['JobID']} (work {{'chrom': 'chr21'}}) was killed for memory (sacct OUT_OF_MEMORY)"
        in proc.stderr
    )
    assert "work chr21 attempt 1 failed out of memory with 850 MB" in proc.stderr
    assert (workdir / "out" / "chr21.txt").read_text().strip() == "780"


def test_gpu_job_gets_the_gres(slurm_cluster, slurm_oom_run):  # noqa: F811
    workdir, _ = slurm_oom_run
    rows = [r for r in store_check(slurm_cluster, workdir, {}) if r[0] == "gpu_probe"]
    assert len(rows) == 1
    job = rows[0][5]
    assert job["State"] == "COMPLETED" and "gres/gpu=1" in job["AllocTRES"]
    seen = (workdir / "out" / "gpu.txt").read_text().split()  # the job step's environment
    assert "CUDA_VISIBLE_DEVICES=0" in seen and "SLURM_STEP_GPUS=0" in seen


# -- 6. the run report from a Slurm run's stored events ----------------------------------------------
def test_run_report_of_slurm_runs(slurm_pipeline, slurm_oom_run):
    """`chromosched report` needs only the submitting process's event log, so it works on a Slurm run:
    the pipeline's 7 jobs with no retry, and the OOM run's 3 (work, gpu_probe and the local rule all)
    with the kill by the cgroup as one OOM retry."""
    from chromosched.cli import main

    for (workdir, _), jobs, oom in ((slurm_pipeline, 7, 0), (slurm_oom_run, 3, 1)):
        assert main(["report", str(workdir)]) == 0
        out = workdir / "chromosched_report"
        numbers = json.loads((out / "summary.json").read_text())
        assert (numbers["jobs"], numbers["oom_retries"]) == (jobs, oom), numbers
        assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


# -- 7. the diffusion stage through Slurm ------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm_diffusion(slurm_cluster, tiny_cohort, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("slurm_diffusion")
    diffusion = {
        "enabled": True,
        "checkpoint": str(REPO / "config" / "diffusion" / "small.pt"),
        "chromosomes": ["chr22"],
        "samples": 2,
        "samples_per_job": 2,
        "max_tiles": 2,
        "steps": 3,
        "truth_cells": 20,
        "refine_iterations": 5,
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(pipeline_config(tiny_cohort, diffusion=diffusion)))
    proc = snakemake(
        slurm_cluster,
        workdir,
        "results/diffusion/chr22/summary.json",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--configfile",
        str(workdir / "config.yaml"),
        "--resources",
        "mem_mb=4000",
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir, proc


def test_diffusion_jobs_run_through_slurm_at_their_prediction(slurm_cluster, slurm_diffusion):
    """The diffusion jobs go through the same path as Beagle's: --mem is the stored prediction (with
    the job's own Snakemake on top), and the sampler fits its chunks to the tool's share."""
    workdir, _ = slurm_diffusion
    rows = store_check(slurm_cluster, workdir, {"diffusion_sample": ["chrom", "part"], "diffusion_merge": ["chrom"]})
    assert sorted(r[0] for r in rows) == ["diffusion_merge", "diffusion_sample"]
    for rule, wildcards, attempt, mem, stored, job in rows:
        assert job["State"] == "COMPLETED", job
        assert stored is not None and mem == stored, (rule, wildcards, attempt, mem, stored)
    entry = PredictionStore(workdir / ".chromosched" / "predictions").get(
        "diffusion_sample", {"chrom": "chr22", "part": "0"}, 1
    )
    assert entry is not None and entry.overhead_mb > 0
    outcome = json.loads(
        (workdir / "logs" / "diffusion_sample" / "chr22" / "0.attempts.jsonl").read_text().splitlines()[-1]
    )
    assert outcome["kind"] == "ok" and 0 < outcome["need_mb"] <= entry.tool_mem_mb, (outcome, entry)
    summary = json.loads((workdir / "results" / "diffusion" / "chr22" / "summary.json").read_text())
    assert len(summary["seam_per_boundary"]) == 1 and -1 <= summary["hic_pearson"] <= 1
