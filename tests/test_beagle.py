"""Beagle wrapper: heap arithmetic, command line, and real runs (success, heap OOM, killed)."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from chromosched.errors import ChromoschedError
from chromosched_pipeline.imputation import beagle
from chromosched_pipeline.imputation.beagle import (
    BeagleParams,
    beagle_command,
    classify_exit,
    heap_mb_for,
    impute,
    mem_mb_for_heap,
    run_beagle,
)

JAR = Path("/usr/share/beagle/beagle.jar")
needs_beagle = pytest.mark.skipif(not JAR.is_file(), reason="Debian beagle not installed")


def test_heap_from_mem_mb_leaves_jvm_overhead_and_has_a_floor():
    assert heap_mb_for(1024) == int(1024 - 100 - 0.05 * 1024) == 872
    assert heap_mb_for(4096) == int(4096 - 100 - 0.05 * 4096)
    assert heap_mb_for(100) == beagle.HEAP_FLOOR_MB
    assert heap_mb_for(10) == beagle.HEAP_FLOOR_MB
    for heap in (64, 500, 3000, 120_000):
        mem = mem_mb_for_heap(heap)
        assert heap_mb_for(mem) >= heap and heap_mb_for(mem - 2) < heap
    # a fractional prediction is never handed out smaller (the naive inverse gave -Xmx36m for 36.17)
    assert heap_mb_for(mem_mb_for_heap(36.17)) == 37
    for heap in [x / 7 for x in range(29, 7000)]:  # above the 4 MB floor
        mem = mem_mb_for_heap(heap)
        assert heap_mb_for(mem) >= heap and heap_mb_for(mem - 1) < math.ceil(heap)


def test_command_has_heap_exit_on_oom_threads_and_params(tmp_path):
    jar = tmp_path / "beagle.jar"
    jar.write_text("")
    cmd = beagle_command(
        "t.vcf.gz",
        "p.vcf.gz",
        "m.map",
        "out/x",
        812,
        3,
        BeagleParams(window=20.0, overlap=1.5, ne=20000, seed=5),
        jar=jar,
    )
    assert cmd[:5] == ["java", "-Xmx812m", "-XX:+ExitOnOutOfMemoryError", "-jar", str(jar)]
    assert cmd[5:] == [
        "gt=t.vcf.gz",
        "ref=p.vcf.gz",
        "map=m.map",
        "out=out/x",
        "nthreads=3",
        "window=20",
        "overlap=1.5",
        "ne=20000",
        "seed=5",
    ]
    with pytest.raises(ChromoschedError):
        beagle_command("t", "p", None, "o", 100, 0, jar=jar)


def test_jar_lookup_explicit_env_and_missing(tmp_path, monkeypatch):
    jar = tmp_path / "b.jar"
    jar.write_text("")
    assert beagle.find_beagle_jar(jar) == jar
    monkeypatch.setenv("BEAGLE_JAR", str(jar))
    assert beagle.find_beagle_jar() == jar
    monkeypatch.setenv("BEAGLE_JAR", str(tmp_path / "nope.jar"))
    with pytest.raises(ChromoschedError, match="BEAGLE_JAR"):
        beagle.find_beagle_jar()
    with pytest.raises(ChromoschedError, match="not found"):
        beagle.find_beagle_jar(tmp_path / "missing.jar")


def test_exit_classification():
    assert classify_exit(3, "x\nTerminating due to java.lang.OutOfMemoryError: Java heap space\n") == (True, False)
    assert classify_exit(3, "") == (True, False)
    assert classify_exit(137, "") == (False, True)
    assert classify_exit(1, "Exception in thread main java.lang.IllegalArgumentException") == (False, False)
    assert classify_exit(0, "") == (False, False)


@pytest.fixture(scope="module")
def chrom21(tiny_cohort, tmp_path_factory):
    """Beagle inputs for chr21: the target (contig '21') harmonised to the panel's 'chr21'."""
    from chromosched_pipeline.imputation.prepare import prepare_chromosome

    out = tiny_cohort.out_dir
    prepared = tmp_path_factory.mktemp("prepared21")
    prepare_chromosome(
        "chr21",
        tiny_cohort.target,
        out / "panel" / "chr21.vcf.gz",
        out / "map" / "chr21.map",
        prepared / "target.vcf.gz",
        prepared / "genetic.map",
    )
    return prepared / "target.vcf.gz", out / "panel" / "chr21.vcf.gz", prepared / "genetic.map"


