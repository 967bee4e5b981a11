#!/usr/bin/env python3
"""chromosched on workflows it has never seen: no prior, rules not store-backed.

Six small per-item workflows (tests/data/unseen_workflow: jobs really allocate and hold their
memory and log their own start/end), each run under one budget with ``--scheduler greedy`` and
``--scheduler chromosched`` (side by side, same machine, same run of this script):

1. ``linear-length``: memory linear in chromosome length, fixed mem_mb declared 3x too low;
2. ``linear-input``: memory linear in the input file size (items ``s01``.. carry no size), declared too low;
3. ``quadratic-length``: memory quadratic in length, no mem_mb at all (wildcard values ``7``, ``21``);
4. ``constant-high``: constant memory plus noise, declared 3x too high;
5. ``two-rules``: two rules with different laws in one DAG (the second reads the first's output);
6. ``outliers``: linear in length with two jobs at 5x the law.

Per workflow and scheduler it prints over-budget starts (a job started while the real memory of
the jobs already running was above the budget), peak real memory (sum of the real memory of jobs
running at once), makespan (first job start to last job end) and makespan / bound, where bound =
max(area bound = sum(real MB x duration) / budget, longest job). Real MB is each job's own peak RSS
(it logs it: the law's ``need`` plus the interpreter holding it); the ratio to the bound from
``need`` alone is reported too (``makespan_over_need_bound``).

Jobs last 1.8-7.2 s (``--scale``, default 3, multiplies the base 0.6-2.4 s).

    python benchmarks/unseen_workflows.py [--workflows NAME ...] [--schedulers greedy chromosched] [--scale 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "tests" / "data" / "unseen_workflow" / "Snakefile"
GRCH37 = {  # autosome lengths, Mbp
    "1": 249.25,
    "2": 243.20,
    "3": 198.02,
    "4": 191.15,
    "5": 180.92,
    "6": 171.12,
    "7": 159.14,
    "8": 146.36,
    "9": 141.21,
    "10": 135.53,
    "11": 135.01,
    "12": 133.85,
    "13": 115.17,
    "14": 107.35,
    "15": 102.53,
    "16": 90.35,
    "17": 81.20,
    "18": 78.08,
    "19": 59.13,
    "20": 63.03,
    "21": 48.13,
    "22": 51.30,
}
BUDGET = 700
# Jobs last 1.8-7.2 s by default. At the base 0.6-2.4 s, Snakemake's own start latency (0.1-0.4 s
# from a selection to the job's process on these 2 cores, paid by greedy too) and the fixed cost
# of learning an unseen rule (a probe, then a few size rungs, each needing its RSS to stay flat
# for 0.5 s) are a third of a job; per-chromosome jobs in genomics last minutes. --scale 1 runs
# the base durations (the tests use shorter ones still).
DEFAULT_SCALE = 3.0
TARGETS = {"over_budget_starts": 0, "makespan_over_bound": 1.5}


def _hold(size: float, top: float, base: float = 0.6, span: float = 1.8) -> float:
    """Job duration (s): grows with size, 0.6 s .. 2.4 s."""
    return round(base + span * size / top, 2)


def family(scale: float = 1.0) -> dict[str, dict]:
    """The six workflows: name -> {config, budget, input_mb}. ``scale`` multiplies durations."""
    chroms = list(GRCH37)
    top = max(GRCH37.values())
    rng = random.Random(13)
    out: dict[str, dict] = {}

    def chrom_rule(law, declared=None, names=lambda c: f"chr{c}"):
        need = {names(c): int(round(law(GRCH37[c]))) for c in chroms}
        hold = {names(c): _hold(GRCH37[c], top) * scale for c in chroms}
        spec = {"need": need, "hold": hold}
        if declared is not None:
            spec["declared"] = int(declared(need))
        return spec

    lin = chrom_rule(lambda L: 1.0 * L + 10, declared=lambda n: max(n.values()) / 3)
    out["linear-length"] = {
        "config": {"wildcard": "chrom", "items": [f"chr{c}" for c in chroms], "rules": {"first": lin}},
        "input_mb": {},
    }

    samples = [f"s{i:02d}" for i in range(1, 23)]
    sizes = {s: rng.choice([20, 40, 60, 80, 100, 120, 140, 160, 180, 200]) for s in samples}
    sizes[samples[0]], sizes[samples[1]] = 15, 200
    need = {s: int(round(1.3 * sizes[s] + 15)) for s in samples}
    hold = {s: _hold(sizes[s], 200) * scale for s in samples}
    out["linear-input"] = {
        "config": {
            "wildcard": "sample",
            "items": samples,
            "rules": {"first": {"need": need, "hold": hold, "declared": int(max(need.values()) / 3)}},
        },
        "input_mb": sizes,
    }

    quad = chrom_rule(lambda L: 20 + 0.0045 * L * L, names=lambda c: c)
    out["quadratic-length"] = {
        "config": {"wildcard": "contig", "items": chroms, "rules": {"first": quad}},
        "input_mb": {},
    }

    const = chrom_rule(lambda L: 110 + rng.uniform(-10, 10), declared=lambda n: 3 * 110)
    out["constant-high"] = {
        "config": {"wildcard": "region", "items": [f"chr{c}" for c in chroms], "rules": {"first": const}},
        "input_mb": {},
    }

    first = chrom_rule(lambda L: 0.9 * L + 20, declared=lambda n: max(n.values()) / 3)
    second = chrom_rule(lambda L: 160 - 0.5 * L)  # no mem_mb; smaller chromosomes need more
    out["two-rules"] = {
        "config": {
            "wildcard": "chromosome",
            "items": [f"chr{c}" for c in chroms],
            "rules": {"first": first, "second": second},
        },
        "input_mb": {},
    }

    outl = chrom_rule(lambda L: 0.8 * L + 10, declared=lambda n: max(n.values()) / 3)
    for c in ("chr17", "chr19"):
        outl["need"][c] *= 5
    out["outliers"] = {
        "config": {"wildcard": "seq", "items": [f"chr{c}" for c in chroms], "rules": {"first": outl}},
        "input_mb": {},
    }
    for wf in out.values():
        wf["budget"] = BUDGET
    return out


def prepare(workdir: Path, workflow: dict) -> None:
    """Fresh working directory with the config and the input files (sizes as the workflow says)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "inputs").mkdir(parents=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(workflow["config"]))
    for item in workflow["config"]["items"]:
        with open(workdir / "inputs" / f"{item}.dat", "wb") as fh:
            fh.truncate(int(workflow["input_mb"].get(item, 0.01) * 2**20))


