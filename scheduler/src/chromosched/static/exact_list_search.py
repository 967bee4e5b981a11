"""Exact branch and bound over list-scheduling orders: lower bounds, proofs of optimality and orders.

``decide(P)`` answers whether some order has a peak of at most P, exactly, within a node limit. The
search follows the schedule forward in time: it picks the K tasks that start at t=0, then, each
time workers become free, the tasks that start there. Every order is covered once, up to the order
of tasks that start at the same instant, which does not change the schedule. Two cuts prune it:

* a start that would lift the running memory above P is never taken;
* at every node, the relaxation of :mod:`chromosched.static.peak_lower_bound` is applied to what is
  left: the running tasks with their remaining durations, plus the tasks not yet started. The chain
  facts force tasks into the cut set T. T must then cover the area above P/K with at most K-1
  tasks, and those tasks must run together within P. When no two workers become free together at
  the window's end tau (case A), T also runs within P together with the smallest other tasks that
  fill the K running at the last start. When two do (case B), tau is at least the earliest instant
  at which that can happen, which limits how much duration T can remove from the window, and those
  two workers' whole chains are a pair of disjoint task sets with equal total duration
  (``tie_pairs`` lists them all; for GRCh37 at K=3 there are three). A node survives when either
  case does.

States already proven infeasible are remembered, by exact key. The answer is "infeasible" only when
the whole tree was searched, so P is then a proven lower bound (every order's peak is above P).
"feasible" comes with an order that reaches at most P. "unknown" means the node limit was hit.

``exact_lower_bound`` first tries one grid tick below the reached peak; an "infeasible" there
proves the reached peak optimal. Where the known bound leaves a gap above ``TARGET_GAP`` (3 %), it
then probes the ceiling of peak / (1 + ``TARGET_GAP``), the hardest probe a bound needs, with its
own, larger node allowance. Then it bisects between the bound proven so far and the reached peak,
each probe with its own node limit; a level above one whose proof took many nodes is harder still,
so where the gap probe took more than half a probe's limit, there is no bisection. As soon as the
bound is within ``OPTIMALITY_REACH`` of the peak, before or during the bisection, it tries the proof
of optimality, with an allowance of its own too; the bisection goes on only where that proof does
not succeed. Node limits, not time, make the result deterministic: it does not depend on the
machine's speed.

The search is C (``exact_list_search.c`` beside this file), compiled on first use (:mod:`native_library`) with the
system's C compiler (``$CC``, else ``cc``) into ``$XDG_CACHE_HOME/chromosched`` and loaded with
ctypes. Without a compiler, ``available()`` is False and the optimiser keeps the analytic bound;
the table header says which bound was used.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import native_library
from .peak_memory import GRID

SOURCE = Path(__file__).with_suffix(".c")
MAX_TASKS = 63
TOTAL_NODES = 80_000_000  # node limit of one bound's bisection, all its probes together (about 35 s on one core)
# (Half of it, with probes of 10 M, gave the same bounds at GRCh37 K=3, 6 and 9, 1.07 Mbp less at K=4,
# and at K=11 a bisection gap of 1.48 %: no proof of optimality there any more.)
PROBE_NODES = 20_000_000  # at most this many in one decision of the bisection (a quarter of the total)...
FIRST_PROBE_NODES = 8_000_000  # ...and in the proof of optimality one tick below the reached peak (a tenth)
RELATIVE_PRECISION = 1e-4  # stop bisecting when the interval is this fraction of the peak
# Before the bisection, where the known bound leaves a larger gap than this, one probe at the ceiling of
# peak / (1 + TARGET_GAP): "infeasible" there shows the order within 3 % of optimal (issue #17's target).
# It is the hardest probe a bound needs, so it gets its own allowance beyond the total, GAP_PROBE_SHARE
# times it (GAP_PROBE_NODES at most). Measured with the C search: GRCh37 K=5, 7, 8 need 145 M, 218 M and
# 103 M nodes there, GRCh38 K=5, 7, 8 46 M, 254 M and 69 M.
TARGET_GAP = 0.03
GAP_PROBE_SHARE = 5
GAP_PROBE_NODES = 400_000_000
# As soon as the bound known or proven is within this of the peak, the probe one tick below the peak (a
# proof of optimality) gets its own allowance too, OPTIMALITY_PROBE_SHARE times the total
# (OPTIMALITY_PROBE_NODES at most), before the bisection goes on: GRCh37 K=10 and K=11 are optimal,
# proven in 50 M and 69 M nodes once the bisection reached gaps of 0.36 % and 1.09 %; at K=3 (1.38 %)
# 150 M nodes do not decide it.
# No bisection where proving the gap level took more than this share of a probe's nodes: every level above
# it is harder (halfway to the peak, GRCh37 K=10, 3, 11 and 6 needed 4, 44, 27 and over 20 times the gap
# level's nodes). The three bisections this skips in the shipped tables (GRCh37 K=9, GRCh38 K=9, mm10 K=7:
# gap levels of 19.5 M, 19.9 M and 12.7 M nodes) spent 62-72 M nodes each and proved nothing.
GAP_PROOF_SHARE_OF_A_PROBE = 0.5
OPTIMALITY_REACH = 0.0125
OPTIMALITY_PROBE_SHARE = 1.25
OPTIMALITY_PROBE_NODES = 100_000_000


def first_probe_nodes(total_nodes: int) -> int:
    """The allowance of the probe one tick below the peak, for a bound of ``total_nodes``: a tenth,
    ``FIRST_PROBE_NODES`` at most (the optimiser's checkpoint makes the same probe with it)."""
    return max(1, min(FIRST_PROBE_NODES, total_nodes // 10))


class _Library:
    def __init__(self, lib: ctypes.CDLL) -> None:
        fn = lib.chromosched_list_feasible
        ll_p = ctypes.POINTER(ctypes.c_longlong)
        fn.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ll_p,
            ll_p,
            ctypes.c_longlong,
            ctypes.c_longlong,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_uint64),
            ctypes.POINTER(ctypes.c_uint64),
            ctypes.c_longlong,
            ctypes.POINTER(ctypes.c_int),
            ll_p,
        ]
        fn.restype = ctypes.c_int
        self.feasible = fn


_library = native_library.bind(SOURCE, _Library)


def available() -> bool:
    """True when the C search could be compiled and loaded here."""
    return _library() is not None


@dataclass(frozen=True)
class Decision:
    """The answer for one P: ``status`` is "feasible" (with ``order``), "infeasible" or "unknown"."""

    status: str
    order: tuple[int, ...] | None
    nodes: int


MAX_TIE_PAIRS = 4096  # more pairs of equal-sum task sets than this: case B is assumed possible anywhere


@lru_cache(maxsize=16)
def tie_pairs(duration_ticks: tuple[int, ...], workers: int) -> tuple[int, tuple[tuple[int, int], ...] | None]:
    """Where two workers could become free together inside the window.

    Returns the earliest such instant (ticks; -1 when it cannot happen inside the window, which is
    at most total work / K long) and every pair of disjoint task sets (bit masks over the tasks, both
    orders) whose durations add up to the same instant within the window, or None when there are
    too many tasks to enumerate (then 0 is the instant: ties anywhere) or more than MAX_TIE_PAIRS."""
    from .peak_lower_bound import MAX_TIE_TASKS, subset_sums

    n, total = len(duration_ticks), sum(duration_ticks)
    if n > MAX_TIE_TASKS:
        return 0, None
    import numpy as np

    sums = subset_sums(duration_ticks)  # index = the subset's bit mask
    order = np.argsort(sums, kind="stable")
    ordered = sums[order]
    equal = ordered[1:] == ordered[:-1]
    within = ordered * workers <= total
    # The first index of each run of equal sums within the window.
    starts = np.flatnonzero(equal & within[1:] & ~np.concatenate([[False], equal[:-1]]))
    if len(starts) == 0:
        return -1, ()
    pairs: set[tuple[int, int]] = set()
    for i in starts:  # each run of equal sums once: every disjoint pair of its subsets
        end = i + 1
        while end < len(ordered) and ordered[end] == ordered[i]:
            end += 1
        group = [int(order[x]) for x in range(i, end)]
        for a in group:
            for b in group:
                if a != b and not a & b:
                    pairs.add((a, b))
        if len(pairs) > MAX_TIE_PAIRS:
            return int(ordered[starts[0]]), None
    if not pairs:
        return -1, ()
    earliest = min(int(sums[a]) for a, _ in pairs)
    return earliest, tuple(sorted(pairs))


def decide(
    mem_ticks: Sequence[int], dur_ticks: Sequence[int], workers: int, peak_ticks: int, node_limit: int = PROBE_NODES
) -> Decision:
    """Is there a list-scheduling order with peak <= ``peak_ticks``? (all values on the 1e-6 grid)"""
    lib = _library()
    n = len(mem_ticks)
    if lib is None or n > MAX_TASKS or not 1 <= workers <= n:
        return Decision("unknown", None, 0)
    # Largest first: big tasks decide early, which prunes sooner.
    by_size = sorted(range(n), key=lambda i: (-mem_ticks[i], -dur_ticks[i], i))
    arr = ctypes.c_longlong * n
    order = (ctypes.c_int * n)()
    nodes = ctypes.c_longlong(0)
    tie, pairs = tie_pairs(tuple(int(d) for d in dur_ticks), workers)
    position = {task: j for j, task in enumerate(by_size)}  # the C side numbers tasks largest first

    def renumber(mask: int) -> int:
        return sum(1 << position[i] for i in range(n) if mask >> i & 1)

    masks = ctypes.c_uint64 * max(1, len(pairs or ()))
    pair_a = masks(*[renumber(a) for a, _ in pairs or ()])
    pair_b = masks(*[renumber(b) for _, b in pairs or ()])
    status = lib.feasible(
        n,
        workers,
        arr(*[mem_ticks[i] for i in by_size]),
        arr(*[dur_ticks[i] for i in by_size]),
        int(peak_ticks),
        tie,
        -1 if pairs is None else len(pairs),
        pair_a,
        pair_b,
        int(node_limit),
        order,
        ctypes.byref(nodes),
    )
    if status == 1:
        return Decision("feasible", tuple(by_size[j] for j in order), nodes.value)
    return Decision("infeasible" if status == 0 else "unknown", None, nodes.value)


@dataclass(frozen=True)
class ExactBound:
    """What the branch and bound proved: ``bound`` (every order's peak is at least this; None when
    nothing beyond the known bound was proven), ``optimal`` (the reached peak is proven optimal),
    ``order``/``peak`` (a better order than the one given, when a probe found one), nodes spent."""

    bound: float | None
    optimal: bool
    order: tuple[int, ...] | None
    peak: float | None
    nodes: int


def exact_lower_bound(
    memory: Sequence[float],
    duration: Sequence[float],
    workers: int,
    known_bound: float,
    reached_peak: float,
    peak_of: Callable[[tuple[int, ...]], float],
    total_nodes: int = TOTAL_NODES,
    undecided_below: tuple[int, int] | None = None,
) -> ExactBound:
    """Probe P between ``known_bound`` and ``reached_peak`` with ``decide`` (see the module docstring).

    ``peak_of(order)`` is the evaluator's exact peak of an order (in task units); it prices an order
    a probe finds, which then becomes the new upper end. In turn: one probe one tick below the peak
    (a tenth of ``total_nodes``, ``FIRST_PROBE_NODES`` at most: a proof of optimality); where the gap is
    above ``TARGET_GAP``, the gap probe at peak / (1 + ``TARGET_GAP``), with its own allowance of
    ``GAP_PROBE_SHARE`` x ``total_nodes`` (``GAP_PROBE_NODES`` at most) beyond the total; then the
    bisection, a quarter of ``total_nodes`` (``PROBE_NODES`` at most) per probe, until the total is
    spent (none where the gap probe's proof took more than ``GAP_PROOF_SHARE_OF_A_PROBE`` of a probe's
    nodes: every level above it is harder). As soon as the bound known or proven is within
    ``OPTIMALITY_REACH`` of the peak (before the bisection's first probe or after any), the probe one
    tick below the peak with its own allowance of ``OPTIMALITY_PROBE_SHARE`` x ``total_nodes``
    (``OPTIMALITY_PROBE_NODES`` at most) beyond the total: "infeasible" ends it, else the bisection
    goes on; every such probe draws on the one allowance. Last, one more probe one tick below the best
    order: within reach, from that allowance (not again at a peak it was made at), else with up to a
    probe's nodes where the bisection came within its precision or found a better order.
    ``undecided_below``: (a peak in ticks, nodes) where the caller's probe one tick below that peak,
    with ``first_probe_nodes(total_nodes)``, came back "unknown" after those nodes; at that peak the
    first probe is skipped and its nodes count as spent.
    """
    probe_nodes = max(1, min(PROBE_NODES, total_nodes // 4))
    gap_nodes = max(1, min(GAP_PROBE_NODES, GAP_PROBE_SHARE * total_nodes))
    optimality_nodes = max(1, min(OPTIMALITY_PROBE_NODES, int(OPTIMALITY_PROBE_SHARE * total_nodes)))
    mem = [int(round(v * GRID)) for v in memory]
    dur = [int(round(v * GRID)) for v in duration]
    lo = int(math.floor(known_bound * GRID))  # no order's peak is below the known bound...
    hi = int(round(reached_peak * GRID))  # ...and some order reaches hi
    spent, extra, proven, best_order, best_peak = 0, 0, None, None, None
    peak_ticks = hi  # the best order's peak; hi is the bisection's upper end, which an undecided probe lowers
    if lo >= hi or not available():
        return ExactBound(None, lo >= hi, None, None, 0)

    def probe(p: int, limit: int) -> Decision:
        nonlocal spent
        d = decide(mem, dur, workers, p, min(limit, total_nodes - spent))
        spent += d.nodes
        return d

    def beyond(p: int, limit: int) -> Decision:  # a probe with its own allowance, beyond the total
        nonlocal extra
        d = decide(mem, dur, workers, p, limit)
        extra += d.nodes
        return d

    optimality_spent, tried_optimality = 0, None

    def prove_optimal() -> Decision | None:
        """The probe one tick below the best peak, from the one allowance of its own that all its tries
        share; None where it was made at this peak already (the same answer again) or nothing is left."""
        nonlocal optimality_spent, tried_optimality
        if peak_ticks == tried_optimality or optimality_spent >= optimality_nodes:
            return None
        tried_optimality = peak_ticks
        d = beyond(peak_ticks - 1, optimality_nodes - optimality_spent)
        optimality_spent += d.nodes
        return d

    def within_reach() -> bool:  # the bound known or proven is close enough for a proof of optimality
        return peak_ticks - lo <= OPTIMALITY_REACH * peak_ticks

    def take(d: Decision) -> None:
        nonlocal hi, best_order, best_peak, peak_ticks
        peak = peak_of(d.order)
        best_order, best_peak = d.order, peak
        peak_ticks = int(round(peak * GRID))
        hi = min(hi, peak_ticks)  # the bisection may have come below it already (an undecided probe)

    if undecided_below is not None and undecided_below[0] == hi:
        # The caller's own probe there, with this allowance, was undecided: the same decision again
        # would be too. Its nodes count as spent, so the rest goes exactly as without the skip.
        spent = undecided_below[1]
    else:
        first = probe(hi - 1, first_probe_nodes(total_nodes))  # a proof of optimality, or a better order
        if first.status == "infeasible":
            return ExactBound(hi / GRID, True, None, None, spent)
        if first.status == "feasible":
            take(first)
    # The gap target: the ceiling of peak / (1 + TARGET_GAP), so "infeasible" there proves a gap <= TARGET_GAP.
    # Its nodes come from its own allowance; an order it finds lowers the peak, and the level with it.
    lo_nodes = 0  # what proving lo took (0: the known bound)
    while extra < gap_nodes:
        level = -(-hi * 100 // int(round(100 * (1 + TARGET_GAP))))
        if level <= lo:  # lo is the proven bound (or the known one)
            break
        d = beyond(level, gap_nodes - extra)
        if d.status == "infeasible":
            lo = proven = level
            lo_nodes = d.nodes
        elif d.status == "feasible":
            take(d)
            continue
        break
    # The bisection probes above lo, which are harder than lo itself: where proving lo took more than half
    # a probe's nodes, none of them is likely to be decided, and the bisection is skipped. Once the bound
    # is within reach of the peak, the proof of optimality comes first: where it succeeds, the rest of the
    # bisection has nothing left to do; where it does not, the bisection goes on as it would have.
    harder_than_a_probe = lo_nodes > GAP_PROOF_SHARE_OF_A_PROBE * probe_nodes
    while hi - lo > max(1, int(RELATIVE_PRECISION * hi)) and spent < total_nodes and not harder_than_a_probe:
        d = prove_optimal() if within_reach() else None
        if d is not None:
            if d.status == "infeasible":
                return ExactBound(peak_ticks / GRID, True, best_order, best_peak, spent + extra)
            if d.status == "feasible":
                take(d)
            continue
        mid = (lo + hi) // 2
        d = probe(mid, probe_nodes)
        if d.status == "infeasible":
            lo = proven = mid
        elif d.status == "feasible":
            take(d)
        else:
            hi = mid  # too hard at mid: look lower for what can be proven
    # Last, one more try one tick below the best peak: within reach, from the allowance of its own (not
    # again at a peak it was made at); else with up to a probe's nodes, where the bisection came within
    # its precision of the peak or found a better order.
    close = proven is not None and peak_ticks - proven <= max(1, int(RELATIVE_PRECISION * peak_ticks))
    last = None
    if within_reach():
        last = prove_optimal()
    elif (best_order is not None or close) and spent < total_nodes:
        last = probe(peak_ticks - 1, probe_nodes)
    if last is not None and last.status == "infeasible":
        return ExactBound(peak_ticks / GRID, True, best_order, best_peak, spent + extra)
    return ExactBound(None if proven is None else proven / GRID, False, best_order, best_peak, spent + extra)
