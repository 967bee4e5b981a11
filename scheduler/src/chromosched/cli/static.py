"""`chromosched order`, `chromosched simulate static` and `chromosched tables`: the static scheduler.

Examples::

    chromosched order --genome GRCh37 --workers 5 --json
    chromosched simulate static --genome GRCh37 --workers 2-10 --model waves --json
    chromosched tables --genome GRCh38 --workers 1-22 --out config/orderings/GRCh38.tsv
    chromosched order --lengths ref.fa.fai --workers 4
    chromosched order --genome GRCh38 --benchmarks benchmarks/impute/ --workers 4
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from ..errors import ChromoschedError
from ..static.multistart_annealing import applies as multistart_applies
from ..static.optimiser import (
    DEFAULT_BUDGET,
    TABLE_BUDGET,
    StaticResult,
    build_table,
    check_table_matches,
    optimise,
    optimise_many,
    reprove_table,
)
from ..static.ordering_table import OrderingTable
from ..static.peak_memory import MODELS, PeakEvaluator
from ..static.search import HILL_CLIMB_MAX_SWAPS, HILL_CLIMB_RESTARTS
from ..static.task_inputs import load_tasks
from ..static.task_model import TaskSet


def workers_list(text: str) -> list[int]:
    """Parse ``5``, ``2-10`` or ``1,2,5-7`` into a sorted list of distinct positive integers."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo_text, hi_text = part.split("-", 1)
                lo, hi = int(lo_text), int(hi_text)
                if lo > hi:
                    raise ValueError
                values.update(range(lo, hi + 1))
            else:
                values.add(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or a range like 2-10, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be at least 1, got {text!r}")
    return sorted(values)


def single_workers(text: str) -> int:
    values = workers_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one number of workers, got {text!r} (ranges: chromosched simulate static)"
        )
    return values[0]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("task inputs (memory and duration per chromosome)")
    src.add_argument("--genome", help="built-in genome: GRCh37 or GRCh38 (memory = duration = length in Mbp)")
    src.add_argument(
        "--lengths",
        metavar="FILE",
        help="custom lengths: a .fai, a VCF (its ##contig header lines; plain or bgzipped) or a "
        "two-column TSV name<TAB>length",
    )
    src.add_argument(
        "--benchmarks",
        metavar="DIR_OR_FILE",
        nargs="+",
        help="Snakemake benchmark TSVs, one per chromosome (chr7 in the file name): memory = "
        "max_rss (MB), duration = s",
    )
    src.add_argument(
        "--chromosomes",
        metavar="LIST",
        help="comma-separated chromosomes to schedule (default: chr1..chr22 when present, else all)",
    )


def _add_search(parser: argparse.ArgumentParser, budget: int = DEFAULT_BUDGET) -> None:
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="list",
        help="execution model: list scheduling (default; the paper's stated model) or waves "
        "(blocks of K start together)",
    )
    parser.add_argument(
        "--budget", type=positive_int, default=budget, help=f"peak evaluations per K for each search (default {budget})"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0; results are deterministic per seed)"
    )


def _tasks(args: argparse.Namespace) -> TaskSet:
    chromosomes = [c for c in args.chromosomes.split(",") if c.strip()] if args.chromosomes else None
    return load_tasks(args.genome, args.lengths, args.benchmarks, chromosomes)


def register(commands, simulate) -> None:
    """Add `order`, `simulate static` and `tables`."""
    p = commands.add_parser(
        "order",
        help="best chromosome order for K workers (minimal peak memory)",
        description="Search the order of the chromosomes that minimises the peak memory on K workers.",
    )
    _add_inputs(p)
    p.add_argument("--workers", type=single_workers, required=True, help="number of workers K")
    p.add_argument("--table", metavar="FILE", help="take the order from this ordering table instead of searching")
    _add_search(p)
    p.add_argument(
        "--json", action="store_true", help='print {"workers","order","peak","sequential_peak","lower_bound"}'
    )
    p.set_defaults(func=_order)

    p = simulate.add_parser(
        "static",
        help="static orderings vs sequential and the paper's hill climbing",
        description="For each K: sequential peak, our optimised peak, the paper's hill "
        "climbing at the same number of peak evaluations, and a lower bound.",
    )
    _add_inputs(p)
    p.add_argument("--workers", type=workers_list, required=True, help="K, a range like 2-10, or a list 2,4,8")
    _add_search(p)
    p.add_argument(
        "--json",
        action="store_true",
        help='print a list of {"workers","sequential_peak","optimised_peak","hill_climb_peak","lower_bound","order"}',
    )
    p.set_defaults(func=_simulate_static)

    p = commands.add_parser(
        "tables",
        help="write an ordering table (one optimised order per K)",
        description="Write the ordering table: one row per K with the order, its peak, the "
        "sequential peak, a lower bound, the method and the seed.",
    )
    _add_inputs(p)
    p.add_argument(
        "--workers", type=workers_list, default=None, help="K values (default: 1 to the number of chromosomes)"
    )
    p.add_argument("--out", metavar="FILE", help="write the table here (atomically); default: print it")
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="search this many K at once in separate processes (same table; default 1)",
    )
    p.add_argument(
        "--reprove",
        metavar="TABLE",
        help="keep TABLE's orders and prove their bounds again with this version (list model; the search is "
        "not rerun; give the task input and budget the table was made with)",
    )
    p.add_argument(
        "--start-from",
        metavar="TABLE",
        help="start each K's search from TABLE's order instead of the sequential one (same model and "
        "chromosomes), so no row comes out worse than TABLE's",
    )
    _add_search(p, TABLE_BUDGET)
    p.set_defaults(func=_tables)


