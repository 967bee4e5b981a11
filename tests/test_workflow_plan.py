"""`chromosched plan` on a hand-checked tiny DAG (real Snakemake DAG, simulated schedule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chromosched.cli import main
from chromosched.static.ordering_table import OrderingRow, OrderingTable

SNAKEFILE = """
MEM = {"chr1": 300, "chr2": 200, "chr3": 100}
MINUTES = {"chr1": 2, "chr2": 1, "chr3": 1}
rule all:
    input: "merged.txt"
rule work:
    output: "out/{chrom}.txt"
    resources: mem_mb=lambda wc: MEM[wc.chrom], runtime=lambda wc: MINUTES[wc.chrom]
    shell: "echo {wildcards.chrom} > {output}"
rule merge:
    input: expand("out/{chrom}.txt", chrom=MEM)
    output: "merged.txt"
    resources: mem_mb=50, runtime=1
    shell: "cat {input} > {output}"
"""


@pytest.fixture()
def tiny_workflow(tmp_path: Path) -> Path:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    rows = [
        OrderingRow(1, ("chr3", "chr1", "chr2"), 3.0, 3.0, 3.0, "hand", 0),
        OrderingRow(2, ("chr3", "chr1", "chr2"), 5.0, 5.0, 4.0, "hand", 0),
        OrderingRow(3, ("chr3", "chr1", "chr2"), 6.0, 6.0, 6.0, "hand", 0),
    ]
    OrderingTable(rows, {"source": "hand", "model": "list"}).write(tmp_path / "order.tsv")
    return tmp_path


def plan_json(capsys, workdir: Path, *args: str) -> dict:
    code = main(["plan", "--directory", str(workdir), "--json", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_static_plan_matches_the_hand_computed_schedule(tiny_workflow, capsys):
    plan = plan_json(
        capsys,
        tiny_workflow,
        "--mode",
        "static",
        "--ordering",
        str(tiny_workflow / "order.tsv"),
        "--workers",
        "2",
        "--budget-mb",
        "450",
        "--cores",
        "2",
    )
    got = [
        (j["rule"], j["wildcards"].get("chrom"), j["predicted_mem_mb"], j["start_s"], j["batch"]) for j in plan["jobs"]
    ]
    # K=2 in table order chr3, chr1, chr2. t=0: chr3 (100 MB, 60 s) and chr1 (300 MB, 120 s) start.
    # t=60: chr3 ends, but chr2 (200 MB) does not fit next to chr1 (300 + 200 > 450): it waits.
    # t=120: chr1 ends, chr2 starts (60 s). t=180: merge (60 s). t=240: all (no runtime: 60 s default).
    assert got == [
        ("work", "chr3", 100, 0.0, 1),
        ("work", "chr1", 300, 0.0, 1),
        ("work", "chr2", 200, 120.0, 2),
        ("merge", None, 50, 180.0, 3),
        ("all", None, 0, 240.0, 4),
    ]
    assert plan["budget_mb"] == 450 and plan["peak_mb"] == 400 and plan["makespan_estimate_s"] == 300
    assert plan["cannot_fit"] == []


def test_dynamic_plan_is_memory_safe_and_respects_dependencies(tiny_workflow, capsys):
    plan = plan_json(capsys, tiny_workflow, "--mode", "dynamic", "--budget-mb", "450", "--cores", "2")
    jobs = {(j["rule"], j["wildcards"].get("chrom")): j for j in plan["jobs"]}
    assert set(jobs) == {("work", "chr1"), ("work", "chr2"), ("work", "chr3"), ("merge", None), ("all", None)}
    assert plan["peak_mb"] <= 450
    work_end = max(j["end_s"] for j in plan["jobs"] if j["rule"] == "work")
    assert jobs[("merge", None)]["start_s"] >= work_end
    assert jobs[("all", None)]["start_s"] >= jobs[("merge", None)]["end_s"]
    for (rule, chrom), job in jobs.items():  # never less than a rule declares for itself here
        if rule == "work":
            assert job["predicted_mem_mb"] >= {"chr1": 300, "chr2": 200, "chr3": 100}[chrom]


def test_a_job_larger_than_the_budget_is_reported(tiny_workflow, capsys):
    code = main(
        [
            "plan",
            "--directory",
            str(tiny_workflow),
            "--mode",
            "static",
            "--ordering",
            str(tiny_workflow / "order.tsv"),
            "--workers",
            "2",
            "--budget-mb",
            "250",
            "--cores",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "cannot run: work(chr1)" in out and "cannot run: merge" in out and "cannot run: all" in out


def test_missing_snakefile_is_a_clear_error(tmp_path, capsys):
    assert main(["plan", "--directory", str(tmp_path)]) == 2
    assert "no Snakefile found" in capsys.readouterr().err
