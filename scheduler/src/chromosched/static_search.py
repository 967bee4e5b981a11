"""Searches for an order of tasks that minimises the peak memory (list or waves model).

* ``hill_climb``: the paper's stochastic hill climbing, the baseline. From a permutation, apply
  M_r ~ Unif{1..M_max} random pair swaps; keep the result if its peak is strictly lower; restart
  from a random permutation. The paper does not publish its budget; ours splits the evaluation
  budget into ``restarts`` equal slices (default 10 restarts, M_max = 4).
* ``anneal``: ours, simulated annealing. The budget is split into ``cycles`` runs; each later run
  restarts from the best order so far with a halved start temperature (reheating); the first run
  may be split into several independent chains. Temperatures are fractions of the current peak,
  so they mean the same for any memory unit.

  - list model: one move = swap two positions or move one task to another position (insertion,
    which shifts the tasks between and keeps the large/small alternation of good orders);
    energy = the peak.
  - waves model (a min-max partition of the tasks into blocks): one move = 1-3 swaps between
    different blocks, the first one taking a task out of the block with the largest sum (any move
    that leaves that block alone cannot lower the peak, so it is not worth an evaluation), each
    next one out of the block the previous swap made heavier (an ejection chain); energy
    = the 8-norm of the block sums, which equals the peak up to a small term that rewards lowering
    the next-largest blocks too, so the search can cross plateaus of equal peak. Four chains in the
    first run, because a single chain can lock the two largest tasks into the short last block.

Both searches take the same ``PeakEvaluator`` and stop after exactly ``budget`` peak evaluations, so
they are compared at equal cost; both are deterministic for a given seed; both spend their first
evaluation on the initial order (the sequential one by default), so they never return anything
worse than it.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from .errors import ChromoschedError
from .peak_memory import PeakEvaluator

HILL_CLIMB_RESTARTS = 10
HILL_CLIMB_MAX_SWAPS = 4
ANNEAL_CYCLES = 3
# (start temperature, end temperature) as fractions of the peak, and chains in the first run.
ANNEAL_SETTINGS = {"list": (0.03, 0.0003, 1), "waves": (0.001, 0.00001, 4)}
WAVES_NORM = 8
WAVES_MAX_SWAPS = 3
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


# --- annealing -------------------------------------------------------------------------------
# A "state" is (energy, peak, hint): the energy drives acceptance, the peak decides the best order,
# the hint is what the move generator may use (the waves model's largest block).

def _list_state(evaluator: PeakEvaluator) -> Callable[[list[int]], tuple[float, int, int]]:
    peak_of = evaluator.peak_ticks

    def state(order: list[int]) -> tuple[float, int, int]:
        p = peak_of(order)
        return p, p, 0

    return state


def _waves_state(evaluator: PeakEvaluator) -> Callable[[list[int]], tuple[float, int, int]]:
    block_sums = evaluator.block_sums

    def state(order: list[int]) -> tuple[float, int, int]:
        sums = block_sums(order)
        p = max(sums)
        energy = p * sum((s / p) ** WAVES_NORM for s in sums) ** (1.0 / WAVES_NORM)
        return energy, p, sums.index(p)

    return state


def _list_move(cur: list[int], rng: random.Random, n: int, workers: int, hint: int,
               mem: Sequence[int] = ()) -> list[int]:
    a = rng.randrange(n)
    b = rng.randrange(n - 1)
    if b >= a:
        b += 1
    cand = cur[:]
    if rng.random() < 0.5:
        cand[a], cand[b] = cand[b], cand[a]
    else:
        cand.insert(b, cand.pop(a))
    return cand


def _waves_move(cur: list[int], rng: random.Random, n: int, workers: int, hint: int,
                mem: Sequence[int] = ()) -> list[int]:
    """1-3 swaps as an ejection chain: the first takes a task out of the largest block ``hint``;
    each next one takes a task out of the block the previous swap made heavier (known from the
    two tasks' memories, without evaluating), so a swap that overloads a block can be repaired
    within the same move."""
    cand = cur[:]
    source = hint
    for _ in range(rng.randint(1, WAVES_MAX_SWAPS)):
        a = rng.randrange(source * workers, min(n, source * workers + workers))
        while True:
            b = rng.randrange(n)
            if b // workers != source:
                break
        x, y = cand[a], cand[b]
        cand[a], cand[b] = y, x
        source = b // workers if mem[x] > mem[y] else a // workers
    return cand


def _anneal_run(state, move, rng: random.Random, n: int, workers: int, mem: Sequence[int], start: list[int],
                steps: int, temp0: float, temp1: float) -> tuple[list[int], int]:
    """One annealing chain of ``steps`` evaluations (plus one for ``start``); best order and peak."""
    rand, exp = rng.random, math.exp
    cur = start[:]
    cur_energy, best, hint = state(cur)
    best_order = cur[:]
    temp0 = max(temp0, 1e-9)
    temp1 = min(max(temp1, 1e-12), temp0)
    log_ratio = math.log(temp1 / temp0)
    for it in range(steps):
        temp = temp0 * exp(log_ratio * it / steps)
        cand = move(cur, rng, n, workers, hint, mem)
        energy, p, cand_hint = state(cand)
        if energy <= cur_energy or rand() < exp((cur_energy - energy) / temp):
            cur, cur_energy, hint = cand, energy, cand_hint
            if p < best:
                best, best_order = p, cand[:]
    return best_order, best


def anneal(evaluator: PeakEvaluator, budget: int, seed: int = 0, cycles: int = ANNEAL_CYCLES,
           t_start: float | None = None, t_end: float | None = None, chains: int | None = None,
           initial: Sequence[int] | None = None) -> SearchResult:
    """Simulated annealing (see the module docstring), exactly ``budget`` peak evaluations."""
    _check_budget(budget)
    t0 = time.perf_counter()
    default_start, default_end, default_chains = ANNEAL_SETTINGS[evaluator.model]
    t_start = default_start if t_start is None else t_start
    t_end = default_end if t_end is None else t_end
    chains = default_chains if chains is None else chains
    rng = random.Random(seed)
    n, workers = evaluator.n, evaluator.workers
    best_order = _start(evaluator, initial)
    best = evaluator.peak_ticks(best_order)
    used = 1
    if n < 2 or workers >= n:
        return SearchResult(tuple(best_order), evaluator.to_units(best), used, time.perf_counter() - t0,
                            "anneal", seed)
    if evaluator.model == "list":
        state, move = _list_state(evaluator), _list_move
    else:
        state, move = _waves_state(evaluator), _waves_move
    cycles = max(1, cycles)
    for c in range(cycles):
        runs = chains if c == 0 else 1
        share = (budget - used) // (cycles - c)
        temp0, temp1 = best * t_start * 0.5 ** c, best * t_end
        for r in range(runs):
            steps = share // runs - 1  # each chain also evaluates its start
            if steps < 0:
                continue
            start = best_order[:]
            if c == 0 and r > 0:
                rng.shuffle(start)
            order, peak = _anneal_run(state, move, rng, n, workers, evaluator.mem, start, steps, temp0, temp1)
            used += steps + 1
            if peak < best:
                best, best_order = peak, order
    # Spend what integer division left over on a last cold chain, so the budget is exact.
    if budget - used >= 1:
        order, peak = _anneal_run(state, move, rng, n, workers, evaluator.mem, best_order, budget - used - 1,
                                  best * t_end, best * t_end)
        used = budget
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
