"""Lower bounds on the smallest peak memory any order can reach (list and waves models).

Notation: n tasks with memory m_i > 0 and duration d_i > 0, K workers. When n <= K every order
runs all tasks at once and the peak is sum(m). Otherwise n > K and P is the peak of any order.

List scheduling
---------------
Every worker is busy from t=0 until the last task has been dispatched: a worker freed while a task
is still waiting receives it at once. Let tau be the first moment at which fewer than K tasks run
(tau >= the last start S). On the window W = [0, tau) exactly K tasks run at every instant. Let T
be the set of tasks still running after tau, i.e. the tasks cut by the end of the window; every
task outside T lies completely inside W. Four facts hold for every order:

1. Cut set. Fewer than K tasks run right after tau, so |T| <= K-1, and the tasks of T run
   together, so P >= sum_{i in T} m_i.
   Without ties (no two workers ever free at the same instant), more is known: tau > S, exactly one
   task e ends at tau, |T| = K-1 exactly and T + {e} run together just before tau, so
   P >= sum_{i in T} m_i + min_{j not in T} m_j. Ties at an instant t need two disjoint sets of
   tasks (two workers' histories) with equal total duration t; ``earliest_tie`` finds the smallest
   such t exactly (all 2^n subset sums of the integer durations, n <= 24). As K*tau <= sum(d), no
   tie can happen inside the window when that t exceeds sum(d)/K, and then the stronger form holds.
2. Area. Integrate the memory profile over W: K*tau = sum_i x_i and P*tau >= sum_i m_i x_i, with
   x_i = |I_i ∩ W| = d_i outside T and x_i in [0, d_i] on T. So P >= K * (sum m_i x_i / sum x_i),
   minimised over the unknown x_i of T.
3. Chain. A task i outside T lies inside W, so during all of it the other K-1 workers are busy,
   with distinct tasks other than i whose overlaps with i add up to (K-1)*d_i.
   (a) Filling (K-1)*d_i units of worker-time costs least memory-time with the smallest-memory
       tasks first, so P >= m_i + A_i/d_i with A_i that least memory-time (fractional covering).
   (b) With theta_i the smallest memory such that the tasks j != i with m_j <= theta_i have total
       duration >= (K-1)*d_i, some task overlapping i has memory >= theta_i, and K-2 more distinct
       tasks run beside both, so P >= m_i + (least sum of K-1 distinct other memories that includes
       one >= theta_i). If the others cannot fill (K-1)*d_i at all, i must be in T.
   C_i = max of (a), (b): the peak forced if task i lies inside W.
4. At t=0 the first K tasks run together: P >= the sum of the K smallest memories.

The bound is the least P for which some admissible T satisfies all of 1-3 at once (feasibility is
monotone in P, found by bisection). For a candidate P, every task with C_i > P must be in T; the
area condition with lambda = P/K reads sum_{i in T} g_i >= G with g_i = max(0, (m_i - lambda) d_i)
and G = sum_i (m_i - lambda) d_i (a task of T above lambda is best cut away entirely, one below is
best kept). Only tasks with g_i > 0 help the area, so a small depth-first search over them, with
T completed by the smallest remaining tasks, decides feasibility exactly for this relaxation.

For GRCh37 lengths as memory and duration this gives 321.28 at K=2 (= chr2 + chr18: unless chr2
is still running at the end, the other worker must cover chr2's 243.2 Mbp with other chromosomes,
and chr19-chr22 together only cover 221.6), which an order reaches: K=2 is solved exactly.

Waves
-----
The waves peak of an order is its largest block sum, with B = ceil(n/K) blocks: B-1 full blocks of
K tasks and a last block of r = n - (B-1)*K tasks. For every order
P >= sum(m)/B (average block), P >= (sum(m) - sum of the r largest)/(B-1) (the full blocks hold all
but at most r tasks), and P >= max(m) + the r-1 smallest other memories (the largest task's block
has at least r tasks). For GRCh37 this bound is reached (so the order is optimal) at K=2 and within
0.02% for K >= 5. The waves optimum itself is a min-max partition, which
:mod:`chromosched.static.waves_partition` finds and proves by branch and bound (the optimiser then reports
it as the bound); this analytic bound is what is known when that search stops at its node limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from .peak_memory import GRID
from .task_model import TaskSet
from .waves_partition import block_sizes

MAX_TIE_TASKS = 24  # 2^24 subset sums is the most we enumerate to rule out ties


def _to_ticks(values: Sequence[float]) -> tuple[int, ...]:
    return tuple(int(round(v * GRID)) for v in values)


def _on_grid(values: Sequence[float]) -> list[float]:
    """The values the evaluator actually uses (its 1e-6 grid), so bounds compare exactly."""
    return [t / GRID for t in _to_ticks(values)]


def subset_sums(durations: Sequence[int]):
    """The total of every subset of the integer ``durations`` as a numpy array indexed by the subset's
    bit mask (2^n entries: callers keep n <= MAX_TIE_TASKS)."""
    import numpy as np

    sums = np.zeros(1, dtype=np.int64)
    for d in durations:
        sums = np.concatenate([sums, sums + d])
    return sums


@lru_cache(maxsize=32)
def _earliest_tie_ticks(durations: tuple[int, ...]) -> int | None:
    import numpy as np

    sums = subset_sums(durations)
    sums.sort()
    dup = np.flatnonzero(sums[1:] == sums[:-1])
    return int(sums[dup[0]]) if len(dup) else None


def earliest_tie(durations: Sequence[float]) -> float:
    """Smallest instant at which two workers could become free together (inf when never).

    Two workers free at t means two disjoint task sets with total duration t, i.e. two different
    subsets with equal sums (remove the common part). Exact on the evaluator's integer grid.
    Returns 0 (ties anywhere) when there are too many tasks to enumerate.
    """
    if len(durations) > MAX_TIE_TASKS:
        return 0.0
    ticks = _earliest_tie_ticks(_to_ticks(durations))
    return math.inf if ticks is None else ticks / GRID


def _min_fill(mem: Sequence[float], dur: Sequence[float], skip: int, need: float) -> float | None:
    """Least memory-time to fill ``need`` units of worker-time with tasks other than ``skip``."""
    area = 0.0
    for j in sorted((j for j in range(len(mem)) if j != skip), key=lambda j: mem[j]):
        take = min(dur[j], need)
        area += take * mem[j]
        need -= take
        if need <= 0:
            return area
    return None


def _theta(mem: Sequence[float], dur: Sequence[float], skip: int, need: float) -> float | None:
    """Smallest memory level whose tasks (other than ``skip``) reach ``need`` total duration."""
    total = 0.0
    for j in sorted((j for j in range(len(mem)) if j != skip), key=lambda j: mem[j]):
        total += dur[j]
        if total >= need:
            return mem[j]
    return None


def _least_sum_with_one_at_least(values: list[float], count: int, theta: float) -> float:
    """Least sum of ``count`` distinct entries of ``values`` that includes one entry >= theta."""
    vals = sorted(values)
    if count <= 0:
        return 0.0
    if vals[count - 1] >= theta:
        return sum(vals[:count])
    return sum(vals[: count - 1]) + next(v for v in vals if v >= theta)


def chain_bounds(mem: Sequence[float], dur: Sequence[float], workers: int) -> list[float]:
    """C_i of the module docstring: the peak forced if task i lies inside the full-occupancy window."""
    n, k = len(mem), workers
    out = []
    for i in range(n):
        need = (k - 1) * dur[i]
        if need <= 0:
            out.append(mem[i])
            continue
        area = _min_fill(mem, dur, i, need)
        theta = _theta(mem, dur, i, need)
        if area is None or theta is None:
            out.append(math.inf)
            continue
        others = [mem[j] for j in range(n) if j != i]
        out.append(max(mem[i] + area / dur[i], mem[i] + _least_sum_with_one_at_least(others, k - 1, theta)))
    return out


def _feasible(mem: Sequence[float], dur: Sequence[float], k: int, peak: float, chain: list[float], ties: bool) -> bool:
    """Can some cut set T satisfy facts 1-3 of the module docstring with peak ``peak``?"""
    n = len(mem)
    lam = peak / k
    forced = [i for i in range(n) if chain[i] > peak]
    if len(forced) > k - 1:
        return False
    gain = [max(0.0, (mem[i] - lam) * dur[i]) for i in range(n)]
    need = sum((mem[i] - lam) * dur[i] for i in range(n))
    forced_set = set(forced)
    base_gain = sum(gain[i] for i in forced)
    base_mem = sum(mem[i] for i in forced)
    cands = sorted((i for i in range(n) if i not in forced_set and gain[i] > 0), key=lambda i: -gain[i])
    fillers = sorted(mem[i] for i in range(n) if i not in forced_set and gain[i] <= 0)
    slots = k - 1 - len(forced)

    def tail_ok(chosen_mem: float, chosen: int, unchosen_cands: list[int]) -> bool:
        if ties:  # relaxed form: |T| <= K-1, sum over T <= P
            return chosen_mem <= peak
        # strict form: |T| = K-1 exactly, completed with the smallest fillers, plus the smallest task
        # outside T running just before tau.
        extra = k - 1 - chosen
        if extra > len(fillers):
            return False
        outside = fillers[extra : extra + 1] + [mem[i] for i in unchosen_cands]
        if not outside:
            return False
        return chosen_mem + sum(fillers[:extra]) + min(outside) <= peak

    chosen_flags = [False] * len(cands)

    def dfs(pos: int, cur_gain: float, cur_mem: float, used: int) -> bool:
        if cur_gain >= need:
            unchosen = [cands[j] for j in range(len(cands)) if not chosen_flags[j]]
            if tail_ok(cur_mem, len(forced) + used, unchosen):
                return True
        if pos == len(cands) or used == slots:
            return False
        if cur_gain + sum(gain[cands[j]] for j in range(pos, min(len(cands), pos + slots - used))) < need:
            return False
        i = cands[pos]
        if cur_mem + mem[i] <= peak:
            chosen_flags[pos] = True
            if dfs(pos + 1, cur_gain + gain[i], cur_mem + mem[i], used + 1):
                chosen_flags[pos] = False
                return True
            chosen_flags[pos] = False
        return dfs(pos + 1, cur_gain, cur_mem, used)

    if slots < 0 or base_mem > peak:
        return False
    return dfs(0, base_gain, base_mem, 0)


def _snap(value: float) -> float:
    """Round a bound up to the evaluator's grid: peaks are whole grid ticks, so OPT >= ceil(bound).
    The 1e-3 tick slack absorbs floating-point summation error (far below a tick)."""
    return math.ceil(value * GRID - 1e-3) / GRID


def list_lower_bound(mem: Sequence[float], dur: Sequence[float], workers: int) -> float:
    """Lower bound on the optimal list-scheduling peak (see the module docstring)."""
    return _snap(_list_lower_bound(_on_grid(mem), _on_grid(dur), workers))


def _list_lower_bound(mem: Sequence[float], dur: Sequence[float], workers: int) -> float:
    n, k = len(mem), workers
    if n <= k:
        return float(sum(mem))
    trivial = float(sum(sorted(mem)[:k]))
    if k == 1:
        return max(trivial, float(max(mem)))
    ties = earliest_tie(dur) <= sum(dur) / k
    chain = chain_bounds(mem, dur, k)
    lo, hi = trivial, float(sum(mem))
    if _feasible(mem, dur, k, lo, chain, ties):
        return lo
    # Bisection: lo is always infeasible (no order has peak <= lo), hi feasible.
    while hi - lo > 1e-9 * hi:
        mid = (lo + hi) / 2
        if _feasible(mem, dur, k, mid, chain, ties):
            hi = mid
        else:
            lo = mid
    return lo


def waves_lower_bound(mem: Sequence[float], workers: int) -> float:
    """Analytic lower bound on the optimal waves peak (see the module docstring)."""
    mem = _on_grid(mem)
    n, k = len(mem), workers
    return _snap(_waves_lower_bound(mem, n, k))


def _waves_lower_bound(mem: list[float], n: int, k: int) -> float:
    if n <= k:
        return float(sum(mem))
    sizes = block_sizes(n, k)
    blocks, short = len(sizes), sizes[-1]
    vals = sorted(mem)
    average = sum(vals) / blocks
    full_blocks = (sum(vals) - sum(vals[n - short :])) / (blocks - 1)
    with_largest = vals[-1] + sum(vals[: short - 1])
    return float(max(average, full_blocks, with_largest))


def lower_bound(tasks: TaskSet, workers: int, model: str = "list") -> float:
    """Lower bound on the optimal peak of ``tasks`` on ``workers`` under ``model``."""
    if model == "waves":
        return waves_lower_bound(tasks.memory, workers)
    return list_lower_bound(tasks.memory, tasks.duration, workers)
