"""Many short, independent simulated-annealing runs over list-scheduling orders, in compiled code.

The list model's peak has a rugged landscape: single runs of any method fall into the same few
funnels (GRCh37, K=3: 456.52 from most starts), and the better orders are reached by a few percent
of short runs (453.26 at K=3 from 3 of 80 annealing runs of 200,000 evaluations). What pays is the
number of runs, so this search makes them cheap: the whole loop is C (``multistart_annealing.c``,
compiled on first use by :mod:`native_library`), about 7-12 million peak evaluations per second on
one core for 22 chromosomes, against about 70,000 for the numpy-batched Python searches.

Early rejection: Metropolis takes a move worse by delta iff u < exp(-delta / temperature), that is iff
delta < temperature x -ln(u). The C peeks at the uniform u before it evaluates the move, and stops
the evaluation as soon as the order's peak so far is surely beyond that (in the second phase: as soon
as its peak so far rules out a new best peak and its excess area so far is surely beyond that); u is
then drawn as before. The draws and decisions are exactly those of evaluating every move to its end
(tested run by run), in 1.3-1.4 times less time: most moves are rejected, many of them early in the
order.

Even runs start from the initial order, odd runs from the best order so far (a restart with the
temperature raised again); every run has its own random stream (from the seed and the run's
number), so the result is deterministic per seed. A run:

1. anneals on the peak for the first ``1 - EXCESS_SHARE`` of its evaluations, a move being a random
   swap of two positions or a random insertion (one task moved to another position), accepted by
   Metropolis with a temperature falling geometrically from its recipe's start (a fraction of the
   best peak) to ``END_RATIO`` times that start;
2. from its best order, anneals on the excess area: the integral over time of (memory in use -
   target) where positive, with the target ``EXCESS_STEP`` below the best peak so far. It falls
   with every moment above the target that gets lower, not only the highest one, so the search
   keeps moving where the peak alone is flat; an order with no excess beats the best peak, and the
   target drops below it.

Runs cycle through ``RECIPES`` (run length x start temperature): the best temperature differs from
K to K (GRCh37, K=4: 587.73 is reached from 0.3 %, not from 1-3 %), and long runs cool the funnels
short runs only visit. The lowest peak of all runs wins.

``stop`` with ``checkpoints``: the loop pauses at the end of the first run at or beyond each
checkpoint (a count of evaluations) and asks ``stop(best order, best peak)``; True ends the search
there (the optimiser asks whether the best order is proven optimal). Otherwise it resumes where it
paused, so the runs are exactly those of a search without pauses. The result's ``seconds`` include
the time ``stop`` took.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import native_library

SOURCE = Path(__file__).with_suffix(".c")
MAX_TASKS = 64
# (evaluations per run, start temperature as a fraction of the best peak), used in turn.
RECIPES = tuple((length, start) for length in (50_000, 200_000, 1_000_000) for start in (0.03, 0.01, 0.003))
END_RATIO = 0.01  # a run's temperature falls to this fraction of its start
EXCESS_SHARE = 0.3  # of a run's evaluations spent on the excess area
EXCESS_STEP = 0.01  # the excess is measured above (1 - this) x the best peak
EXCESS_TEMPERATURES = (0.001, 0.00001)  # fractions of best peak x (total duration / K)


@dataclass(frozen=True)
class MultistartResult:
    """The best order (task indices) and its peak in grid ticks; how many runs, and which one won;
    every run's best (peak ticks, order), in run order; the evaluations spent (less than the budget
    where ``stop`` ended the search)."""

    order: tuple[int, ...]
    peak_ticks: int
    runs: int
    best_run: int
    seconds: float
    run_results: tuple[tuple[int, tuple[int, ...]], ...]
    evaluations: int
    early_stops: int = 0  # evaluations stopped early, their moves surely rejected


class _Library:
    def __init__(self, lib: ctypes.CDLL) -> None:
        ll, ll_p, d_p = ctypes.c_longlong, ctypes.POINTER(ctypes.c_longlong), ctypes.POINTER(ctypes.c_double)
        ints = ctypes.POINTER(ctypes.c_int)
        self.multistart = lib.chromosched_multistart
        self.multistart.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ll_p,
            ll_p,
            ints,
            ctypes.c_uint64,
            ll,
            ctypes.c_int,
            ll_p,
            d_p,
            ctypes.c_double,
            ctypes.c_double,
            ctypes.c_double,
            d_p,
            ints,
            ll_p,
            ll_p,
            ll_p,
            ints,
            ll,
            ll_p,
            ll,
            ctypes.c_int,
            ll_p,
        ]
        self.multistart.restype = ll
        self.excess_area = lib.chromosched_excess_area
        self.excess_area.argtypes = [ctypes.c_int, ctypes.c_int, ll_p, ll_p, ints, ll, d_p]
        self.excess_area.restype = ll


_library = native_library.bind(SOURCE, _Library)


def available() -> bool:
    """True when the compiled search could be built and loaded here."""
    return _library() is not None


def applies(tasks: int) -> bool:
    """True when the compiled search runs here for this many tasks (built, and at most ``MAX_TASKS``)."""
    return tasks <= MAX_TASKS and available()


def multistart(
    mem_ticks: Sequence[int],
    dur_ticks: Sequence[int],
    workers: int,
    initial: Sequence[int],
    budget: int,
    seed: int,
    stop: Callable[[tuple[int, ...], int], bool] | None = None,
    checkpoints: Sequence[int] = (),
    early_rejection: bool = True,
) -> MultistartResult | None:
    """Runs of ``RECIPES`` in turn until exactly ``budget`` peak evaluations are spent, even runs from
    ``initial``, odd runs from the best order so far (the first evaluation of each run is its start
    order), or until ``stop`` says so at a checkpoint (see the module docstring). None when the C
    code is not available or there are more than ``MAX_TASKS`` tasks. ``early_rejection=False``
    evaluates every move to its end: the same runs, slower (the tests compare the two)."""
    n = len(mem_ticks)
    if not applies(n):
        return None
    arr, ints, reals = ctypes.c_longlong * n, ctypes.c_int * n, ctypes.c_double * len(RECIPES)
    order = ints()
    n_runs = run_count(budget)
    run_peaks = (ctypes.c_longlong * n_runs)()
    run_orders = (ctypes.c_int * (n_runs * n))()
    runs, best_run, spent, stops = (ctypes.c_longlong(0) for _ in range(4))
    pauses = sorted({c for c in checkpoints if 0 < c < budget} if stop is not None else set()) + [budget]
    args = (
        n,
        workers,
        arr(*mem_ticks),
        arr(*dur_ticks),
        ints(*initial),
        seed & 0xFFFFFFFFFFFFFFFF,
        budget,
        len(RECIPES),
        (ctypes.c_longlong * len(RECIPES))(*[length for length, _ in RECIPES]),
        reals(*[start for _, start in RECIPES]),
        END_RATIO,
        EXCESS_SHARE,
        EXCESS_STEP,
        (ctypes.c_double * 2)(*EXCESS_TEMPERATURES),
        order,
        ctypes.byref(runs),
        ctypes.byref(best_run),
        run_peaks,
        run_orders,
    )
    t0 = time.perf_counter()
    peak = -1
    for pause in pauses:
        peak = _library().multistart(*args, pause, ctypes.byref(spent), peak, int(early_rejection), ctypes.byref(stops))
        if peak < 0:
            return None
        if spent.value >= budget or (stop is not None and stop(tuple(order), int(peak))):
            break
    done = runs.value
    assert done == n_runs or spent.value < budget
    results = tuple((int(run_peaks[r]), tuple(run_orders[r * n : (r + 1) * n])) for r in range(done))
    return MultistartResult(
        tuple(order), int(peak), done, best_run.value, time.perf_counter() - t0, results, spent.value, stops.value
    )


def run_count(budget: int) -> int:
    """How many runs ``budget`` evaluations make (``RECIPES`` in turn, the last run takes what is left)."""
    cycle = sum(length for length, _ in RECIPES)
    runs, left = len(RECIPES) * (budget // cycle), budget % cycle
    for length, _ in RECIPES:
        if left <= 0:
            break
        runs, left = runs + 1, left - length
    return runs


def excess_area(
    mem_ticks: Sequence[int], dur_ticks: Sequence[int], workers: int, order: Sequence[int], target: int
) -> tuple[int, float] | None:
    """The C evaluator on one order: (peak ticks, excess area above ``target`` in ticks squared), the
    energy of a run's second phase; None when the C code is not available."""
    n = len(mem_ticks)
    if not applies(n):
        return None
    arr = ctypes.c_longlong * n
    area = ctypes.c_double(0.0)
    peak = _library().excess_area(
        n, workers, arr(*mem_ticks), arr(*dur_ticks), (ctypes.c_int * n)(*order), int(target), ctypes.byref(area)
    )
    return int(peak), area.value
