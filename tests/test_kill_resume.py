"""Kill and resume: SIGKILL the whole Snakemake run (its process group: Snakemake, the job shells,
the Python wrappers and the Beagle JVMs) while Beagle is imputing, then run the same command again.

The rerun must finish with valid outputs (BGZF end-of-file block, a readable tabix index, the same
PRS as an uninterrupted run), nothing of the killed attempt left behind or counted twice, and the
scheduler's learned model and prediction store readable. A JSON line cut short by the kill (here
appended by hand to an outcome log and to the event log, since the kill rarely lands mid-write) is
skipped with a warning.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pytest
import yaml
from conftest import REPO, pipeline_config, run_snakemake

from chromosched.dynamic.ram_regressor import RegressorRegistry
from chromosched.json_lines import read_json_lines
from chromosched.runtime.prediction_store import PredictionStore
from chromosched_pipeline.vcfio import BGZF_EOF

ARGS = ("--profile", str(REPO / "profiles" / "local"), "--cores", "2")


def _command(workdir: Path) -> list[str]:
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    return [
        snakemake,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *ARGS,
    ]


def _impute_started(events: Path) -> bool:
    return any(e.get("event") == "start" and e.get("rule") == "impute" for e in read_json_lines(events))


def _java_running(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    return True
            except OSError:
                continue
    return False


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_cohort, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kill_resume")
    (workdir / "config.yaml").write_text(yaml.safe_dump(pipeline_config(tiny_cohort)))
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    with open(workdir / "killed.log", "w") as log:
        run = subprocess.Popen(
            _command(workdir), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )  # its own process group: the jobs inherit it
        deadline = time.monotonic() + 300
        while not _impute_started(workdir / ".chromosched" / "events.jsonl"):
            assert run.poll() is None and time.monotonic() < deadline, (workdir / "killed.log").read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(1.0)  # the JVM is up and imputing
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    deadline = time.monotonic() + 10
    while _java_running(run.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = {
        # (pathlib's * also matches the hidden temporaries of the attempts the kill interrupted)
        "imputed": sorted(
            p.name for p in (workdir / "results" / "imputed").glob("*.vcf.gz") if not p.name.startswith(".")
        ),
        "leftovers": sorted(p.name for p in (workdir / "results" / "imputed").glob(".*")),
        "locked": sorted(p.name for p in (workdir / ".snakemake" / "locks").glob("*.lock")),
        "prs": (workdir / "results" / "prs" / "prs.tsv").exists(),
    }
    # A kill in the middle of an append leaves half a JSON line: simulate it in the outcome log of
    # the interrupted Beagle job (the resumed attempt appends to it, the scheduler reads it) and in
    # the event log.
    (workdir / "logs" / "impute").mkdir(parents=True, exist_ok=True)
    with open(workdir / "logs" / "impute" / "chr21.attempts.jsonl", "a") as fh:
        fh.write('{"time": "2026-01-01T00:00:00", "kind": "o')
    with open(workdir / ".chromosched" / "events.jsonl", "a") as fh:
        fh.write('{"time": 17, "event": "sta')
    resumed = run_snakemake(workdir, pipeline_config(tiny_cohort), *ARGS)
    return workdir, killed, resumed


def test_the_kill_landed_mid_imputation(killed_and_resumed):
    _, killed, _ = killed_and_resumed
    assert not killed["prs"] and len(killed["imputed"]) < 2
    assert killed["locked"], "a SIGKILLed Snakemake leaves its directory lock"
    assert killed["leftovers"], "the killed Beagle attempt left its temporary files"


def test_the_same_command_completes(killed_and_resumed):
    workdir, _, resumed = killed_and_resumed
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "removed the stale Snakemake lock" in resumed.stderr
    assert "Traceback" not in resumed.stderr


def test_outputs_are_valid_and_nothing_is_left_over(killed_and_resumed):
    workdir, _, _ = killed_and_resumed
    imputed = workdir / "results" / "imputed"
    for chrom in ("chr21", "chr22"):
        vcf = imputed / f"{chrom}.vcf.gz"
        with open(vcf, "rb") as fh:
            fh.seek(-len(BGZF_EOF), os.SEEK_END)
            assert fh.read() == BGZF_EOF
        with pysam.TabixFile(str(vcf)) as tbx:
            assert chrom in tbx.contigs and sum(1 for _ in tbx.fetch(chrom)) > 100
    assert not [p.name for p in imputed.iterdir() if p.name.startswith(".")]  # the killed attempt's temporaries


def test_same_scores_as_an_uninterrupted_run(killed_and_resumed, pipeline_run):
    workdir, _, _ = killed_and_resumed

    def rows(path: Path) -> list[dict]:
        with open(path) as fh:
            return list(csv.DictReader(fh, delimiter="\t"))

    ours, theirs = rows(workdir / "results" / "prs" / "prs.tsv"), rows(pipeline_run[0] / "results" / "prs" / "prs.tsv")
    assert len({r["sample"] for r in ours}) == len(ours) == len(theirs)  # nothing duplicated
    assert (workdir / "results" / "prs" / "prs.tsv").read_text() == (
        pipeline_run[0] / "results" / "prs" / "prs.tsv"
    ).read_text()


def test_torn_lines_are_skipped_with_a_warning(killed_and_resumed):
    workdir, _, resumed = killed_and_resumed
    outcome = workdir / "logs" / "impute" / "chr21.attempts.jsonl"
    assert "chr21.attempts.jsonl: skipped 1 unreadable line(s)" in resumed.stderr
    lines = outcome.read_text().splitlines()
    assert len(lines) == 2 and lines[0].endswith('"kind": "o')  # the torn line was closed, not glued onto
    assert [r["kind"] for r in read_json_lines(outcome)] == ["ok"]
    assert "learned impute chr21" in resumed.stderr  # the scheduler read the resumed attempt's line
    for chrom in ("chr21", "chr22"):
        lines = read_json_lines(workdir / "logs" / "impute" / f"{chrom}.attempts.jsonl")
        assert lines and lines[-1]["kind"] == "ok"
    # the killed run's event log (with its torn line) is kept as .previous and still reads
    previous = read_json_lines(workdir / ".chromosched" / "events.jsonl.previous")
    assert previous and previous[0]["event"] == "begin"


def test_model_and_prediction_store_are_readable(killed_and_resumed):
    workdir, _, _ = killed_and_resumed
    registry = RegressorRegistry.load(workdir / ".chromosched" / "model.json")
    assert registry.get("impute").n_observed >= 1
    store = PredictionStore(workdir / ".chromosched" / "predictions")
    entries = store.entries()
    keys = [(e.rule, tuple(sorted(e.wildcards.items())), e.attempt) for e in entries]
    assert len(keys) == len(set(keys)) and "impute" in {e.rule for e in entries}
    # the killed run's predictions are moved aside at the start of the rerun, and still read
    assert "prepare_target" in {
        e.rule for e in PredictionStore(workdir / ".chromosched" / "predictions.previous").entries()
    }
    assert not [p for p in (workdir / ".chromosched").rglob(".tmp-*")]


# -- the pieces, without a pipeline ------------------------------------------------------------------
def test_append_closes_a_torn_line_and_reader_warns(tmp_path, caplog):
    from chromosched.json_lines import append_json_line

    log = tmp_path / "a.jsonl"
    log.write_text('{"kind": "ok"}\n{"kind": "he')
    append_json_line(log, {"kind": "heap_oom"})
    with caplog.at_level("WARNING", logger="chromosched"):
        assert [r["kind"] for r in read_json_lines(log)] == ["ok", "heap_oom"]
    assert f"{log}: skipped 1 unreadable line(s) (line 2" in caplog.text


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    from chromosched_pipeline.vcfio import remove_stale_temporaries

    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "chr1.vcf.gz"
    stale = tmp_path / f".chr1.vcf.gz.{dead.pid}.tmp.beagle.log"
    alive = tmp_path / f".chr1.vcf.gz.{os.getppid()}.tmp.beagle.log"
    other = tmp_path / f".chr10.vcf.gz.{dead.pid}.tmp"
    for p in (stale, alive, other):
        p.write_text("x")
    assert remove_stale_temporaries(out) == [stale]
    assert alive.exists() and other.exists()


def test_job_resources_table_survives_a_torn_attempt_line(tmp_path):
    from chromosched_pipeline.report.plots import job_resources

    attempts = tmp_path / "chr1.attempts.jsonl"
    attempts.write_text('{"kind": "heap_oom", "mem_mb": 200, "heap_mb": 90}\n{"kind": "o')
    bench = tmp_path / "impute" / "chr1.tsv"
    bench.parent.mkdir()
    bench.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        "3.2\t0:00:03\t150.1\t900\t140\t145\t1\t2\t90\t2.9\n"
    )
    rows = job_resources([str(bench)], tmp_path / "t.tsv", tmp_path / "t.png", attempts=[str(attempts)])
    assert rows and (tmp_path / "t.tsv").exists()
