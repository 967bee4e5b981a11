"""Searches for an order of tasks that minimises the peak memory (list or waves model).

* ``hill_climb``: the paper's stochastic hill climbing, the baseline. From a permutation, apply
  M_r ~ Unif{1..M_max} random pair swaps; keep the result if its peak is strictly lower; repeat,
  and restart from a random permutation ``restarts`` times. The paper does not publish its budget;
  ours is ``restarts`` equal slices of the evaluation budget (default 10 restarts, M_max = 4).
* ``anneal``: ours. Simulated annealing over swap and insertion moves (an insertion moves one task
  to another position, shifting the ones between, which keeps the alternation of large and small
  tasks that good orders have). The budget is split into ``cycles`` annealing runs, each
  restarting from the best order so far with a halved start temperature; temperatures are
  fractions of the current peak so they mean the same for any unit.

Both take the same ``PeakEvaluator`` and stop after exactly ``budget`` peak evaluations, so they
are compared at equal cost, and both are deterministic for a given seed. Both spend their first
evaluation on the given initial order (by default the sequential order), so the result is never
worse than the sequential order.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Sequence

from .errors import ChromoschedError
from .peak_memory import PeakEvaluator

HILL_CLIMB_RESTARTS = 10
HILL_CLIMB_MAX_SWAPS = 4
ANNEAL_CYCLES = 3
ANNEAL_T_START = 0.03  # start temperature as a fraction of the peak
ANNEAL_T_END = 0.0003
METHODS = ("anneal", "hill_climb")


@dataclass(frozen=True)
class SearchResult:
    """The best order a search found (task indices) and what it cost."""

    order: tuple[int, ...]
    peak: float
    evaluations: int
    seconds: float
    method: str
    seed: int


def _start(evaluator: PeakEvaluator, initial: Sequence[int] | None) -> list[int]:
    order = list(range(evaluator.n)) if initial is None else list(initial)
    if sorted(order) != list(range(evaluator.n)):
        raise ChromoschedError(f"initial order must be a permutation of the {evaluator.n} tasks")
    return order


def _check_budget(budget: int) -> None:
    if budget < 1:
        raise ChromoschedError(f"budget must be at least 1 peak evaluation, got {budget}")


def hill_climb(evaluator: PeakEvaluator, budget: int, seed: int = 0, restarts: int = HILL_CLIMB_RESTARTS,
               max_swaps: int = HILL_CLIMB_MAX_SWAPS, initial: Sequence[int] | None = None) -> SearchResult:
    """The paper's stochastic hill climbing with random swaps and restarts, ``budget`` evaluations.

    Restart 0 starts from ``initial`` (the sequential order by default), later restarts from random
    permutations; each restart gets an equal share of the budget.
    """
    _check_budget(budget)
    if restarts < 1 or max_swaps < 1:
        raise ChromoschedError("hill climbing needs at least 1 restart and M_max >= 1")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    n = evaluator.n
    peak_of = evaluator.peak_ticks
    used = 0
    best_order: list[int] = []
    best = None
    restarts = min(restarts, budget)
    for r in range(restarts):
        share = budget // restarts + (1 if r < budget % restarts else 0)
        cur = _start(evaluator, initial)
        if r > 0:
            rng.shuffle(cur)
        cur_peak = peak_of(cur)
        used += 1
        for _ in range(share - 1):
            cand = cur[:]
            for _ in range(rng.randint(1, max_swaps)):
                a, b = rng.randrange(n), rng.randrange(n)
                cand[a], cand[b] = cand[b], cand[a]
            p = peak_of(cand)
            used += 1
            if p < cur_peak:
                cur, cur_peak = cand, p
        if best is None or cur_peak < best:
            best, best_order = cur_peak, cur
    return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0,
                        "hill_climb", seed)


def _anneal_run(peak_of, n: int, rng: random.Random, start: list[int], start_peak: int, steps: int,
                temp0: float, temp1: float) -> tuple[list[int], int]:
    """One annealing run of ``steps`` evaluations from ``start``; returns the best order and peak."""
    rand, randrange, exp = rng.random, rng.randrange, math.exp
    cur, cur_peak = start[:], start_peak
    best_order, best = start[:], start_peak
    temp0 = max(temp0, 1e-9)
    temp1 = min(max(temp1, 1e-12), temp0)
    log_ratio = math.log(temp1 / temp0)
    for it in range(steps):
        temp = temp0 * exp(log_ratio * it / steps)
        a = randrange(n)
        b = randrange(n - 1)
        if b >= a:
            b += 1
        cand = cur[:]
        if rand() < 0.5:
            cand[a], cand[b] = cand[b], cand[a]
        else:
            cand.insert(b, cand.pop(a))
        p = peak_of(cand)
        if p <= cur_peak or rand() < exp((cur_peak - p) / temp):
            cur, cur_peak = cand, p
            if p < best:
                best, best_order = p, cand[:]
    return best_order, best


def anneal(evaluator: PeakEvaluator, budget: int, seed: int = 0, cycles: int = ANNEAL_CYCLES,
           t_start: float = ANNEAL_T_START, t_end: float = ANNEAL_T_END, chains: int = 1,
           initial: Sequence[int] | None = None) -> SearchResult:
    """Simulated annealing with swap/insertion moves and reheated cycles, ``budget`` evaluations.

    With ``chains`` > 1 the first cycle runs that many independent chains (the first from the
    initial order, the others from random orders) and the later cycles continue from the best.
    """
    _check_budget(budget)
    t0 = time.perf_counter()
    rng = random.Random(seed)
    n = evaluator.n
    peak_of = evaluator.peak_ticks
    best_order = _start(evaluator, initial)
    best = peak_of(best_order)
    used = 1
    if n < 2 or budget < 2:
        return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0,
                            "anneal", seed)
    cycles = max(1, min(cycles, budget - 1))
    for c in range(cycles):
        steps = (budget - used) // (cycles - c)
        temp0 = best * t_start * 0.5 ** c
        temp1 = best * t_end
        if c == 0 and chains > 1:
            starts = [(best_order, best)]
            for _ in range(chains - 1):
                order = best_order[:]
                rng.shuffle(order)
                starts.append((order, peak_of(order)))
                used += 1
            share = (budget - used) // cycles // chains
            results = []
            for order, peak in starts:
                results.append(_anneal_run(peak_of, n, rng, order, peak, share, temp0, temp1))
                used += share
            order, peak = min(results, key=lambda r: r[1])
        else:
            order, peak = _anneal_run(peak_of, n, rng, best_order, best, steps, temp0, temp1)
            used += steps
        if peak < best:
            best, best_order = peak, order
    return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0,
                        "anneal", seed)


def search(evaluator: PeakEvaluator, method: str, budget: int, seed: int = 0,
           initial: Sequence[int] | None = None) -> SearchResult:
    """Run ``method`` ('anneal' or 'hill_climb') with ``budget`` peak evaluations."""
    if method == "anneal":
        return anneal(evaluator, budget, seed, initial=initial)
    if method == "hill_climb":
        return hill_climb(evaluator, budget, seed, initial=initial)
    raise ChromoschedError(f"unknown search method '{method}' (known: {', '.join(METHODS)})")
