"""One row of the static scheduler: for a task set and K, the best order, its peak, the sequential
peak, a lower bound, and (optionally) the paper's hill climbing at the same evaluation budget.

This is what ``chromosched order``, ``chromosched simulate static`` and ``chromosched tables`` print
or write, and what the benchmark measures.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import ChromoschedError
from .configuration_bound import configuration_lower_bound
from .exact_list_search import (
    FIRST_PROBE_NODES,
    GAP_PROBE_NODES,
    GAP_PROBE_SHARE,
    GAP_PROOF_SHARE_OF_A_PROBE,
    OPTIMALITY_PROBE_NODES,
    OPTIMALITY_PROBE_SHARE,
    OPTIMALITY_REACH,
    PROBE_NODES,
    RELATIVE_PRECISION,
    TARGET_GAP,
    TOTAL_NODES,
    decide,
    exact_lower_bound,
    first_probe_nodes,
)
from .exact_list_search import available as exact_search_available
from .multistart_annealing import END_RATIO, EXCESS_SHARE, EXCESS_STEP, EXCESS_TEMPERATURES, RECIPES
from .multistart_annealing import MAX_TASKS as MULTISTART_MAX_TASKS
from .multistart_annealing import applies as multistart_applies
from .multistart_annealing import available as multistart_available
from .ordering_table import OrderingRow, OrderingTable, ranges_text
from .peak_lower_bound import lower_bound
from .peak_memory import MODELS, PeakEvaluator
from .search import (
    ELITE_RELINK_SHARE,
    ELITE_RUIN,
    ELITE_RUN,
    ELITE_SIZE,
    ILS_CHUNK,
    ILS_KICK,
    ILS_POWER,
    ILS_SPREAD_SHARE,
    ILS_TARGET_STEP,
    POPULATION_RUN,
    POPULATION_STAGES,
    POPULATION_TEMPERATURES,
    PORTFOLIO_CHAINS,
    PORTFOLIO_FIRST,
    PORTFOLIO_RUN,
    anneal,
    hill_climb,
    list_default,
    multistart,
)
from .task_model import TaskSet
from .waves_partition import solve_waves

DEFAULT_BUDGET = 200_000  # peak evaluations per K (about 1-1.5 s)
TABLE_BUDGET = 100_000_000  # what the shipped tables use (the multistart annealing: about 10-20 s per K)
# Without a C compiler the list model falls back to the pure-Python portfolio (about 70,000
# evaluations per second), which then spends at most this many (the previous tables' budget).
PORTFOLIO_BUDGET_CAP = 10_000_000
PROOF_NODES_PER_EVALUATION = 8  # the exact branch and bound's nodes per peak evaluation of the search budget
# After this share of the budget the multistart pauses once and probes one tick below its best peak
# (the proof's first probe: a tenth of the K's nodes); "infeasible" proves the best order optimal and
# ends the search there (GRCh37 K=2 and 12-21 at the tables' budget, which then take ~2 s, not ~15 s).
SEARCH_CHECKPOINT_SHARE = 0.1


def proof_nodes(budget: int) -> int:
    """The exact branch and bound's node limit for one K (its bisection), from the search budget."""
    return min(TOTAL_NODES, PROOF_NODES_PER_EVALUATION * budget)


def _multistart_text(budget: int, seed: int) -> str:
    lengths = sorted({length for length, _ in RECIPES})
    starts = sorted({start for _, start in RECIPES}, reverse=True)
    return (
        f"multistart annealing (chromosched.static.multistart_annealing, compiled C), {budget} peak evaluations "
        f"per K, seed {seed}: independent annealing runs of {'/'.join(f'{v:,}' for v in lengths)} evaluations "
        f"with start temperatures {'/'.join(f'{v:g}' for v in starts)} x the best peak in turn (falling to "
        f"{END_RATIO:g} of it; swap or insertion moves), even runs from the initial order, odd runs from the best "
        f"order so far; the last {EXCESS_SHARE:.0%} of each run anneals on the excess area above "
        f"{1 - EXCESS_STEP:g} x the best peak (temperatures {EXCESS_TEMPERATURES[0]:g} -> {EXCESS_TEMPERATURES[1]:g}"
        " x best peak x total duration / K); the best order"
    )