def run_snakemake(
    workdir: Path,
    scheduler: str,
    budget: int,
    cores: int = 8,
    extra: tuple[str, ...] = (),
    timeout: float = 600,
    snakefile: Path = SNAKEFILE,
    latency_wait: int | None = 1,
) -> subprocess.CompletedProcess:
    """Snakemake on ``snakefile`` in ``workdir`` (its config.yaml) under ``--resources mem_mb=budget``;
    also the test suite's way of running its small workflows."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--cores",
        str(cores),
        "--resources",
        f"mem_mb={budget}",
        "--scheduler",
        scheduler,
        *(() if latency_wait is None else ("--latency-wait", str(latency_wait))),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def ledger(workdir: Path) -> list[dict]:
    path = workdir / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _real_mb(entry: dict) -> float:
    """A job's real memory: its process's own peak RSS (the interpreter included), as the job
    logged it; the declared law's ``need`` for ledgers written before jobs logged their RSS."""
    return float(entry.get("rss_mb", entry["need"]))


def _real_mb_at(entry: dict, t: float) -> float:
    """A job's real memory at time ``t`` within its run: its peak RSS once its ``need`` MB are
    resident (``held``), before that only the interpreter (peak RSS minus ``need``)."""
    if t >= entry.get("held", entry["start"]):
        return _real_mb(entry)
    return max(_real_mb(entry) - entry["need"], 0.0)


