"""Selection latency and packed memory: chromosched vs Snakemake's own schedulers, one run.

The same ready sets (1,000 and 10,000 jobs; random mem_mb 1-32 GB, 1-8 cores, one input file
each; 64 free cores and 256 GB) go to Snakemake 9's ``greedy`` and ``milp`` schedulers (snakemake/scheduling/), the
``firstfit`` plugin, our ``KnapsackPacker`` on the declared mem_mb (the same input they see) and
our whole ``DynamicPolicy.select`` (job records -> predictions -> knapsack, the work the plugin
does per call). The selectors are timed round robin (median of the repeats); the memory each packs
is the sum of the chosen jobs' declared mem_mb. Prints ratios side by side; ``--json``.

    python benchmarks/select_latency.py
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scheduler" / "src"))

from snakemake.io import AnnotatedString  # noqa: E402
from snakemake_interface_scheduler_plugins.interfaces.dag import DAGSchedulerInterface  # noqa: E402
from snakemake_interface_scheduler_plugins.interfaces.jobs import (  # noqa: E402
    JobSchedulerInterface,
    SingleJobSchedulerInterface,
)

from chromosched.atomic_files import write_text_atomic  # noqa: E402
from chromosched.dynamic_policy import Capacity, DynamicPolicy, TaskRequest, preset  # noqa: E402
import numpy as np  # noqa: E402

from chromosched.packers import KnapsackPacker, Limits  # noqa: E402


class BenchJob(JobSchedulerInterface, SingleJobSchedulerInterface):
    """A ready job as Snakemake's schedulers see it (the interface's test jobs, plus a rule name)."""

    def __init__(self, jobid: int, mem_mb: int, cores: int, input_file: AnnotatedString):
        self.jobid = jobid
        self._resources = {"_cores": cores, "_nodes": 1, "mem_mb": mem_mb}
        self._input = [input_file]
        self._output = [AnnotatedString(f"out/{jobid}.txt")]

    @property
    def priority(self) -> int:
        return 0

    @property
    def scheduler_resources(self):
        return self._resources

    @property
    def input(self):
        return self._input

    @property
    def output(self):
        return self._output

    @property
    def log(self):
        return []

    @property
    def benchmark(self):
        return []

    def add_aux_resource(self, name, value) -> None:
        self._resources[name] = value

    def __repr__(self) -> str:  # for firstfit's debug log
        return f"BenchJob({self.jobid})"


class BenchDAG(DAGSchedulerInterface):
    def __init__(self, jobs):
        self._jobs = jobs

    def needrun_jobs(self):
        return iter(self._jobs)

    def job_dependencies(self, job):
        return []

    def finished(self, job) -> bool:
        return False


def make_jobs(n: int, seed: int, max_cores: int):
    rng = random.Random(seed)
    jobs, sizes = [], {}
    for i in range(n):
        mem = rng.randint(1000, 32000)
        cores = rng.choice([c for c in (1, 2, 4, 8) if c <= max_cores])
        f = AnnotatedString(f"in/{i}.vcf.gz")
        sizes[f] = mem * 100_000 + rng.randint(0, 99_999)  # input size grows with memory need
        jobs.append(BenchJob(i, mem, cores, f))
    return jobs, sizes


def selectors(jobs):
    """name -> callable(selectable, remaining, resources, input_sizes) -> selected jobs."""
    from snakemake.scheduling import greedy, milp
    import snakemake_scheduler_plugin_firstfit as firstfit

    log = logging.getLogger("select_latency")
    log.setLevel(logging.WARNING)
    dag = BenchDAG(jobs)
    snake_greedy = greedy.Scheduler(dag, greedy.SchedulerSettings(), log)
    snake_milp = milp.Scheduler(dag, milp.SchedulerSettings(), log)
    ff = firstfit.Scheduler(dag, firstfit.SchedulerSettings(), log)
    packer = KnapsackPacker()

    def ours_knapsack(selectable, remaining, resources, input_sizes):
        res = [j.scheduler_resources for j in selectable]
        mem = np.fromiter((r.get("mem_mb", 0) for r in res), dtype=float, count=len(res))
        cores = np.fromiter((r.get("_cores", 1) for r in res), dtype=np.int64, count=len(res))
        limits = Limits(mem=resources["mem_mb"], cores=resources["_cores"])
        return [selectable[i] for i in packer.select_arrays(mem, cores, limits=limits)]

    policy = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=256000.0, cores=64))

    def ours_policy(selectable, remaining, resources, input_sizes):
        tasks = [
            TaskRequest(
                task_id=str(j.jobid),
                kind="bench",
                features={"index": float(input_sizes[j.input[0]])},
                prior_mb=float(j.scheduler_resources["mem_mb"]),
                cores=j.scheduler_resources["_cores"],
            )
            for j in selectable
        ]
        by_id = {str(j.jobid): j for j in selectable}
        chosen = policy.select(tasks, Capacity(mem_mb=float(resources["mem_mb"]), cores=resources["_cores"]))
        return [by_id[a.task.task_id] for a in chosen]

    return {
        "chromosched-knapsack": ours_knapsack,
        "chromosched-policy": ours_policy,
        "snakemake-greedy": snake_greedy.select_jobs,
        "snakemake-milp": snake_milp.select_jobs,
        "firstfit": ff.select_jobs,
    }


def measure(n: int, repeats: int, seed: int, cores: int, mem_mb: int, progress) -> dict:
    jobs, sizes = make_jobs(n, seed, max_cores=8)
    resources = {"_cores": cores, "_nodes": sys.maxsize, "_job_count": sys.maxsize, "mem_mb": mem_mb}
    out = {}
    sel = selectors(jobs)
    times: dict[str, list[float]] = {name: [] for name in sel}
    chosen: dict[str, list | None] = {}
    for name, fn in sel.items():
        chosen[name] = fn(list(jobs), jobs, dict(resources), sizes)  # warm-up (imports, first fit)
    # Round robin: a load spike from elsewhere on the machine hits every selector alike.
    for _ in range(repeats):
        for name, fn in sel.items():
            t0 = time.perf_counter()
            chosen[name] = fn(list(jobs), jobs, dict(resources), sizes)
            times[name].append(time.perf_counter() - t0)
    for name in sel:
        picked = chosen[name]
        if picked is None:  # milp gave up: Snakemake would fall back to greedy
            out[name] = {"median_ms": statistics.median(times[name]) * 1000, "jobs": None, "mem_mb": None, "cores": None}
            continue
        mem = sum(j.scheduler_resources["mem_mb"] for j in picked)
        used_cores = sum(j.scheduler_resources["_cores"] for j in picked)
        if mem > mem_mb or used_cores > cores:
            raise SystemExit(f"{name} overfilled: {mem} MB / {used_cores} cores")
        out[name] = {
            "median_ms": statistics.median(times[name]) * 1000,
            "min_ms": min(times[name]) * 1000,
            "jobs": len(picked),
            "mem_mb": mem,
            "mem_fraction": mem / mem_mb,
            "cores": used_cores,
        }
        progress(f"{n} jobs: {name} {out[name]['median_ms']:.1f} ms")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000", help="ready-set sizes (default 1000,10000)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per selector and size, round robin (median)")
    p.add_argument("--cores", type=int, default=64, help="free cores (default 64)")
    p.add_argument("--mem-mb", type=int, default=256000, help="free memory (default 256000 MB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", default=str(HERE / "out" / "select_latency.json"))
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"select_latency: {msg}", file=sys.stderr, flush=True)

    result = {"settings": vars(args).copy(), "sizes": {}}
    for n in (int(s) for s in args.sizes.split(",")):
        res = measure(n, args.repeats, args.seed, args.cores, args.mem_mb, progress)
        base = res["chromosched-knapsack"]
        for name, r in res.items():
            r["time_ratio_vs_chromosched_knapsack"] = r["median_ms"] / base["median_ms"]
            r["mem_ratio_chromosched_knapsack_vs"] = base["mem_mb"] / r["mem_mb"] if r.get("mem_mb") else None
        result["sizes"][str(n)] = res
    out = Path(args.out)
    write_text_atomic(out, json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"free resources: {args.cores} cores, {args.mem_mb} MB; median of {args.repeats} calls; "
          "ratios relative to chromosched-knapsack")
    for n, res in result["sizes"].items():
        print(f"\n{n} ready jobs")
        print(f"{'selector':22s} {'median ms':>10s} {'x slower':>9s} {'jobs':>5s} {'mem MB packed':>14s} {'mem %':>6s} {'ours/mem':>9s}")
        for name, r in res.items():
            if r["jobs"] is None:
                print(f"{name:22s} {r['median_ms']:10.2f} {r['time_ratio_vs_chromosched_knapsack']:9.1f}   (no selection: falls back to greedy)")
                continue
            print(
                f"{name:22s} {r['median_ms']:10.2f} {r['time_ratio_vs_chromosched_knapsack']:9.1f} {r['jobs']:5d} "
                f"{r['mem_mb']:14d} {r['mem_fraction']:6.1%} {r['mem_ratio_chromosched_knapsack_vs']:9.2f}"
            )
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