def method_description(model: str, budget: int, seed: int, start: str = "", tasks: int | None = None) -> str:
    """One line naming the search, its settings and budget, for table headers and reports; ``start``
    names where the initial orders came from when not the sequential order; ``tasks``, how many
    tasks (the compiled search takes at most ``MAX_TASKS``)."""
    origin = f"; every K's search starts from {start}'s order" if start else ""
    if model == "list" and multistart_applies(tasks if tasks is not None else 0):
        return _multistart_text(budget, seed) + origin
    if model == "list":
        why = "no C compiler" if not multistart_available() else f"more than {MULTISTART_MAX_TASKS} tasks"
        budget = min(budget, PORTFOLIO_BUDGET_CAP)
        return (
            f"({why}: the pure-Python portfolio) "
            f"portfolio (chromosched.static.search.portfolio), {budget} peak evaluations "
            f"per K, seed {seed}: "
            f"independent runs of {PORTFOLIO_RUN} evaluations alternating simulated annealing and iterated local "
            f"search (descents over all insertions and swaps in batches of {ILS_CHUNK}, by (peak, "
            f"spread^{ILS_POWER}) for {ILS_SPREAD_SHARE:.0%} of a run, then by the excess area above "
            f"{1 - ILS_TARGET_STEP:g} x the best peak; kicks of {ILS_KICK[0]}-{ILS_KICK[1]} random insertions)"
            + (
                f" for the first {PORTFOLIO_FIRST}, then an elite search of up to {ELITE_RUN} "
                f"(chromosched.static.search.elite_search: the {ELITE_SIZE} lowest distinct run results, children by "
                f"path relinking ({ELITE_RELINK_SHARE:.0%}) or by removing {ELITE_RUIN[0]}-{ELITE_RUIN[1]} tasks and "
                f"re-inserting each at its best position, each child descending by the excess area)"
                if budget > PORTFOLIO_FIRST
                else ""
            )
            + (
                f", then population annealing runs of {POPULATION_RUN} "
                f"(chromosched.static.search.population_anneal: {'/'.join(map(str, PORTFOLIO_CHAINS))} chains in "
                f"turn, swap/insertion moves, temperature {POPULATION_TEMPERATURES[0]:g} -> "
                f"{POPULATION_TEMPERATURES[1]:g} x the best peak, the worse half resampled from the better half "
                f"after each of the first {POPULATION_STAGES - 1} of {POPULATION_STAGES} stages)"
                if budget > PORTFOLIO_FIRST + ELITE_RUN
                else ""
            )
            + ", the best order"
            + origin
        )
    return (
        f"simulated annealing (chromosched.static.search.anneal), {budget} peak evaluations per K, seed {seed}, "
        f"then exact branch and bound (chromosched.static.waves_partition)" + origin
    )


BOUND_DESCRIPTION = {
    "list": "proven lower bound: the largest of the cut-set/area/chain relaxation (chromosched.static.peak_lower_bound), "
    "the exact branch and bound over orders (chromosched.static.exact_list_search: "
    f"{PROOF_NODES_PER_EVALUATION} nodes per peak evaluation of the budget, at most {TOTAL_NODES} per K (the K's "
    f"nodes); one probe one tick below the peak (a tenth of the K's nodes, at most {FIRST_PROBE_NODES}; also made "
    f"once during the search, after {SEARCH_CHECKPOINT_SHARE:.0%} of its budget, which ends it where the order is "
    f"proven optimal), then, where the gap is above {TARGET_GAP:.0%}, one probe at the ceiling of peak / "
    f"{1 + TARGET_GAP:g} (again after a better order it finds; its own allowance beyond the K's nodes: "
    f"{GAP_PROBE_SHARE} x them, at most {GAP_PROBE_NODES}), then bisection (at most {PROBE_NODES} per probe; none "
    f"where proving the gap level took more than {GAP_PROOF_SHARE_OF_A_PROBE:g} x that), in which, as soon as the "
    "bound known or proven is within "
    f"{OPTIMALITY_REACH:.2%} of the peak, one probe one tick below the peak comes first, with an allowance of its "
    f"own ({OPTIMALITY_PROBE_SHARE:g} x the K's nodes, at most {OPTIMALITY_PROBE_NODES}, for all such probes), then "
    f"one more probe one tick below the peak: from that allowance where the bound is within {OPTIMALITY_REACH:.2%} "
    f"of it and that peak was not probed so before, else from the K's nodes where the bisection came within "
    f"{RELATIVE_PRECISION:g} of it or found a better order; a P "
    "counts only where the whole tree below it was searched) and, where there are at "
    "most 8000 K-subsets, the configuration MILP (chromosched.static.configuration_bound, strict form where no tie can "
    "end the window); proven optimal where peak = lower_bound",
    "waves": "the branch and bound's proven optimum, else block-sum bound (chromosched.static.peak_lower_bound)",
}


