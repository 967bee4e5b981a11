"""A real Snakemake run: GPU jobs and CPU jobs under one --resources budget. The knapsack packs
every numeric resource given there (gpu, gpu_mem_mb...), so two gpu=1 jobs never overlap under
--resources gpu=1 while CPU jobs run next to them (once each rule's first job, its probe, has run
alone: neither rule has a prior)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SNAKEFILE = r"""
import time

ITEMS = ["a", "b"]  # not chromosome names: every job has the same size

rule all:
    input: expand("gpu/{i}.txt", i=ITEMS), expand("cpu/{i}.txt", i=ITEMS)

rule diffuse:
    output: "gpu/{i}.txt"
    log: "logs/gpu/{i}.log"
    benchmark: "bench/gpu/{i}.tsv"
    resources: mem_mb=100, gpu=1, gpu_mem_mb=6000
    run:
        start = time.time()
        time.sleep(1.5)
        with open(output[0], "w") as handle:
            handle.write(f"{start} {time.time()}\n")

rule beagle:
    output: "cpu/{i}.txt"
    log: "logs/cpu/{i}.log"
    benchmark: "bench/cpu/{i}.tsv"
    resources: mem_mb=100
    run:
        start = time.time()
        time.sleep(1.5)
        with open(output[0], "w") as handle:
            handle.write(f"{start} {time.time()}\n")
"""


def _interval(path: Path) -> tuple[float, float]:
    start, end = path.read_text().split()
    return float(start), float(end)


def test_one_gpu_serialises_gpu_jobs_and_cpu_jobs_share_the_budget(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(tmp_path / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--cores",
        "4",
        "--resources",
        "mem_mb=1000",
        "gpu=1",
        "gpu_mem_mb=8000",
        "--scheduler",
        "chromosched",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "chromosched: start" in done.stderr  # chromosched chose the jobs (no greedy fallback)
    assert "internal error" not in done.stderr
    gpu = sorted(_interval(tmp_path / "gpu" / f"{i}.txt") for i in "ab")
    cpu = [_interval(tmp_path / "cpu" / f"{i}.txt") for i in "ab"]
    assert gpu[0][1] <= gpu[1][0], f"two gpu=1 jobs overlapped under --resources gpu=1: {gpu}"
    # The CPU jobs do not wait for the GPU: after the two probes (each rule's first job, alone),
    # a CPU job runs next to a GPU job.
    assert any(c0 < g1 and g0 < c1 for c0, c1 in cpu for g0, g1 in gpu), (gpu, cpu)
