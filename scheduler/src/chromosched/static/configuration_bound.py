"""A lower bound on the list-scheduling peak from a configuration MILP (small K).

Notation as in :mod:`chromosched.static.peak_lower_bound`: n tasks with memory m_i and duration d_i, K
workers, n > K; W = [0, tau) is the window in which exactly K tasks run, and T the cut set, the tasks
still running after tau (|T| <= K-1, running together, so sum_{i in T} m_i <= P).

Inside W the set of running tasks is always a *configuration*: K distinct tasks whose memories add up
to at most P. Let y_C be the total time configuration C runs inside W. Then for every order with
peak <= P

* sum over the configurations containing i of y_C = d_i for every task outside T (it lies inside W),
  and some z_i = d_i - (that sum) in [0, d_i] for a task of T;
* at most K-1 tasks are in T and their memories add up to at most P.

With binary t_i (i in T) and z_i <= d_i t_i this is a small MILP over the configurations.

Strict form. When no two workers can become free at the same instant inside the window (the
``earliest_tie`` test of :mod:`chromosched.static.peak_lower_bound`: then tau is later than the last start,
exactly one task e ends at tau, |T| = K-1 exactly and T + {e} run together just before tau), the MILP
also gets |T| = K-1 and a binary e_i (exactly one, outside T) with
sum_{i in T} m_i + m_e <= P. A tie at tau needs tau >= t_tie, the earliest instant two workers can
become free together, and tau is the total time of the configurations, so every P is tried in two
cases, infeasible only when both are: sum_C y_C <= t_tie with the strict form, or sum_C y_C >= t_tie
without it. This raises the GRCh37 bound at K=4 (571.08 -> 572.67) and K=18 (2465.63 -> 2499.54).

When the MILP is infeasible for P, no order has a peak <= P: P is a lower bound. The bound bisects P between a
known lower bound and a peak some order reaches. The MILP knows which tasks cannot run together
(for GRCh37 at K=3, chr1 and chr2 never share a configuration below 492 Mbp, whatever runs beside
them), which the area argument of ``peak_lower_bound`` cannot see; it forgets that a task runs in
one piece and in which order the configurations come. It raises the GRCh37 bound at K=3 from
433.26 to 439.97; without the strict form it is not above the analytic bound at K=4 and 5 (571.0,
685.6), and with it K=5 (26,334 configurations, 84 s) gives only 686.16.

Only instances with at most ``MAX_CONFIGURATIONS`` K-subsets are tried (K <= 4 and K >= 18 for 22 tasks). A
solve that hits its time limit counts as "not proven infeasible", so the bound stays valid; the
solver is SCIP through OR-Tools (a dependency of the package already), deterministic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from .peak_memory import GRID

MAX_CONFIGURATIONS = 8_000  # K <= 4 and K >= 18 for 22 tasks
SOLVE_SECONDS = 60.0
RELATIVE_PRECISION = 1e-4  # stop bisecting when the interval is this fraction of the peak


def configuration_count(n: int, workers: int) -> int:
    return math.comb(n, workers)


def _infeasible(mem: Sequence[int], dur: Sequence[int], workers: int, peak: int, tie: float) -> bool:
    """True when the configuration MILP proves that no order has a peak <= ``peak`` (ticks).

    ``tie`` (task units) is the earliest instant at which two workers could become free together.
    A tie at tau needs tau >= tie, so: either the window is shorter than ``tie`` (sum of y < tie) and
    the strict form holds, or it is at least ``tie`` long; infeasible only when both cases are."""
    total = sum(dur) / GRID
    if tie * workers > total:  # tau <= sum(d)/K < tie: always strict
        return _case_infeasible(mem, dur, workers, peak, True, None)
    return _case_infeasible(mem, dur, workers, peak, True, ("<=", tie)) and _case_infeasible(
        mem, dur, workers, peak, False, (">=", tie)
    )


def _case_infeasible(
    mem: Sequence[int], dur: Sequence[int], workers: int, peak: int, strict: bool, window: tuple[str, float] | None
) -> bool:
    from ortools.linear_solver import pywraplp

    n = len(mem)
    cols = [c for c in itertools.combinations(range(n), workers) if sum(mem[i] for i in c) <= peak]
    solver = pywraplp.Solver.CreateSolver("SCIP")
    if solver is None:  # no MILP solver in this OR-Tools build: prove nothing
        return False
    solver.SetTimeLimit(int(SOLVE_SECONDS * 1000))
    unit = 1.0 / GRID  # solve in the task set's units (numbers of order 1-1000), not in ticks
    y = [solver.NumVar(0.0, solver.infinity(), f"y{j}") for j in range(len(cols))]
    t = [solver.IntVar(0, 1, f"t{i}") for i in range(n)]
    z = [solver.NumVar(0.0, dur[i] * unit, f"z{i}") for i in range(n)]
    if window is not None:  # the window's length tau is the total time of the configurations
        if window[0] == "<=":
            solver.Add(solver.Sum(y) <= window[1])
        else:
            solver.Add(solver.Sum(y) >= window[1])
    cover: list[list] = [[] for _ in range(n)]
    for j, c in enumerate(cols):
        for i in c:
            cover[i].append(y[j])
    for i in range(n):
        solver.Add(solver.Sum(cover[i]) + z[i] == dur[i] * unit)
        solver.Add(z[i] <= dur[i] * unit * t[i])
    if strict:  # no ties: |T| = K-1, and T plus the task e ending at tau run together
        e = [solver.IntVar(0, 1, f"e{i}") for i in range(n)]
        solver.Add(solver.Sum(t) == workers - 1)
        solver.Add(solver.Sum(e) == 1)
        for i in range(n):
            solver.Add(e[i] + t[i] <= 1)
        solver.Add(solver.Sum([mem[i] * unit * (t[i] + e[i]) for i in range(n)]) <= peak * unit)
    else:
        solver.Add(solver.Sum(t) <= workers - 1)
        solver.Add(solver.Sum([mem[i] * unit * t[i] for i in range(n)]) <= peak * unit)
    return solver.Solve() == pywraplp.Solver.INFEASIBLE


def configuration_lower_bound(
    memory: Sequence[float], duration: Sequence[float], workers: int, known_bound: float, reached_peak: float
) -> float | None:
    """A proven lower bound from the MILP (task units), or None when the instance has too many
    configurations or nothing was proven. ``reached_peak`` itself when one tick below it is
    infeasible (then it is optimal); else the largest P found infeasible by bisection in
    [known_bound, reached_peak]: every order's peak is above it."""
    n = len(memory)
    if n <= workers or workers < 2 or configuration_count(n, workers) > MAX_CONFIGURATIONS:
        return None
    from .peak_lower_bound import earliest_tie

    mem = [int(round(v * GRID)) for v in memory]
    dur = [int(round(v * GRID)) for v in duration]
    tie = earliest_tie(duration)
    lo, hi = int(math.floor(known_bound * GRID)), int(round(reached_peak * GRID))
    proven = None
    if lo >= hi:
        return None
    # First the proof of optimality: nothing one grid tick below the reached peak (peaks are whole
    # ticks, so that proves the reached peak optimal).
    if _infeasible(mem, dur, workers, hi - 1, tie):
        return hi / GRID
    while hi - lo > max(1, int(RELATIVE_PRECISION * hi)):
        mid = (lo + hi) // 2
        if _infeasible(mem, dur, workers, mid, tie):
            lo = proven = mid
        else:
            hi = mid
    return None if proven is None else proven / GRID