@dataclass(frozen=True)
class StaticResult(OrderingRow):
    """Everything measured for one K (peaks in the task set's memory unit): an ordering table's
    row plus what the search cost and the hill-climbing baseline's result."""

    budget: int  # the evaluations the search spent (fewer where the portfolio's cap or a proof ended it)
    seconds: float
    hill_climb_peak: float | None = None
    hill_climb_seconds: float | None = None

    def row(self) -> OrderingRow:
        return OrderingRow(
            self.workers, self.order, self.peak, self.sequential_peak, self.lower_bound, self.method, self.seed
        )


def prove_list(
    tasks: TaskSet,
    workers: int,
    budget: int,
    order: Sequence[int],
    peak: float,
    method: str,
    bound: float,
    undecided_below: tuple[int, int] | None = None,
) -> tuple[tuple[int, ...], float, str, float]:
    """The list model's proofs after the search: the exact branch and bound (a proof of optimality,
    a higher bound or a better order; its node limit scales with ``budget``), then the configuration
    MILP where it is small enough. ``undecided_below``: (peak ticks, nodes) where the search's
    checkpoint probe one tick below came back undecided, not run again at that peak. Returns (order,
    peak, method, bound)."""
    order = tuple(order)
    if peak > bound:
        evaluator = PeakEvaluator(tasks, workers, "list")
        nodes = proof_nodes(budget)
        exact = exact_lower_bound(
            tasks.memory, tasks.duration, workers, bound, peak, evaluator.peak, nodes, undecided_below
        )
        if exact.order is not None and exact.peak is not None and exact.peak < peak:
            order, peak, method = tuple(exact.order), exact.peak, f"{method}+bnb"
        if exact.optimal:
            bound = peak
        elif exact.bound is not None and exact.bound > bound:
            bound = exact.bound
    if peak > bound:
        # The configuration MILP, where it is small enough (K <= 4 or K >= 18 for 22 chromosomes).
        stronger = configuration_lower_bound(tasks.memory, tasks.duration, workers, bound, peak)
        if stronger is not None and stronger > bound:
            bound = stronger
    return order, peak, method, bound


class _CheckpointProbe:
    """The multistart's stop test: is the best order proven optimal (one tick below it infeasible,
    with the proof's first-probe allowance)? Remembers the peak where that probe was undecided, so
    the proof does not run the same decision again."""

    def __init__(self, evaluator: PeakEvaluator, budget: int) -> None:
        self.evaluator = evaluator
        self.nodes = first_probe_nodes(proof_nodes(budget))
        self.undecided: tuple[int, int] | None = None  # (peak ticks, nodes spent) of an undecided probe

    def __call__(self, order: tuple[int, ...], peak_ticks: int) -> bool:
        ev = self.evaluator
        below = decide(ev.mem, ev.dur, ev.workers, peak_ticks - 1, self.nodes)
        self.undecided = (peak_ticks, below.nodes) if below.status == "unknown" else None
        return below.status == "infeasible"