def metrics(entries: list[dict], budget: float) -> dict:
    """Over-budget starts, peak real memory, makespan and its ratio to the bound, from the jobs' own log.

    Real memory is each job's measured peak RSS (``rss_mb``: the law's ``need`` plus the Python
    interpreter holding it, about 15-20 MB), the memory the machine really gave it, from the moment
    its ``need`` was resident (``held``; the interpreter alone before); the ratio to a bound from
    the laws' ``need`` alone is reported beside it (``makespan_over_need_bound``). The area bound
    counts each job's peak RSS over its whole run (what a reservation must cover)."""
    if not entries:
        return {"jobs": 0}
    over = 0
    for e in entries:
        t = e["start"]
        running = sum(_real_mb_at(o, t) for o in entries if o is not e and o["start"] < t < o["end"])
        over += running > budget
    times = sorted({e["start"] for e in entries} | {e.get("held", e["start"]) for e in entries})
    peak = max(sum(_real_mb_at(o, t) for o in entries if o["start"] <= t < o["end"]) for t in times)
    makespan = max(e["end"] for e in entries) - min(e["start"] for e in entries)
    longest = max(e["end"] - e["start"] for e in entries)
    bound = max(sum(_real_mb(e) * (e["end"] - e["start"]) for e in entries) / budget, longest)
    need_bound = max(sum(e["need"] * (e["end"] - e["start"]) for e in entries) / budget, longest)
    return {
        "jobs": len(entries),
        "failed": sum(1 for e in entries if not e.get("ok", True)),
        "over_budget_starts": over,
        "peak_real_mb": round(peak),
        "makespan_s": round(makespan, 2),
        "bound_s": round(bound, 2),
        "makespan_over_bound": round(makespan / bound, 3),
        "makespan_over_need_bound": round(makespan / need_bound, 3),
    }


SCHEDULERS = {
    "greedy": ("greedy", ()),
    "chromosched": ("chromosched", ()),
    "chromosched-no-live": ("chromosched", ("--scheduler-chromosched-live-memory", "off")),
    "chromosched-reserve": ("chromosched", ("--scheduler-chromosched-reserve-head", "on")),
}


def run_one(root: Path, name: str, workflow: dict, scheduler: str) -> dict:
    workdir = root / name / scheduler
    prepare(workdir, workflow)
    plugin, extra = SCHEDULERS[scheduler]
    started = time.time()
    proc = run_snakemake(workdir, plugin, workflow["budget"], extra=extra)
    result = {
        "workflow": name,
        "scheduler": scheduler,
        "budget_mb": workflow["budget"],
        "rc": proc.returncode,
        "wall_s": round(time.time() - started, 1),
        **metrics(ledger(workdir), workflow["budget"]),
    }
    if proc.returncode != 0:
        result["error"] = proc.stderr[-2000:]
    return result


