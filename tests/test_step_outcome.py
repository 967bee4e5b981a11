"""Python steps and wrapped tools report their own peak memory (getrusage) as an outcome line."""

from __future__ import annotations

import json
import subprocess
import sys

from chromosched.runtime.job_measurements import measure_success
from chromosched_pipeline.step_outcome import SHELL_MB, main

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
ALLOCATE = "b = bytearray({mb} * 2**20); b[::4096] = b'x' * len(b[::4096])"  # touched, so resident


def test_wrapped_command_reports_its_peak_and_the_scheduler_learns_it(tmp_path):
    log = tmp_path / "o.jsonl"
    # a fresh wrapper process, as in a rule, started from a big parent (Snakemake, or this pytest
    # made bigger on purpose): the parent's high-water mark must not be counted as the wrapper's
    ballast = bytearray(300 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chromosched_pipeline.step_outcome",
            "--outcome",
            str(log),
            "--",
            sys.executable,
            "-c",
            ALLOCATE.format(mb=80),
        ]
    )
    assert proc.returncode == 0
    line = json.loads(log.read_text().splitlines()[-1])
    # the child's 80 MB plus the wrapper (and the child's inherited high-water mark, see the module)
    assert line["kind"] == "ok" and 80 <= line["peak_rss_mb"] < 200
    del ballast
    assert line["need_mb"] == line["peak_rss_mb"] + SHELL_MB
    # a 0.3 s job whose benchmark only saw the shell: the outcome line is what counts
    bench = tmp_path / "b.tsv"
    bench.write_text(HEADER + "0.3\t0:00:00\t3\t1\t1\t1\t0\t0\t50\t1\n")
    m = measure_success(str(bench), str(log))
    assert m.source == "outcome" and m.need_mb == line["need_mb"] and m.runtime_s == 0.3


def test_a_failing_command_keeps_its_exit_code_and_logs_no_need(tmp_path):
    log = tmp_path / "o.jsonl"
    assert main(["--outcome", str(log), "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    line = json.loads(log.read_text())
    assert line["kind"] == "error" and line["exit"] == 3 and "need_mb" not in line
    assert measure_success(None, str(log)) is None
    assert main(["--outcome", str(log), "--", str(tmp_path / "no-such-tool")]) == 127


def test_a_python_step_appends_one_line_per_attempt(tmp_path, monkeypatch):
    """`prs score --outcome` (a real step) on a VCF that is not there: an error line, exit 2."""
    log = tmp_path / "o.jsonl"
    for _ in range(2):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "chromosched_pipeline.prs.scores",
                "score",
                "--vcf",
                str(tmp_path / "x.vcf.gz"),
                "--chrom",
                "chr1",
                "--scoring-file",
                str(tmp_path / "s.tsv"),
                "--out",
                str(tmp_path / "p.tsv"),
                "--outcome",
                str(log),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and "prs: error" in proc.stderr
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["error", "error"]