def optimise(
    tasks: TaskSet,
    workers: int,
    model: str = "list",
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    with_hill_climb: bool = False,
    initial: Sequence[int] | None = None,
) -> StaticResult:
    """Search the best order for ``workers`` (``budget`` peak evaluations, ``seed``): the multistart
    annealing under the list model (the portfolio without a C compiler, at most
    ``PORTFOLIO_BUDGET_CAP`` evaluations), the annealing under waves.

    The search starts from ``initial`` (task indices; the sequential order by default), so the result
    is never worse than it. Under the
    waves model the annealing's result then seeds an exact branch and bound
    (:mod:`chromosched.static.waves_partition`), which returns the proven optimum when it finishes within its
    node limit (method ``anneal+bnb``; its time is included in ``seconds``). With
    ``with_hill_climb`` the paper's hill climbing runs with the same budget and seed for comparison.
    """
    if model not in MODELS:
        raise ChromoschedError(f"unknown model '{model}' (known: {', '.join(MODELS)})")
    if workers < 1:
        raise ChromoschedError(f"workers must be at least 1, got {workers}")
    if budget < 1:
        raise ChromoschedError(f"budget must be at least 1 peak evaluation, got {budget}")
    evaluator = PeakEvaluator(tasks, workers, model)
    sequential = evaluator.peak(tasks.sequential_order())
    bound = min(lower_bound(tasks, workers, model), sequential)
    spend = budget  # the search's evaluations (the portfolio fallback's are capped)
    undecided_below = None  # (peak ticks, nodes) where the checkpoint's probe one tick below was undecided
    if workers >= len(tasks) or workers == 1:
        # Every order has the same peak (all at once, or one at a time): nothing to search.
        found_order, found_peak, seconds, method = tuple(tasks.sequential_order()), sequential, 0.0, "trivial"
    else:
        if model == "list":
            method_fn = list_default(evaluator)
            spend = budget if method_fn is multistart else min(budget, PORTFOLIO_BUDGET_CAP)
            if method_fn is multistart:
                checkpoint = _CheckpointProbe(evaluator, budget) if exact_search_available() else None
                result = multistart(
                    evaluator,
                    spend,
                    seed,
                    initial=initial,
                    stop=checkpoint,
                    checkpoints=(int(SEARCH_CHECKPOINT_SHARE * spend),),
                )
                if result.evaluations < spend:  # stopped: the probe proved the best order optimal
                    bound, spend = result.peak, result.evaluations
                elif checkpoint is not None:
                    undecided_below = checkpoint.undecided  # skipped by the proof only at this same peak
            else:
                result = method_fn(evaluator, spend, seed, initial=initial)
        else:
            result = anneal(evaluator, budget, seed, initial=initial)
        found_order, found_peak, seconds, method = result.order, result.peak, result.seconds, result.method
        if model == "waves":
            exact = solve_waves(evaluator.mem, workers, incumbent=evaluator.peak_ticks(found_order))
            seconds += exact.seconds
            if exact.order is not None:
                found_order, found_peak = exact.order, evaluator.peak(exact.order)
            if exact.proven:
                method, bound = "anneal+bnb", found_peak  # exhaustive search: nothing lower exists
            elif exact.order is not None:
                method = "anneal+bnb"
    if model == "list":
        found_order, found_peak, method, bound = prove_list(
            tasks, workers, budget, found_order, found_peak, method, bound, undecided_below
        )
    if found_peak <= bound * (1 + 1e-12):
        bound = found_peak  # proven optimal: report the bound as the peak (no rounding artefacts)
    hc_peak = hc_seconds = None
    if with_hill_climb:
        if method == "trivial":
            hc_peak, hc_seconds = found_peak, 0.0
        else:
            hc = hill_climb(PeakEvaluator(tasks, workers, model), spend, seed)  # the same evaluations as ours
            hc_peak, hc_seconds = hc.peak, hc.seconds
    return StaticResult(
        workers,
        tuple(tasks.order_names(found_order)),
        found_peak,
        sequential,
        bound,
        method,
        seed,
        spend,
        seconds,
        hc_peak,
        hc_seconds,
    )


def optimise_many(
    tasks: TaskSet,
    workers: Iterable[int],
    model: str = "list",
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    with_hill_climb: bool = False,
    progress: bool = True,
    jobs: int = 1,
    initial: dict[int, Sequence[int]] | None = None,
) -> list[StaticResult]:
    """``optimise`` for several K, with a progress bar and one line per K on stderr; ``jobs`` > 1 runs
    the K in that many processes (each K is independent and deterministic, so the results are the same).
    ``initial`` maps K to the order (task indices) its search starts from."""
    starts = initial or {}
    from ..progress import ProgressBar

    ks = list(workers)
    results: list[StaticResult] = []
    with ProgressBar(len(ks), "optimising orders", unit="K", enabled=progress) as bar:

        def report(res: StaticResult, seconds: float) -> None:
            if progress:
                bar.write(
                    f"chromosched: K={res.workers}: peak {res.peak:.2f} (sequential {res.sequential_peak:.2f}, "
                    f"bound {res.lower_bound:.2f}) in {seconds:.1f} s"
                )
                bar.update(1)

        if jobs > 1 and len(ks) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [
                    pool.submit(optimise, tasks, k, model, budget, seed, with_hill_climb, starts.get(k)) for k in ks
                ]
                for fut in futures:
                    res = fut.result()
                    results.append(res)
                    report(res, res.seconds)
            return results
        for k in ks:
            t0 = time.perf_counter()
            res = optimise(tasks, k, model, budget, seed, with_hill_climb, starts.get(k))
            results.append(res)
            report(res, time.perf_counter() - t0)
    return results