def few_shot(seeds: int = 20) -> list[dict]:
    """Few-shot sanity of the policy alone: a linear-in-length law (1 MB/Mbp + 10, 5 % noise),
    2-8 observed jobs (spread at random, or the smallest first as the probe order gives them);
    per case the median over seeds of the median and worst point error on the other jobs, the
    median allocation / truth, and the lowest allocation / truth over all seeds."""
    import statistics
    from dataclasses import replace

    from chromosched.dynamic.policy import Capacity, DynamicPolicy, TaskRequest, preset

    lengths = {f"chr{c}": v for c, v in GRCH37.items()}
    rows = []
    for order_name in ("spread", "smallest"):
        for k in range(2, 9):
            med, worst, amed, amin = [], [], [], []
            for seed in range(seeds):
                rng = random.Random(seed)
                truth = {c: (1.0 * L + 10) * (1 + rng.uniform(-0.05, 0.05)) for c, L in lengths.items()}
                order = (
                    rng.sample(sorted(lengths), len(lengths))
                    if order_name == "spread"
                    else sorted(lengths, key=lengths.get)
                )
                config = replace(preset("chromosched-probe"), feature="size", alt_features=("length",))
                policy = DynamicPolicy(config, Capacity(mem_mb=5000))
                tasks = {c: TaskRequest(c, "r", {"size": L, "length": L}, size_hint=L) for c, L in lengths.items()}
                policy._register(tasks.values())
                for c in order[:k]:
                    policy.observe_success(tasks[c], truth[c], 1.0)
                rest = [c for c in lengths if c not in order[:k]]
                mems, points = policy._allocations("r", [tasks[c] for c in rest])
                errs = sorted(abs(p / truth[c] - 1) for c, p in zip(rest, points))
                ratio = sorted(m / truth[c] for c, m in zip(rest, mems))
                med.append(errs[len(errs) // 2])
                worst.append(errs[-1])
                amed.append(ratio[len(ratio) // 2])
                amin.append(ratio[0])
            rows.append(
                {
                    "observations": k,
                    "order": order_name,
                    "median_error": round(statistics.median(med), 3),
                    "worst_error": round(statistics.median(worst), 3),
                    "median_alloc_over_truth": round(statistics.median(amed), 3),
                    "lowest_alloc_over_truth": round(min(amin), 3),
                }
            )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflows", nargs="*", default=None, help="subset of: " + ", ".join(family()))
    ap.add_argument("--schedulers", nargs="*", default=["greedy", "chromosched"], choices=list(SCHEDULERS))
    ap.add_argument("--keep", help="working directory to keep (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--few-shot", action="store_true", help="only the few-shot prediction table (no Snakemake runs)")
    ap.add_argument(
        "--scale",
        type=float,
        default=DEFAULT_SCALE,
        help=f"multiply every job's base duration of 0.6-2.4 s (default {DEFAULT_SCALE:g}: 1.8-7.2 s; "
        "memory is unchanged)",
    )
    args = ap.parse_args(argv)
    if args.few_shot:
        rows = few_shot()
        if args.json:
            print(json.dumps({"few_shot": rows}, indent=1))
        else:
            for r in rows:
                print(json.dumps(r))
        return 0
    if args.scale <= 0:
        ap.error(f"--scale must be positive, got {args.scale}")
    workflows = family(args.scale)
    names = args.workflows or list(workflows)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="unseen-"))
    results = []
    try:
        for name in names:
            for scheduler in args.schedulers:
                results.append(run_one(root, name, workflows[name], scheduler))
                if not args.json:
                    r = results[-1]
                    print(
                        f"{name:18s} {scheduler:20s} rc={r['rc']} over-budget starts={r.get('over_budget_starts')} "
                        f"peak={r.get('peak_real_mb')}/{r['budget_mb']} MB makespan={r.get('makespan_s')} s "
                        f"bound={r.get('bound_s')} s ratio={r.get('makespan_over_bound')} "
                        f"(to the need-only bound {r.get('makespan_over_need_bound')})",
                        flush=True,
                    )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    summary = {}
    ours = [r for r in results if r["scheduler"] == "chromosched"]
    if ours:
        summary["chromosched_over_budget_starts"] = sum(r.get("over_budget_starts", 0) for r in ours)
        summary["chromosched_worst_ratio"] = max(r.get("makespan_over_bound", float("inf")) for r in ours)
        slower = []
        for r in ours:
            g = next((x for x in results if x["workflow"] == r["workflow"] and x["scheduler"] == "greedy"), None)
            if g and g.get("over_budget_starts") == 0 and r.get("makespan_s", 0) > g.get("makespan_s", 0):
                slower.append(r["workflow"])
        summary["slower_than_safe_greedy"] = slower
    if args.json:
        print(json.dumps({"results": results, "summary": summary, "targets": TARGETS}, indent=1))
    else:
        print("summary:", json.dumps(summary))
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