def _check_inputs(args: argparse.Namespace) -> None:
    if not (args.genome or args.lengths or args.benchmarks):
        raise ChromoschedError("no task input: give --genome, --lengths or --benchmarks")


def _order(args: argparse.Namespace) -> int:
    if args.table:
        table = OrderingTable.load(args.table)
        row = table.row(args.workers)
        payload = {
            "workers": args.workers,
            "order": list(row.order),
            "peak": row.peak,
            "sequential_peak": row.sequential_peak,
            "lower_bound": row.lower_bound,
        }
        if args.genome or args.lengths or args.benchmarks:
            # Re-evaluate the table's order on the given inputs (the table may be for other inputs).
            tasks = _tasks(args)
            ev = PeakEvaluator(tasks, args.workers, table.model)
            order = tasks.order_indices(table.order_for(args.workers, tasks.names))
            payload["peak"] = ev.peak(order)
            payload["sequential_peak"] = ev.peak(tasks.sequential_order())
    else:
        _check_inputs(args)
        res = optimise(_tasks(args), args.workers, args.model, args.budget, args.seed)
        payload = {
            "workers": res.workers,
            "order": list(res.order),
            "peak": round(res.peak, 6),
            "sequential_peak": round(res.sequential_peak, 6),
            "lower_bound": round(res.lower_bound, 6),
        }
    if args.json:
        print(json.dumps(payload))
    else:
        print(
            f"K = {payload['workers']}: peak {payload['peak']:.2f} (sequential {payload['sequential_peak']:.2f}, "
            f"lower bound {payload['lower_bound']:.2f})"
        )
        print("order: " + " ".join(payload["order"]))
    return 0


def _format_rows(results: list[StaticResult], tasks: TaskSet, model: str, budget: int, seed: int) -> str:
    if model == "list":
        compiled = multistart_applies(len(tasks))
        ours = "multistart annealing" if compiled else "portfolio (annealing + iterated local search)"
    else:
        ours = "annealing + branch and bound"
    head = (
        f"# {tasks.source}, model {model}, memory in {tasks.memory_unit}; {ours} vs hill climbing "
        f"(restarts {HILL_CLIMB_RESTARTS}, M_max {HILL_CLIMB_MAX_SWAPS}), {budget} peak evaluations each, seed {seed}"
    )
    cols = f"{'K':>3} {'sequential':>11} {'optimised':>10} {'hill_climb':>10} {'lower_bound':>11} {'gap':>6}  order"
    lines = [head, cols]
    for r in results:
        hc = f"{r.hill_climb_peak:10.2f}" if r.hill_climb_peak is not None else f"{'-':>10}"
        lines.append(
            f"{r.workers:>3} {r.sequential_peak:11.2f} {r.peak:10.2f} {hc} {r.lower_bound:11.2f} "
            f"{100 * r.gap:5.1f}%  {','.join(r.order)}"
        )
    return "\n".join(lines)


def _simulate_static(args: argparse.Namespace) -> int:
    _check_inputs(args)
    tasks = _tasks(args)
    results = optimise_many(tasks, args.workers, args.model, args.budget, args.seed, with_hill_climb=True)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "workers": r.workers,
                        "sequential_peak": round(r.sequential_peak, 6),
                        "optimised_peak": round(r.peak, 6),
                        "hill_climb_peak": round(r.hill_climb_peak, 6),
                        "lower_bound": round(r.lower_bound, 6),
                        "order": list(r.order),
                    }
                    for r in results
                ]
            )
        )
    else:
        print(_format_rows(results, tasks, args.model, args.budget, args.seed))
    return 0


def _tables(args: argparse.Namespace) -> int:
    _check_inputs(args)
    tasks = _tasks(args)
    workers = args.workers or list(range(1, len(tasks) + 1))
    if args.reprove and args.start_from:
        raise ChromoschedError("--reprove keeps a table's orders; --start-from searches again: give one of them")
    if args.reprove:
        table = OrderingTable.load(args.reprove)
        check_table_matches(table, tasks)
        table.rows = [r for r in table.rows if r.workers in set(workers)]
        note = f"chromosched tables --reprove {args.reprove} --budget {args.budget} (orders as searched by the command)"
        table = reprove_table(table, tasks, args.budget, note, jobs=args.jobs)
    else:
        start = OrderingTable.load(args.start_from) if args.start_from else None
        table = build_table(
            tasks,
            workers,
            args.model,
            args.budget,
            args.seed,
            _command_line(args, workers),
            jobs=args.jobs,
            start=start,
        )
    if args.out:
        table.write(args.out)
        print(f"chromosched: wrote {args.out} ({len(table.rows)} rows, model {args.model})", file=sys.stderr)
    else:
        sys.stdout.write(table.to_text())
    return 0


def _command_line(args: argparse.Namespace, workers: list[int]) -> str:
    """The normalised command line recorded in the table header (same table, same header)."""
    parts = ["chromosched", "tables"]
    if args.genome:
        parts += ["--genome", args.genome]
    if args.lengths:
        parts += ["--lengths", args.lengths]
    if args.benchmarks:
        parts += ["--benchmarks", *args.benchmarks]
    if args.chromosomes:
        parts += ["--chromosomes", args.chromosomes]
    lo, hi = workers[0], workers[-1]
    parts += ["--workers", f"{lo}-{hi}" if workers == list(range(lo, hi + 1)) else ",".join(map(str, workers))]
    parts += ["--model", args.model, "--budget", str(args.budget), "--seed", str(args.seed)]
    if args.start_from:
        parts += ["--start-from", args.start_from]
    if args.out:
        parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)
