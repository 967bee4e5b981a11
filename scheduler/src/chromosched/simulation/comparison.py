"""Run several dynamic policies side by side on the same seeded workloads, plus the optimum.

Every seed draws one workload; every policy runs on that same workload; the CP-SAT optimum is
solved for it. Results aggregate per policy (mean and sd over seeds). ``jobs > 1`` spreads the
seeds over worker processes (results do not depend on it).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from ..dynamic.policy import PRESETS, Capacity, DynamicPolicy, preset
from ..errors import ChromoschedError
from .clairvoyant_baseline import ClairvoyantPolicy
from .declared_greedy import DeclaredGreedyPolicy
from .makespan_optimum import optimum_makespan
from .simulator import SEMANTICS, simulate
from .sizey_baseline import SizeyConfig, SizeyPolicy
from .workload import WorkloadProfile, make_workload

CONTRACT_POLICIES = (
    "knapsack",
    "knapsack+bias",
    "knapsack+bias+smallest",
    "knapsack+bias+smallest+prior",
    "sizey",
    "greedy-declared",
    "chromosched",
    "optimum",
)
DEFAULT_POLICIES = (
    CONTRACT_POLICIES[:4] + ("greedy", "greedy+bias", "greedy+bias+smallest+prior") + CONTRACT_POLICIES[4:]
)


def known_policies() -> list[str]:
    return list(PRESETS) + ["sizey", "greedy-declared", "clairvoyant", "optimum"]


@dataclass(frozen=True)
class ComparisonSettings:
    profile: WorkloadProfile
    seeds: tuple[int, ...]
    policies: tuple[str, ...] = DEFAULT_POLICIES
    semantics: str = "paper"
    optimum_time_limit_s: float = 2.0
    optimum_search_iterations: int = 1500
    sizey: SizeyConfig = field(default_factory=SizeyConfig)
    declared_headroom: float = 1.1
    declared_per_task: bool = False

    def __post_init__(self):
        if self.semantics not in SEMANTICS:
            raise ChromoschedError(f"semantics must be one of {', '.join(SEMANTICS)}, got {self.semantics!r}")
        known = set(known_policies())
        for p in self.policies:
            if p not in known:
                raise ChromoschedError(f"unknown policy '{p}' (known: {', '.join(known_policies())})")
        if not self.seeds:
            raise ChromoschedError("need at least one seed")


def make_policy(name: str, settings: ComparisonSettings, workload=None):
    prof = settings.profile
    cap = Capacity(prof.capacity, max_tasks=prof.max_parallel)
    if name == "sizey":
        return SizeyPolicy(cap, settings.sizey)
    if name == "clairvoyant":
        if workload is None:
            raise ChromoschedError("the clairvoyant baseline needs the workload")
        return ClairvoyantPolicy(workload)
    if name == "greedy-declared":
        return DeclaredGreedyPolicy(cap, settings.declared_headroom, settings.declared_per_task)
    if name == "chromosched" and settings.semantics == "system":
        # Shared memory without per-job limits: our best configuration pools the safety margin.
        return DynamicPolicy(preset("chromosched-shared"), cap)
    return DynamicPolicy(preset(name), cap)


def run_seed(settings: ComparisonSettings, seed: int) -> dict[str, dict]:
    """All policies (and the optimum) on the workload of one seed: name -> metrics."""
    w = make_workload(settings.profile, seed)
    out: dict[str, dict] = {}
    for name in settings.policies:
        t0 = time.perf_counter()
        if name == "optimum":
            opt = optimum_makespan(
                w,
                time_limit_s=settings.optimum_time_limit_s,
                search_iterations=settings.optimum_search_iterations,
                seed=seed,
            )
            area = sum(t.ram * t.duration for t in w.tasks)
            out[name] = {
                "makespan": opt.makespan,
                "overcommits": 0.0,
                "peak_utilisation": float("nan"),
                "utilisation": area / (w.capacity * opt.makespan),
                "allocated_fraction": area / (w.capacity * opt.makespan),
                "wasted": 0.0,
                "lower_bound": opt.lower_bound,
                "status": opt.status,
            }
        else:
            res = simulate(w, make_policy(name, settings, w), semantics=settings.semantics)
            out[name] = res.metrics()
        out[name]["wall_s"] = time.perf_counter() - t0
    return out


def _run_seed_star(args):
    settings, seed = args
    return seed, run_seed(settings, seed)


def compare(settings: ComparisonSettings, jobs: int = 1, progress: Callable[[str], None] | None = None) -> dict:
    """Run everything; return the JSON-ready summary (see ``summarise``)."""
    per_seed: dict[int, dict[str, dict]] = {}
    t0 = time.perf_counter()
    n = len(settings.seeds)

    def report(done: int) -> None:
        if progress is not None:
            el = time.perf_counter() - t0
            eta = el / done * (n - done) if done else float("nan")
            progress(f"seed {done}/{n} done, {el:.0f} s elapsed, ~{eta:.0f} s left")

    if jobs <= 1:
        for k, seed in enumerate(settings.seeds, 1):
            per_seed[seed] = run_seed(settings, seed)
            report(k)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for k, (seed, res) in enumerate(ex.map(_run_seed_star, [(settings, s) for s in settings.seeds]), 1):
                per_seed[seed] = res
                report(k)
    return summarise(settings, per_seed)


def summarise(settings: ComparisonSettings, per_seed: dict[int, dict[str, dict]]) -> dict:
    seeds = sorted(per_seed)
    rows = []
    opt = [per_seed[s]["optimum"]["makespan"] for s in seeds] if "optimum" in settings.policies else None
    for name in settings.policies:
        ms = np.array([per_seed[s][name]["makespan"] for s in seeds])
        row = {
            "name": name,
            "makespan_mean": float(ms.mean()),
            "makespan_sd": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
            "overcommits_mean": float(np.mean([per_seed[s][name]["overcommits"] for s in seeds])),
            "utilisation_mean": float(np.mean([per_seed[s][name]["utilisation"] for s in seeds])),
            "wasted_mean": float(np.mean([per_seed[s][name]["wasted"] for s in seeds])),
            "peak_utilisation_mean": _nanmean([per_seed[s][name]["peak_utilisation"] for s in seeds]),
            "allocated_fraction_mean": float(np.mean([per_seed[s][name]["allocated_fraction"] for s in seeds])),
            "overcommits_max": float(np.max([per_seed[s][name]["overcommits"] for s in seeds])),
            "wall_s_mean": float(np.mean([per_seed[s][name]["wall_s"] for s in seeds])),
        }
        if opt is not None:
            row["ratio_to_optimum"] = float(ms.mean() / np.mean(opt))
        rows.append(row)
    out: dict = {"policies": rows}
    if opt is not None:
        statuses = [per_seed[s]["optimum"]["status"] for s in seeds]
        lbs = [per_seed[s]["optimum"]["lower_bound"] for s in seeds]
        out["optimum_makespan_mean"] = float(np.mean(opt))
        out["optimum"] = {
            "makespan_mean": float(np.mean(opt)),
            "lower_bound_mean": float(np.mean(lbs)),
            "proven_optimal": int(sum(st == "OPTIMAL" for st in statuses)),
            "statuses": {st: statuses.count(st) for st in sorted(set(statuses))},
            "time_limit_s": settings.optimum_time_limit_s,
            "search_iterations": settings.optimum_search_iterations,
        }
    else:
        out["optimum_makespan_mean"] = None
    prof = asdict(settings.profile)
    out["settings"] = {
        "profile": prof,
        "seeds": [min(seeds), max(seeds)] if seeds == list(range(min(seeds), max(seeds) + 1)) else seeds,
        "n_seeds": len(seeds),
        "semantics": settings.semantics,
        "sizey": asdict(settings.sizey),
        "declared_headroom": settings.declared_headroom,
        "declared_per_task": settings.declared_per_task,
    }
    return out


def _nanmean(xs) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else None


def stderr_progress(msg: str) -> None:
    print(f"chromosched: {msg}", file=sys.stderr, flush=True)


__all__ = [
    "CONTRACT_POLICIES",
    "DEFAULT_POLICIES",
    "ComparisonSettings",
    "compare",
    "known_policies",
    "make_policy",
    "run_seed",
    "summarise",
    "stderr_progress",
]