@needs_beagle
def test_contig_mismatch_is_reported_as_an_error_not_oom(tiny_cohort, tmp_path):
    # Unharmonised input ('21' vs 'chr21'): Beagle fails with an exception, classified "error".
    out = tiny_cohort.out_dir
    result = impute(
        out / "target" / "chr21.vcf.gz",
        out / "panel" / "chr21.vcf.gz",
        out / "map" / "chr21.map",
        tmp_path / "x.vcf.gz",
        mem_mb=300,
        threads=1,
        stream=io.StringIO(),
    )
    assert result.kind == "error" and result.exit_code not in (0, 3, 137)
    assert result.describe().startswith("beagle failed with exit")
    assert not (tmp_path / "x.vcf.gz").exists()


@needs_beagle
def test_real_run_restores_contigs_indexes_and_records_attempt(chrom21, tmp_path):
    gt, ref, gmap = chrom21
    out = tmp_path / "imp" / "chr21.vcf.gz"
    attempts = tmp_path / "attempts.jsonl"
    stream = io.StringIO()
    result = impute(gt, ref, gmap, out, mem_mb=300, threads=1, attempts_log=attempts, stream=stream)
    assert result.ok and result.kind == "ok" and result.heap_mb == heap_mb_for(300) and result.mem_mb == 300
    assert result.peak_rss_mb > 20 and result.wall_s > 0
    assert "beagle.22Jul22" in stream.getvalue()  # Beagle's output was echoed as it ran
    with gzip.open(out, "rt") as fh:
        header = [line for line in fh if line.startswith("##")]
    # target says "21", panel says "chr21": Beagle output takes the panel's name; length restored
    assert "##contig=<ID=chr21,length=240649>\n" in header
    assert Path(f"{out}.tbi").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    record = json.loads(attempts.read_text())
    assert record["kind"] == "ok" and record["exit_code"] == 0 and record["out"] == str(out)


@needs_beagle
def test_tiny_heap_is_classified_as_heap_oom_and_leaves_no_output(chrom21, tmp_path):
    gt, ref, gmap = chrom21
    out = tmp_path / "chr21.vcf.gz"
    result = impute(gt, ref, gmap, out, mem_mb=100, threads=1, stream=io.StringIO())
    assert result.heap_mb == 4 and result.exit_code == 3 and result.heap_oom and not result.killed
    assert result.kind == "heap_oom" and "ran out of Java heap" in result.describe()
    assert not out.exists() and list(tmp_path.iterdir()) == []


@needs_beagle
def test_cli_exit_code_is_3_on_heap_oom(chrom21, tmp_path, capsys):
    gt, ref, gmap = chrom21
    code = beagle.main(
        [
            "--gt",
            str(gt),
            "--ref",
            str(ref),
            "--map",
            str(gmap),
            "--out",
            str(tmp_path / "o.vcf.gz"),
            "--mem-mb",
            "100",
            "--threads",
            "1",
        ]
    )
    assert code == 3
    assert "ran out of Java heap" in capsys.readouterr().err


@needs_beagle
def test_killed_run_is_classified_as_killed(chrom21, tmp_path):
    gt, ref, gmap = chrom21
    cmd = beagle_command(gt, ref, gmap, tmp_path / "k", 200, 1)

    def kill_java():
        # Kill the java child (not us) once it is running, as the kernel OOM killer would.
        deadline = time.time() + 20
        while time.time() < deadline:
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    if str(tmp_path / "k").encode() in cmdline and b"java" in cmdline:
                        os.kill(int(pid), signal.SIGKILL)
                        return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_java)
    killer.start()
    result = run_beagle(cmd, stream=io.StringIO())
    killer.join()
    assert result.exit_code == 137 and result.killed and not result.heap_oom and result.kind == "killed"


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "nope.vcf.gz"
    code = beagle.main(
        [
            "--gt",
            str(missing),
            "--ref",
            str(missing),
            "--out",
            str(tmp_path / "o.vcf.gz"),
            "--mem-mb",
            "500",
            "--threads",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"beagle: error: target VCF {missing}: file not found"]


@needs_beagle
def test_sigterm_stops_beagle_and_removes_temporaries(chrom21, tmp_path):
    # Snakemake stops a job with SIGTERM: the wrapper must kill Java and leave no files behind.
    import subprocess

    gt, ref, gmap = chrom21
    out_dir = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chromosched_pipeline.imputation.beagle",
            "--gt",
            str(gt),
            "--ref",
            str(ref),
            "--map",
            str(gmap),
            "--out",
            str(out_dir / "chr21.vcf.gz"),
            "--mem-mb",
            "300",
            "--threads",
            "1",
            "--burnin",
            "30",
            "--iterations",
            "60",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 20
    while time.time() < deadline and not (out_dir.exists() and any(out_dir.iterdir())):
        time.sleep(0.05)  # Beagle has started writing its temporary output
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.2)
    assert list(out_dir.iterdir()) == []
    leftover = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, str(out_dir))]
    assert leftover == []


def _cmdline_has(pid: str, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
