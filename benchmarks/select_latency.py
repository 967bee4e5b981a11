"""Selection latency and packed memory: chromosched vs Snakemake's own schedulers, one run.

The same ready sets (1,000 and 10,000 jobs; random mem_mb 1-32 GB, 1-8 cores, one input file
each; 64 cores and 256 GB in all) go to Snakemake 9's ``greedy`` and ``milp`` schedulers
(snakemake/scheduling/), the ``firstfit`` plugin, our ``KnapsackPacker`` on the declared mem_mb (the
same input they see) and ``chromosched-policy``: the plugin's own ``Scheduler.select_jobs`` (the
adapter's job records, the session, predictions, the knapsack, the prediction store writes), the
whole call Snakemake makes.

The calls replay a run, as Snakemake would drive them: before each round (untimed) one running
job finishes (its benchmark TSV is written, so chromosched learns from it and its predictions
change) and a new job becomes ready; the jobs chromosched chose start, and the free resources
shrink by what runs. Every selector gets the same ready set and free resources in a round, round
robin (a load spike from elsewhere on the machine hits them alike); medians over the rounds. The
memory each packs is the sum of the chosen jobs' declared mem_mb. Prints ratios; ``--json``.

    python benchmarks/select_latency.py
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scheduler" / "src"))

import numpy as np  # noqa: E402
from snakemake.io import AnnotatedString  # noqa: E402
from snakemake_interface_scheduler_plugins.interfaces.dag import DAGSchedulerInterface  # noqa: E402
from snakemake_interface_scheduler_plugins.interfaces.jobs import (  # noqa: E402
    JobSchedulerInterface,
    SingleJobSchedulerInterface,
)

from chromosched.atomic_files import write_text_atomic  # noqa: E402
from chromosched.dynamic.packers import KnapsackPacker, Limits  # noqa: E402


class BenchJob(JobSchedulerInterface, SingleJobSchedulerInterface):
    """A ready job as Snakemake's schedulers see it: the interface's job, plus what the chromosched
    adapter reads from Snakemake's real jobs (rule, wildcards, attempt, threads, params, benchmark)."""

    def __init__(self, jobid: int, mem_mb: int, cores: int, input_file: AnnotatedString, bench_dir: Path):
        self.jobid = jobid
        self._resources = {"_cores": cores, "_nodes": 1, "mem_mb": mem_mb}
        self._input = [input_file]
        self._output = [AnnotatedString(f"out/{jobid}.txt")]
        self.rule = SimpleNamespace(name="bench")
        self.wildcards_dict = {"sample": f"s{jobid}"}
        self.attempt = 1
        self.threads = cores
        self.params = {}
        self._benchmark = str(bench_dir / f"{jobid}.tsv")

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
        return self._benchmark

    def add_aux_resource(self, name, value) -> None:
        self._resources[name] = value

    def __repr__(self) -> str:  # for firstfit's debug log
        return f"BenchJob({self.jobid})"


class BenchDAG(DAGSchedulerInterface):
    def __init__(self, jobs):
        self._jobs = jobs
        self.done: set = set()

    def needrun_jobs(self):
        return iter(self._jobs)

    def job_dependencies(self, job):
        return []

    def finished(self, job) -> bool:
        return job in self.done


def make_jobs(n: int, seed: int, max_cores: int, bench_dir: Path, start: int = 0):
    rng = random.Random(seed)
    jobs, sizes = [], {}
    for i in range(start, start + n):
        mem = rng.randint(1000, 32000)
        cores = rng.choice([c for c in (1, 2, 4, 8) if c <= max_cores])
        f = AnnotatedString(f"in/{i}.vcf.gz")
        sizes[f] = mem * 100_000 + rng.randint(0, 99_999)  # input size grows with memory need
        jobs.append(BenchJob(i, mem, cores, f, bench_dir))
    return jobs, sizes


def selectors(dag, workdir: Path):
    """name -> callable(selectable, remaining, resources, input_sizes) -> selected jobs."""
    import snakemake_scheduler_plugin_firstfit as firstfit
    from snakemake.scheduling import greedy, milp

    import snakemake_scheduler_plugin_chromosched as chromosched

    log = logging.getLogger("select_latency")
    log.setLevel(logging.WARNING)
    snake_greedy = greedy.Scheduler(dag, greedy.SchedulerSettings(), log)
    snake_milp = milp.Scheduler(dag, milp.SchedulerSettings(), log)
    ff = firstfit.Scheduler(dag, firstfit.SchedulerSettings(), log)
    packer = KnapsackPacker()

    def ours_knapsack(selectable, remaining, resources, input_sizes):
        selectable = list(selectable)
        res = [j.scheduler_resources for j in selectable]
        mem = np.fromiter((r.get("mem_mb", 0) for r in res), dtype=float, count=len(res))
        cores = np.fromiter((r.get("_cores", 1) for r in res), dtype=np.int64, count=len(res))
        limits = Limits(mem=resources["mem_mb"], cores=resources["_cores"])
        return [selectable[i] for i in packer.select_arrays(mem, cores, limits=limits)]

    # The plugin exactly as Snakemake constructs it (its files under a scratch directory).
    settings = chromosched.SchedulerSettings(
        store=str(workdir / "store"),
        model=str(workdir / "model.json"),
        events=str(workdir / "events.jsonl"),
        prior_rule="none",
    )
    plugin = chromosched.Scheduler(dag, settings, log)

    def ours_policy(selectable, remaining, resources, input_sizes):
        return plugin.select_jobs(selectable, remaining, resources, input_sizes)

    return {
        "chromosched-knapsack": ours_knapsack,
        "chromosched-policy": ours_policy,
        "snakemake-greedy": snake_greedy.select_jobs,
        "snakemake-milp": snake_milp.select_jobs,
        "firstfit": ff.select_jobs,
    }


