"""The real pipeline under ``--scheduler chromosched`` (dynamic mode, the local profile's default):
Beagle's declared mem_mb is deliberately far too low, the plugin replaces it by the RAM prior's
prediction, no job runs out of heap, and every Beagle -Xmx is the stored prediction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import REPO, pipeline_config, run_snakemake

from chromosched.java_memory import heap_mb_for
from chromosched.runtime.prediction_store import PredictionStore


@pytest.fixture(scope="module")
def chromosched_run(tiny_cohort, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chromosched_pipeline")
    config = pipeline_config(tiny_cohort, resources={"impute": {"mem_mb": 100}})  # a 4 MB heap: far too low
    proc = run_snakemake(workdir, config, "--profile", str(REPO / "profiles" / "local"), "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir, proc


def _attempts(workdir: Path) -> dict[str, list[dict]]:
    return {
        p.name.split(".")[0]: [json.loads(line) for line in p.read_text().splitlines()]
        for p in sorted((workdir / "logs" / "impute").glob("*.attempts.jsonl"))
    }


def test_no_beagle_job_runs_out_of_memory(chromosched_run):
    workdir, proc = chromosched_run
    attempts = _attempts(workdir)
    assert attempts and all(len(runs) == 1 and runs[0]["kind"] == "ok" for runs in attempts.values())
    assert "chromosched: start" in proc.stderr


def test_beagle_heap_is_the_stored_prediction(chromosched_run):
    workdir, _ = chromosched_run
    store = PredictionStore(workdir / ".chromosched" / "predictions")
    for chrom, runs in _attempts(workdir).items():
        entry = store.get("impute", {"chrom": chrom}, 1)
        assert entry is not None and entry.source in ("prior", "regressor")  # never the declared 100 MB
        assert runs[0]["mem_mb"] == entry.mem_mb and runs[0]["heap_mb"] == heap_mb_for(entry.mem_mb)


def test_learns_from_beagle_gc_logs_and_saves_the_model(chromosched_run):
    workdir, proc = chromosched_run
    learned = [line for line in proc.stderr.splitlines() if "chromosched: learned impute" in line]
    assert learned and all("(outcome)" in line for line in learned)
    assert json.loads((workdir / ".chromosched" / "model.json").read_text())


def test_same_scores_as_with_snakemakes_scheduler(chromosched_run, pipeline_run):
    def scores(workdir):
        with open(workdir / "results" / "prs" / "prs.tsv") as fh:
            return {r["sample"]: float(r["prs"]) for r in csv.DictReader(fh, delimiter="\t")}

    ours, theirs = scores(chromosched_run[0]), scores(pipeline_run[0])
    assert ours.keys() == theirs.keys()
    assert max(abs(ours[s] - theirs[s]) for s in ours) < 1e-6
