"""`chromosched simulate dynamic`: the dynamic policies side by side on simulated workloads."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from ..errors import ChromoschedError


def _seeds(args) -> tuple[int, ...]:
    if args.seeds < 1:
        raise ChromoschedError(f"--seeds must be >= 1, got {args.seeds}")
    return tuple(range(args.first_seed, args.first_seed + args.seeds))


def _relative_sizes(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ChromoschedError(f"--relative-sizes must be comma-separated numbers, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise ChromoschedError(f"--relative-sizes needs positive numbers, got {text!r}")
    return vals


def build_settings(args, task_size: float | None = None, policies: tuple[str, ...] | None = None):
    """``ComparisonSettings`` from parsed ``--seeds``/``--first-seed`` and :func:`add_simulation_arguments` flags.

    ``task_size`` and ``policies`` default to ``chromosched simulate dynamic``'s ``--task-size`` and
    ``--policies``; benchmarks/dynamic_ablation.py passes its own (one task size at a time).
    """
    from ..simulation.comparison import DEFAULT_POLICIES, ComparisonSettings
    from ..simulation.sizey_baseline import SizeyConfig
    from ..simulation.workload import profile

    overrides = dict(
        capacity=args.capacity,
        task_size=args.task_size if task_size is None else task_size,
        n_tasks=args.tasks,
        ratio=args.ratio,
        beta_ram=args.beta_ram,
        beta_dur=args.beta_dur,
        relative_sizes=_relative_sizes(args.relative_sizes),
    )
    if args.no_clip_ram:
        overrides["clip_ram"] = False
    try:
        prof = profile(args.profile, **overrides)
    except TypeError as err:  # pragma: no cover - programming error
        raise ChromoschedError(str(err)) from None
    if args.max_parallel is not None:
        # not through profile(): it drops None overrides, and None is how "0 = no cap" is spelt
        prof = replace(prof, max_parallel=None if args.max_parallel == 0 else args.max_parallel)
    if policies is None:
        policies = tuple(p.strip() for p in args.policies.split(",")) if args.policies else DEFAULT_POLICIES
    if args.optimum_time_limit <= 0:
        raise ChromoschedError(f"--optimum-time-limit must be > 0, got {args.optimum_time_limit}")
    return ComparisonSettings(
        profile=prof,
        seeds=_seeds(args),
        policies=policies,
        semantics=args.semantics,
        optimum_time_limit_s=args.optimum_time_limit,
        optimum_search_iterations=args.optimum_search,
        sizey=SizeyConfig(alpha=args.sizey_alpha, softmax=not args.sizey_argmax, packer=args.sizey_packer),
        declared_headroom=args.declared_headroom,
        declared_per_task=args.declared_per_task,
    )


def format_table(result: dict) -> str:
    opt = result.get("optimum_makespan_mean")
    lines = []
    s = result["settings"]
    prof = s["profile"]
    lines.append(
        f"profile {prof['name']}: capacity {prof['capacity']:g}, {prof['n_tasks']} tasks, task size {prof['task_size']:.0%}, "
        f"beta_ram {prof['beta_ram']:g}, beta_dur {prof['beta_dur']:g}, max parallel {prof['max_parallel']}, "
        f"{s['semantics']} semantics, {s['n_seeds']} seeds"
    )
    head = (
        f"{'policy':32s} {'makespan':>10s} {'sd':>8s} {'x opt':>6s} {'overcommits':>11s} {'util':>6s} {'wasted':>10s}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    for r in result["policies"]:
        ratio = f"{r['makespan_mean'] / opt:6.3f}" if opt else "     -"
        lines.append(
            f"{r['name']:32s} {r['makespan_mean']:10.2f} {r['makespan_sd']:8.2f} {ratio} {r['overcommits_mean']:11.2f} "
            f"{r['utilisation_mean']:6.3f} {r['wasted_mean']:10.1f}"
        )
    if result.get("optimum"):
        o = result["optimum"]
        lines.append(
            f"optimum: CP-SAT {o['time_limit_s']:g} s/instance after {o['search_iterations']} list-schedule search steps; "
            f"proven optimal {o['proven_optimal']}/{s['n_seeds']}, mean lower bound {o['lower_bound_mean']:.2f}"
        )
    return "\n".join(lines)


def run(args) -> int:
    from ..simulation.comparison import compare

    settings = build_settings(args)
    if args.jobs < 1:
        raise ChromoschedError(f"--jobs must be >= 1, got {args.jobs}")
    from ..progress import ProgressBar

    # a bar over the seeds on a terminal; nothing per seed in a log or CI (not a TTY)
    with ProgressBar(len(settings.seeds), "simulate dynamic", unit="seed", enabled=not args.quiet) as bar:
        tick = (lambda msg: bar.update(1)) if bar.active else None
        result = compare(settings, jobs=args.jobs, progress=tick)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_table(result))
    return 0


def add_simulation_arguments(p: argparse.ArgumentParser) -> None:
    """Workload, semantics and baseline flags (shared with benchmarks/dynamic_ablation.py)."""
    from ..simulation.simulator import SEMANTICS
    from ..simulation.workload import PROFILES

    w = p.add_argument_group("workload (defaults: the paper-cal profile)")
    w.add_argument(
        "--profile", default="paper-cal", choices=sorted(PROFILES), help="workload profile (default paper-cal)"
    )
    w.add_argument("--capacity", type=float, help="memory capacity C (paper-cal: 296)")
    w.add_argument("--tasks", type=int, help="number of chromosome tasks on the linear model (default 22)")
    w.add_argument(
        "--relative-sizes", help="explicit task sizes relative to the largest, comma-separated (overrides --tasks)"
    )
    w.add_argument("--ratio", type=float, help="smallest / largest base size on the linear model (paper-cal: 0.2)")
    w.add_argument("--beta-ram", type=float, help="relative memory noise (paper-cal: 0.05)")
    w.add_argument("--beta-dur", type=float, help="relative duration noise (paper-cal: 0.3)")
    w.add_argument("--max-parallel", type=int, help="cap on tasks at once, 0 = none (paper-cal: 10)")
    w.add_argument("--no-clip-ram", action="store_true", help="do not cap true memory at the capacity")
    w.add_argument(
        "--semantics",
        default="paper",
        choices=SEMANTICS,
        help="paper: a task above its allocation fails at the end of its run; system: tasks are killed "
        "when the true total exceeds the capacity (default paper)",
    )
    o = p.add_argument_group("baselines")
    o.add_argument("--optimum-time-limit", type=float, default=2.0, help="CP-SAT seconds per instance (default 2)")
    o.add_argument(
        "--optimum-search", type=int, default=1500, help="list-schedule search steps before CP-SAT (default 1500)"
    )
    o.add_argument("--sizey-alpha", type=float, default=0.0, help="Sizey RAQ alpha (default 0.0)")
    o.add_argument(
        "--sizey-argmax", action="store_true", help="Sizey: pick the best model instead of the softmax blend"
    )
    o.add_argument(
        "--sizey-packer",
        default="knapsack",
        choices=("knapsack", "greedy", "firstfit"),
        help="packer used with Sizey's sizes (default knapsack, as the paper's rows)",
    )
    o.add_argument(
        "--declared-headroom",
        type=float,
        default=1.1,
        help="greedy-declared: declared memory = largest prior peak x this (default 1.1)",
    )
    o.add_argument(
        "--declared-per-task", action="store_true", help="greedy-declared: declare each task's own prior x headroom"
    )


def register(commands, simulate) -> None:
    """Add ``chromosched simulate dynamic``."""
    p = simulate.add_parser(
        "dynamic",
        help="dynamic scheduling policies vs Sizey, Snakemake-like greedy and the optimum on simulated workloads",
        description="Simulate the dynamic policies on seeded workloads (REFERENCE 1.6) and print their metrics.",
    )
    p.add_argument("--seeds", type=int, default=50, help="number of seeds (workloads), default 50")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--task-size", type=float, help="largest task's memory as a fraction of the capacity (default 0.4)")
    from ..simulation.comparison import DEFAULT_POLICIES, known_policies

    extra = [n for n in known_policies() if n not in DEFAULT_POLICIES]
    p.add_argument(
        "--policies",
        help=f"comma-separated policy names (default: {','.join(DEFAULT_POLICIES)}; also: {','.join(extra)})",
    )
    p.add_argument("--jobs", type=int, default=1, help="worker processes over seeds (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar on stderr (none is drawn when stderr is not a terminal)"
    )
    add_simulation_arguments(p)
    p.set_defaults(func=run)