def measure(n: int, repeats: int, seed: int, cores: int, mem_mb: int, progress) -> dict:
    with tempfile.TemporaryDirectory(prefix="select_latency_") as tmp:
        return _measure(Path(tmp), n, repeats, seed, cores, mem_mb, progress)


def _measure(workdir: Path, n: int, repeats: int, seed: int, cores: int, mem_mb: int, progress) -> dict:
    bench_dir = workdir / "benchmarks"
    bench_dir.mkdir()
    jobs, sizes = make_jobs(n + repeats + 1, seed, 8, bench_dir)
    ready = set(jobs[:n])
    waiting = jobs[n:]  # become ready one per round
    dag = BenchDAG(jobs)
    total = {"_cores": cores, "_nodes": sys.maxsize, "_job_count": sys.maxsize, "mem_mb": mem_mb}
    sel = selectors(dag, workdir)
    running: list = []
    rng = random.Random(seed + 1)

    def free_now() -> dict:
        free = dict(total)
        for job in running:
            for k in ("_cores", "mem_mb"):
                free[k] -= job.scheduler_resources[k]
        return free

    def start(chosen) -> None:
        for job in chosen:
            ready.discard(job)
            running.append(job)

    def finish_one() -> None:
        if running:
            job = running.pop(rng.randrange(len(running)))
            need = job.scheduler_resources["mem_mb"] * rng.uniform(0.5, 0.9)
            Path(job.benchmark).write_text(f"s\tmax_rss\n{rng.uniform(60, 600):.2f}\t{need:.2f}\n")
            dag.done.add(job)
        if waiting:
            ready.add(waiting.pop(0))

    # Warm-up round (imports, the plugin's first call builds every job's record).
    for name, fn in sel.items():
        picked = fn(set(ready), jobs, free_now(), sizes)
        if name == "chromosched-policy":
            start(picked or [])
    times: dict[str, list[float]] = {name: [] for name in sel}
    packed: dict[str, list] = {name: [] for name in sel}
    for _ in range(repeats):
        finish_one()
        free = free_now()
        for name, fn in sel.items():
            selectable = set(ready)  # Snakemake passes a fresh collection each round
            t0 = time.perf_counter()
            picked = fn(selectable, jobs, dict(free), sizes)
            times[name].append(time.perf_counter() - t0)
            if picked is None:  # milp gave up: Snakemake would fall back to greedy
                packed[name].append(None)
                continue
            mem = sum(j.scheduler_resources["mem_mb"] for j in picked)
            used_cores = sum(j.scheduler_resources["_cores"] for j in picked)
            if mem > free["mem_mb"] or used_cores > free["_cores"] or len(set(picked)) != len(picked):
                raise SystemExit(f"{name} overfilled: {mem} MB / {used_cores} cores")
            packed[name].append((len(picked), mem, used_cores, free["mem_mb"]))
            if name == "chromosched-policy":
                start(picked)
    out = {}
    for name in sel:
        rounds = [p for p in packed[name] if p is not None]
        out[name] = {
            "median_ms": statistics.median(times[name]) * 1000,
            "min_ms": min(times[name]) * 1000,
            "max_ms": max(times[name]) * 1000,
            "rounds": len(times[name]),
            "rounds_without_selection": len(packed[name]) - len(rounds),
            "jobs": sum(p[0] for p in rounds) if rounds else None,
            "mem_mb": sum(p[1] for p in rounds) if rounds else None,
            "mem_fraction": sum(p[1] for p in rounds) / sum(p[3] for p in rounds)
            if rounds and sum(p[3] for p in rounds)
            else None,
            "cores": sum(p[2] for p in rounds) if rounds else None,
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
        milp = res["snakemake-milp"]["median_ms"]
        for r in res.values():
            r["speedup_vs_milp"] = milp / r["median_ms"]
        result["sizes"][str(n)] = res
    out = Path(args.out)
    write_text_atomic(out, json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(
        f"{args.cores} cores, {args.mem_mb} MB in all; {args.repeats} rounds of a replayed run (one job finishes, "
        "one becomes ready, chromosched's choices start); median per call"
    )
    for n, res in result["sizes"].items():
        print(f"\n{n} ready jobs")
        print(
            f"{'selector':22s} {'median ms':>10s} {'max ms':>8s} {'milp/this':>9s} {'jobs':>5s} {'mem MB packed':>14s} {'of free':>8s}"
        )
        for name, r in res.items():
            if r["jobs"] is None:
                print(
                    f"{name:22s} {r['median_ms']:10.2f} {r['max_ms']:8.2f} {r['speedup_vs_milp']:9.1f}   (no selection: falls back to greedy)"
                )
                continue
            print(
                f"{name:22s} {r['median_ms']:10.2f} {r['max_ms']:8.2f} {r['speedup_vs_milp']:9.1f} {r['jobs']:5d} "
                f"{r['mem_mb']:14.0f} {r['mem_fraction']:8.1%}"
            )
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
