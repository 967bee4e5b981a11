"""Choose which ready jobs to start now: a greedy packer and an exact 0-1 knapsack on a memory grid.

Both take plain :class:`PackItem` records and resource limits and return the indices of the chosen
items. Neither ever overfills: the knapsack rounds every memory weight UP to a grid cell of
``free_mem / grid``, so the cells it fits into the grid can never sum to more than the free memory.

``KnapsackPacker`` solves the paper's problem (maximise the memory in use) as a subset-sum over
a joint state space (memory cells x cores x GPUs x job count, only the dimensions that can bind),
held as one Python integer bitset per item: one shift-and-or per item, so a selection over
1,000 ready jobs takes milliseconds. Items that share a usage vector are interchangeable for a
subset-sum; they are merged into power-of-two bundles (exact for bounded knapsacks), which keeps
10,000-job sets cheap. Ties between equally full selections are broken towards items that come
first in the input, so callers express a preference (e.g. longest predicted runtime first) by
the order of the items. With explicit ``value`` per item it solves a value-maximising knapsack by
dynamic programming over the same state space (numpy), for small sets such as one simulation step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from .errors import ChromoschedError


@dataclass(frozen=True)
class PackItem:
    """One candidate job: its memory (MB or any unit), cores, GPUs and an optional value."""

    key: Hashable
    mem: float
    cores: int = 0
    gpus: int = 0
    value: float | None = None


@dataclass(frozen=True)
class Limits:
    """Free resources for one selection; ``None`` means unconstrained."""

    mem: float
    cores: int | None = None
    gpus: int | None = None
    max_items: int | None = None


def _check(items: Sequence[PackItem], limits: Limits) -> None:
    if not math.isfinite(limits.mem) or limits.mem < 0:
        raise ChromoschedError(f"free memory must be a finite number >= 0, got {limits.mem!r}")
    for it in items:
        if not math.isfinite(it.mem) or it.mem < 0:
            raise ChromoschedError(f"job {it.key!r}: memory must be a finite number >= 0, got {it.mem!r}")
        if it.cores < 0 or it.gpus < 0:
            raise ChromoschedError(f"job {it.key!r}: cores and gpus must be >= 0")


def _fits_alone(it: PackItem, limits: Limits) -> bool:
    return (
        it.mem <= limits.mem
        and (limits.cores is None or it.cores <= limits.cores)
        and (limits.gpus is None or it.gpus <= limits.gpus)
        and (limits.max_items is None or limits.max_items >= 1)
    )


def selection_fits(items: Sequence[PackItem], chosen: Sequence[int], limits: Limits) -> bool:
    """True when the chosen items respect every limit (used by tests and as a final guard)."""
    mem = sum(items[i].mem for i in chosen)
    cores = sum(items[i].cores for i in chosen)
    gpus = sum(items[i].gpus for i in chosen)
    return (
        mem <= limits.mem * (1 + 1e-12)
        and (limits.cores is None or cores <= limits.cores)
        and (limits.gpus is None or gpus <= limits.gpus)
        and (limits.max_items is None or len(chosen) <= limits.max_items)
        and len(set(chosen)) == len(chosen)
    )


class GreedyPacker:
    """Ascending memory, add while everything fits: the most jobs (the paper's greedy)."""

    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check(items, limits)
        order = sorted(range(len(items)), key=lambda i: (items[i].mem, i))
        mem, cores, gpus, chosen = 0.0, 0, 0, []
        for i in order:
            it = items[i]
            if limits.max_items is not None and len(chosen) >= limits.max_items:
                break
            if mem + it.mem > limits.mem:
                break  # ascending order: nothing later fits either
            if limits.cores is not None and cores + it.cores > limits.cores:
                continue
            if limits.gpus is not None and gpus + it.gpus > limits.gpus:
                continue
            chosen.append(i)
            mem += it.mem
            cores += it.cores
            gpus += it.gpus
        return chosen


class FirstFitPacker:
    """Walk the items in the given order and take each that still fits (list scheduling)."""

    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check(items, limits)
        mem, cores, gpus, chosen = 0.0, 0, 0, []
        for i, it in enumerate(items):
            if limits.max_items is not None and len(chosen) >= limits.max_items:
                break
            if mem + it.mem > limits.mem:
                continue
            if limits.cores is not None and cores + it.cores > limits.cores:
                continue
            if limits.gpus is not None and gpus + it.gpus > limits.gpus:
                continue
            chosen.append(i)
            mem += it.mem
            cores += it.cores
            gpus += it.gpus
        return chosen


class KnapsackPacker:
    """Exact 0-1 knapsack on a memory grid with cores, GPUs and a job count as further constraints.

    Without item values it maximises the memory used (in grid cells: weights rounded up, so a
    selection never overfills); with values it maximises their sum. ``grid`` is the number of
    memory cells the free memory is cut into; ``max_states`` bounds the joint state space (the
    grid is coarsened when cores/GPU/count dimensions would make it larger).
    """

    def __init__(self, grid: int = 1024, grid_1d: int = 8192, max_states: int = 1 << 15):
        if min(grid, grid_1d) < 8 or max_states < 64:
            raise ChromoschedError(f"knapsack grid must be >= 8 cells, got {grid}/{grid_1d}")
        self.grid = int(grid)
        self.grid_1d = int(grid_1d)
        self.max_states = int(max_states)

    # -- public -----------------------------------------------------------------------------
    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check(items, limits)
        cand = [i for i, it in enumerate(items) if _fits_alone(it, limits)]
        if not cand:
            return []
        if selection_fits(items, cand, limits):
            return cand
        if any(it.value is not None for it in items):
            chosen = self._value_dp(items, cand, limits, self._dimensions(items, cand, limits))
        else:
            # Memory alone first: when that optimum also respects cores/GPUs/count it is optimal
            # for the full problem (a relaxation's optimum that is feasible), and it is cheap.
            mem_only = Limits(limits.mem)
            chosen = self._subset_sum(items, cand, mem_only, self._dimensions(items, cand, mem_only))
            if not selection_fits(items, chosen, limits):
                chosen = self._subset_sum(items, cand, limits, self._dimensions(items, cand, limits))
        chosen = self._fill(items, cand, chosen, limits)
        chosen = self._swap_up(items, cand, chosen, limits)
        if not selection_fits(items, chosen, limits):  # pragma: no cover - guard, never expected
            raise ChromoschedError("knapsack selection exceeded the free resources (internal error)")
        return sorted(chosen)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _fill(items, cand, chosen, limits) -> list[int]:
        """Add, in preference order, jobs that still fit at their exact size (grid rounding slack)."""
        chosen = list(chosen)
        taken = set(chosen)
        mem = sum(items[i].mem for i in chosen)
        cores = sum(items[i].cores for i in chosen)
        gpus = sum(items[i].gpus for i in chosen)
        for i in cand:
            if i in taken:
                continue
            it = items[i]
            if limits.max_items is not None and len(chosen) >= limits.max_items:
                break
            if mem + it.mem > limits.mem:
                continue
            if limits.cores is not None and cores + it.cores > limits.cores:
                continue
            if limits.gpus is not None and gpus + it.gpus > limits.gpus:
                continue
            chosen.append(i)
            taken.add(i)
            mem += it.mem
            cores += it.cores
            gpus += it.gpus
        return chosen

    @staticmethod
    def _swap_up(items, cand, chosen, limits, max_rounds: int = 20) -> list[int]:
        """Exchange one chosen job for an unchosen one when that gains memory (or value) at the
        exact sizes: recovers fits that rounding up to the grid lost (40 + 60 in a budget of 100)."""
        import bisect

        use_value = any(it.value is not None for it in items)
        chosen = list(chosen)
        for _ in range(max_rounds):
            taken = set(chosen)
            mem = sum(items[i].mem for i in chosen)
            cores = sum(items[i].cores for i in chosen)
            gpus = sum(items[i].gpus for i in chosen)
            slack = limits.mem - mem

            def fits(a, b) -> bool:
                return (
                    mem - a.mem + b.mem <= limits.mem
                    and (limits.cores is None or cores - a.cores + b.cores <= limits.cores)
                    and (limits.gpus is None or gpus - a.gpus + b.gpus <= limits.gpus)
                )

            best = (1e-12, None, None)
            rest = [j for j in cand if j not in taken]
            if use_value:  # small sets only (simulation steps): plain scan
                for pos, i in enumerate(chosen):
                    for j in rest:
                        g = items[j].value - items[i].value
                        if g > best[0] and fits(items[i], items[j]):
                            best = (g, pos, j)
            else:
                rest.sort(key=lambda j: items[j].mem)
                mems = [items[j].mem for j in rest]
                for pos, i in enumerate(chosen):
                    a = items[i]
                    # Largest unchosen job that fits in a's place: scan down from the bound.
                    k = bisect.bisect_right(mems, a.mem + slack) - 1
                    while k >= 0 and mems[k] - a.mem > best[0]:
                        if fits(a, items[rest[k]]):
                            best = (mems[k] - a.mem, pos, rest[k])
                            break
                        k -= 1
            if best[1] is None:
                break
            chosen[best[1]] = best[2]
        return chosen

    def _dimensions(self, items, cand, limits):
        """Which dimensions can bind, with their limits; returns (grid, unit, extra dims)."""
        extra = []  # (name, limit, per-item usage getter)
        if limits.cores is not None and sum(items[i].cores for i in cand) > limits.cores:
            extra.append(("cores", int(limits.cores), lambda it: it.cores))
        if limits.gpus is not None and sum(items[i].gpus for i in cand) > limits.gpus:
            extra.append(("gpus", int(limits.gpus), lambda it: it.gpus))
        if limits.max_items is not None and len(cand) > limits.max_items:
            extra.append(("count", int(limits.max_items), lambda it: 1))
        other = 1
        for _, lim, _ in extra:
            other *= lim + 1
        grid = max(8, min(self.grid if extra else self.grid_1d, self.max_states // other - 1))
        unit = limits.mem / grid if limits.mem > 0 else 1.0
        return grid, unit, extra

    @staticmethod
    def _weights(items, cand, grid, unit, extra):
        """Usage vectors (inner dimensions..., memory cells), memory rounded UP to the grid."""
        inv = 1.0 / unit
        ceil = math.ceil
        getters = [get for _, _, get in extra]
        usage = []
        for i in cand:
            it = items[i]
            w = ceil(it.mem * inv) if it.mem > 0 else 0
            if w * unit < it.mem:  # guard the reciprocal's rounding
                w += 1
            # Rounding up can push a job that fits exactly over the grid: _fill takes it back.
            usage.append(tuple(get(it) for get in getters) + (w,) if getters else (w,))
        return usage

    def _subset_sum(self, items, cand, limits, dims) -> list[int]:
        """Bitset subset-sum: bit s of ``reach`` is set when state s (a flattened vector of
        cores/GPUs/count used and memory cells used, memory outermost) is reachable."""
        grid, unit, extra = dims
        usage = self._weights(items, cand, grid, unit, extra)
        lims = tuple(lim for _, lim, _ in extra) + (grid,)
        n_inner = len(lims) - 1
        strides = [1]
        for lim in lims[:-1]:
            strides.append(strides[-1] * (lim + 1))
        inner = strides[-1]
        total_bits = inner * (grid + 1)

        # Interchangeable items (same usage vector) become power-of-two bundles, earlier items
        # first; a class never needs more copies than fit.
        classes: dict[tuple, list[int]] = {}
        for pos, u in enumerate(usage):
            if u[-1] <= grid:
                members = classes.get(u)
                if members is None:
                    classes[u] = [pos]
                else:
                    members.append(pos)
        bundles: list[tuple[int, tuple, list[int]]] = []  # (shift, inner usage, members)
        for u, members in classes.items():
            cap = len(members)
            for d in range(len(lims)):
                if u[d] > 0:
                    cap = min(cap, lims[d] // u[d])
            shift1 = u[-1] * inner
            for d in range(n_inner):
                shift1 += u[d] * strides[d]
            size, start = 1, 0
            while start < cap:
                take = members[start : min(start + size, cap)]
                k = len(take)
                bundles.append((shift1 * k, tuple(x * k for x in u[:n_inner]), take))
                start += k
                size *= 2
        # Backtracking drops a bundle whenever the bundles before it reach the same state, so the
        # preferred (earlier) items go first.
        bundles.sort(key=lambda b: b[2][0])

        full = (1 << total_bits) - 1
        mask_cache: dict[tuple[int, int], int] = {}

        def inner_mask(d: int, u: int) -> int:
            """States whose coordinate in inner dimension d leaves room for u more."""
            m = mask_cache.get((d, u))
            if m is None:
                stride, lim = strides[d], lims[d]
                period = stride * (lim + 1)
                block = (1 << ((lim - u + 1) * stride)) - 1
                reps = total_bits // period
                rep = ((1 << (period * reps)) - 1) // ((1 << period) - 1)
                m = block * rep
                mask_cache[(d, u)] = m
            return m

        reach = 1
        history = [reach]
        append = history.append
        if n_inner == 0:
            for shift, _, _ in bundles:
                # Memory is the outermost dimension: overflow lands above total_bits, cut off.
                reach = (reach | (reach << shift)) & full
                append(reach)
        else:
            for shift, uin, _ in bundles:
                src = reach
                for d in range(n_inner):
                    if uin[d]:
                        src &= inner_mask(d, uin[d])
                reach = (reach | (src << shift)) & full
                append(reach)

        best_state = (reach.bit_length() - 1) // inner * inner  # highest memory row reached
        row = (reach >> best_state) & ((1 << inner) - 1)
        best_state += (row & -row).bit_length() - 1  # lowest inner state in that row
        chosen: list[int] = []
        state = best_state
        for b in range(len(bundles) - 1, -1, -1):
            if (history[b] >> state) & 1:
                continue  # reachable without this bundle
            state -= bundles[b][0]
            chosen.extend(bundles[b][2])
        return [cand[p] for p in chosen]

    def _value_dp(self, items, cand, limits, dims) -> list[int]:
        grid, unit, extra = dims
        usage = self._weights(items, cand, grid, unit, extra)
        lims = tuple(lim for _, lim, _ in extra) + (grid,)
        shape = tuple(lim + 1 for lim in lims)  # last axis = memory cells
        neg = -np.inf
        dp = np.full(shape, neg)
        dp[(0,) * len(shape)] = 0.0
        keep = []
        for pos, i in enumerate(cand):
            u = usage[pos]
            if any(x > s - 1 for x, s in zip(u, shape)):
                keep.append(None)
                continue
            v = items[i].value if items[i].value is not None else items[i].mem
            src = tuple(slice(0, s - x) for x, s in zip(u, shape))
            dst = tuple(slice(x, s) for x, s in zip(u, shape))
            cand_val = dp[src] + v
            take = cand_val > dp[dst]
            dp[dst] = np.where(take, cand_val, dp[dst])
            full_take = np.zeros(shape, dtype=bool)
            full_take[dst] = take
            keep.append(full_take)
        state = np.unravel_index(int(np.argmax(dp)), shape)
        chosen = []
        for pos in range(len(cand) - 1, -1, -1):
            k = keep[pos]
            if k is not None and k[state]:
                chosen.append(cand[pos])
                u = usage[pos]
                state = tuple(s - x for s, x in zip(state, u))
        return chosen