def build_table(
    tasks: TaskSet,
    workers: Iterable[int],
    model: str = "list",
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    command: str = "",
    progress: bool = True,
    jobs: int = 1,
    start: OrderingTable | None = None,
) -> OrderingTable:
    """An ``OrderingTable`` with one optimised row per K; with ``start`` (a table of the same model and
    chromosomes) each K's search starts from that table's order, so no row is worse than it."""
    ks = list(workers)
    too_many = [k for k in ks if k > len(tasks)]
    if too_many:
        raise ChromoschedError(f"K={too_many[0]} exceeds the {len(tasks)} chromosomes of {tasks.source or 'the input'}")
    initial = _start_orders(start, tasks, ks, model) if start is not None else None
    results = optimise_many(tasks, ks, model, budget, seed, progress=progress, jobs=jobs, initial=initial)
    metadata = {
        "command": command,
        "source": tasks.source,
        "model": model,
        "memory_unit": tasks.memory_unit,
        "duration_unit": tasks.duration_unit,
        "search": method_description(
            model, budget, seed, str(start.path or "a table") if start is not None else "", len(tasks)
        ),
        "bound": _bound_text(model),
        "proven_optimal_K": ranges_text([r.workers for r in results if r.peak <= r.lower_bound]) or "none",
        "largest_gap_to_bound": _largest_gap(results),
    }
    return OrderingTable([r.row() for r in results], {k: v for k, v in metadata.items() if v})


def check_table_matches(table: OrderingTable, tasks: TaskSet) -> None:
    """A table used with a task input (``--start-from``, ``--reprove``) must have its chromosomes."""
    if set(table.chromosomes) != set(tasks.names):
        raise ChromoschedError(f"{table.path or 'the table'}: its chromosomes are not those of the task input given")


def _start_orders(table: OrderingTable, tasks: TaskSet, workers: Sequence[int], model: str) -> dict[int, list[int]]:
    if table.model != model:
        raise ChromoschedError(f"{table.path or 'the start table'}: its model is {table.model}, not {model}")
    check_table_matches(table, tasks)
    return {k: tasks.order_indices(table.row(k).order) for k in workers}  # a missing K: the table's own error


def _largest_gap(rows: Sequence[OrderingRow]) -> str:
    worst = max(rows, key=lambda r: r.gap)
    return f"{100 * worst.gap:.2f}% (K={worst.workers})"


def _bound_text(model: str) -> str:
    missing = model == "list" and not exact_search_available()
    return BOUND_DESCRIPTION[model] + ("; the exact branch and bound did not run (no C compiler)" if missing else "")


def _reprove_row(tasks: TaskSet, row: OrderingRow, budget: int) -> OrderingRow:
    if row.workers == 1 or row.workers >= len(tasks):
        return row
    evaluator = PeakEvaluator(tasks, row.workers, "list")
    order = tasks.order_indices(row.order)
    peak = evaluator.peak(order)
    bound = min(lower_bound(tasks, row.workers, "list"), evaluator.peak(tasks.sequential_order()))
    order, peak, method, bound = prove_list(tasks, row.workers, budget, order, peak, row.method, bound)
    if peak <= bound * (1 + 1e-12):
        bound = peak
    return OrderingRow(row.workers, tuple(tasks.order_names(order)), peak, row.sequential_peak, bound, method, row.seed)


def reprove_table(
    table: OrderingTable, tasks: TaskSet, budget: int, note: str = "", progress: bool = True, jobs: int = 1
) -> OrderingTable:
    """The table's orders with their bounds proven again by this version's ``prove_list`` at ``budget``
    (list model only). The search is not rerun: with the search unchanged and deterministic per seed,
    this is the table the header's command gives with this version, in the time of the proofs alone."""
    from ..progress import ProgressBar

    if table.model != "list":
        raise ChromoschedError(f"only list-model tables can be re-proven ({table.path or 'table'} is {table.model})")
    rows: list[OrderingRow] = []
    with ProgressBar(len(table.rows), "proving bounds", unit="K", enabled=progress) as bar:
        if jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(_reprove_row, tasks, r, budget) for r in table.rows]
                for fut in futures:
                    rows.append(fut.result())
                    bar.update(1)
        else:
            for r in table.rows:
                rows.append(_reprove_row(tasks, r, budget))
                bar.update(1)
    metadata = dict(table.metadata)
    metadata["bound"] = _bound_text("list")
    metadata["proven_optimal_K"] = ranges_text([r.workers for r in rows if r.peak <= r.lower_bound]) or "none"
    metadata["largest_gap_to_bound"] = _largest_gap(rows)
    if note:
        metadata["bounds_reproven"] = note
    return OrderingTable(rows, metadata)
