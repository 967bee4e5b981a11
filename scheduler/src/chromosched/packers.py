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


def _check_limits(limits: Limits) -> None:
    if not math.isfinite(limits.mem) or limits.mem < 0:
        raise ChromoschedError(f"free memory must be a finite number >= 0, got {limits.mem!r}")


class _Arrays:
    """The items' memory, cores, GPUs (and values) as numpy arrays, validated once."""

    def __init__(self, items: Sequence[PackItem]):
        n = len(items)
        self.mem = np.fromiter((it.mem for it in items), dtype=float, count=n)
        self.cores = np.fromiter((it.cores for it in items), dtype=np.int64, count=n)
        self.gpus = np.fromiter((it.gpus for it in items), dtype=np.int64, count=n)
        bad = ~np.isfinite(self.mem) | (self.mem < 0)
        if bad.any():
            it = items[int(np.flatnonzero(bad)[0])]
            raise ChromoschedError(f"job {it.key!r}: memory must be a finite number >= 0, got {it.mem!r}")
        if (self.cores < 0).any() or (self.gpus < 0).any():
            it = items[int(np.flatnonzero((self.cores < 0) | (self.gpus < 0))[0])]
            raise ChromoschedError(f"job {it.key!r}: cores and gpus must be >= 0")
        if any(it.value is not None for it in items):
            self.values = np.fromiter((it.value if it.value is not None else it.mem for it in items), dtype=float, count=n)
        else:
            self.values = None

    @classmethod
    def from_arrays(cls, mem, cores=None, gpus=None, values=None) -> "_Arrays":
        self = cls.__new__(cls)
        self.mem = np.asarray(mem, dtype=float)
        n = len(self.mem)
        self.cores = np.zeros(n, dtype=np.int64) if cores is None else np.asarray(cores, dtype=np.int64)
        self.gpus = np.zeros(n, dtype=np.int64) if gpus is None else np.asarray(gpus, dtype=np.int64)
        self.values = None if values is None else np.asarray(values, dtype=float)
        bad = ~np.isfinite(self.mem) | (self.mem < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ChromoschedError(f"job {i}: memory must be a finite number >= 0, got {self.mem[i]!r}")
        if (self.cores < 0).any() or (self.gpus < 0).any():
            raise ChromoschedError("cores and gpus must be >= 0")
        return self

    def items(self) -> list[PackItem]:
        vals = self.values if self.values is not None else [None] * len(self.mem)
        return [PackItem(i, float(m), int(c), int(g), None if v is None else float(v))
                for i, (m, c, g, v) in enumerate(zip(self.mem, self.cores, self.gpus, vals))]

    def fits(self, chosen, limits: Limits) -> bool:
        chosen = np.asarray(chosen, dtype=np.int64)
        return (
            float(self.mem[chosen].sum()) <= limits.mem * (1 + 1e-12)
            and (limits.cores is None or int(self.cores[chosen].sum()) <= limits.cores)
            and (limits.gpus is None or int(self.gpus[chosen].sum()) <= limits.gpus)
            and (limits.max_items is None or len(chosen) <= limits.max_items)
        )


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


def _take_in_order(items: Sequence[PackItem], order: Sequence[int], limits: Limits, memory_sorted: bool) -> list[int]:
    """Walk ``items`` in ``order`` and take each that still fits every limit.

    ``memory_sorted``: ``order`` is by ascending memory, so the first item whose memory does not
    fit ends the walk (nothing later fits either); otherwise such an item is skipped.
    """
    mem, cores, gpus, chosen = 0.0, 0, 0, []
    for i in order:
        it = items[i]
        if limits.max_items is not None and len(chosen) >= limits.max_items:
            break
        if mem + it.mem > limits.mem:
            if memory_sorted:
                break
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


class GreedyPacker:
    """Ascending memory, add while everything fits: the most jobs (the paper's greedy)."""

    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check(items, limits)
        order = sorted(range(len(items)), key=lambda i: (items[i].mem, i))
        return _take_in_order(items, order, limits, memory_sorted=True)


class FirstFitPacker:
    """Walk the items in the given order and take each that still fits (list scheduling)."""

    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check(items, limits)
        return _take_in_order(items, range(len(items)), limits, memory_sorted=False)


class KnapsackPacker:
    """Exact 0-1 knapsack on a memory grid with cores, GPUs and a job count as further constraints.

    Without item values it maximises the memory used (in grid cells: weights rounded up, so a
    selection never overfills); with values it maximises their sum. ``grid`` is the number of
    memory cells the free memory is cut into; ``max_states`` bounds the joint state space (the
    grid is coarsened when cores/GPU/count dimensions would make it larger).
    """

    def __init__(self, grid: int = 1024, grid_1d: int = 2048, max_states: int = 1 << 15):
        if min(grid, grid_1d) < 8 or max_states < 64:
            raise ChromoschedError(f"knapsack grid must be >= 8 cells, got {grid}/{grid_1d}")
        self.grid = int(grid)
        self.grid_1d = int(grid_1d)
        self.max_states = int(max_states)

    # -- public -----------------------------------------------------------------------------
    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check_limits(limits)
        if len(items) == 0:
            return []
        arr = _Arrays(items)
        return self._select(arr, limits, items)

    def select_arrays(self, mem, cores=None, gpus=None, limits: Limits | None = None, values=None) -> list[int]:
        """The same selection from plain arrays (no PackItem objects: cheaper for 10,000 jobs)."""
        if limits is None:
            raise ChromoschedError("select_arrays needs limits")
        _check_limits(limits)
        if len(mem) == 0:
            return []
        arr = _Arrays.from_arrays(mem, cores, gpus, values)
        return self._select(arr, limits, None)

    def _select(self, arr: "_Arrays", limits: Limits, items) -> list[int]:
        ok = arr.mem <= limits.mem
        if limits.cores is not None:
            ok &= arr.cores <= limits.cores
        if limits.gpus is not None:
            ok &= arr.gpus <= limits.gpus
        if limits.max_items is not None and limits.max_items < 1:
            return []
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            return []
        if arr.fits(cand, limits):
            return cand.tolist()
        if arr.values is not None:
            if items is None:
                items = arr.items()
            chosen = self._value_dp(items, cand.tolist(), limits, self._dimensions(arr, cand, limits))
        else:
            # Memory alone first: when that optimum also respects cores/GPUs/count it is optimal
            # for the full problem (a relaxation's optimum that is feasible), and it is cheap.
            mem_only = Limits(limits.mem)
            chosen = self._subset_sum(arr, cand, self._dimensions(arr, cand, mem_only))
            if not arr.fits(chosen, limits):
                chosen = self._subset_sum(arr, cand, self._dimensions(arr, cand, limits))
        chosen = self._fill(arr, cand, chosen, limits)
        chosen = self._swap_up(arr, cand, chosen, limits)
        if not arr.fits(chosen, limits):  # pragma: no cover - guard, never expected
            raise ChromoschedError("knapsack selection exceeded the free resources (internal error)")
        return sorted(chosen)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _fill(arr: "_Arrays", cand, chosen, limits) -> list[int]:
        """Add, in preference order, jobs that still fit at their exact size (grid rounding slack)."""
        chosen = list(chosen)
        mem = float(arr.mem[chosen].sum()) if chosen else 0.0
        cores = int(arr.cores[chosen].sum()) if chosen else 0
        gpus = int(arr.gpus[chosen].sum()) if chosen else 0
        # Only jobs small enough for the memory left can be added: look at those alone.
        room = cand[arr.mem[cand] <= limits.mem - mem]
        taken = set(chosen)
        for i in room.tolist():
            if i in taken:
                continue
            if limits.max_items is not None and len(chosen) >= limits.max_items:
                break
            m = arr.mem[i]
            if mem + m > limits.mem:
                continue
            if limits.cores is not None and cores + arr.cores[i] > limits.cores:
                continue
            if limits.gpus is not None and gpus + arr.gpus[i] > limits.gpus:
                continue
            chosen.append(i)
            taken.add(i)
            mem += m
            cores += int(arr.cores[i])
            gpus += int(arr.gpus[i])
        return chosen

    @staticmethod
    def _swap_up(arr: "_Arrays", cand, chosen, limits, max_rounds: int = 20) -> list[int]:
        """Exchange one chosen job for an unchosen one when that gains memory (or value) at the
        exact sizes: recovers fits that rounding up to the grid lost (40 + 60 in a budget of 100)."""
        chosen = list(chosen)
        if not chosen:
            return chosen
        use_value = arr.values is not None
        gain = arr.values if use_value else arr.mem
        order = cand[np.argsort(arr.mem[cand], kind="stable")]  # by memory, once
        mems_sorted = arr.mem[order]
        for _ in range(max_rounds):
            taken = set(chosen)
            mem = float(arr.mem[chosen].sum())
            cores = int(arr.cores[chosen].sum())
            gpus = int(arr.gpus[chosen].sum())
            slack = limits.mem - mem
            best = (1e-12, None, None)
            for pos, i in enumerate(chosen):
                # Candidates that fit in i's place by memory: those with mem <= mem_i + slack.
                k = int(np.searchsorted(mems_sorted, arr.mem[i] + slack, side="right")) - 1
                while k >= 0:
                    j = int(order[k])
                    if not use_value and mems_sorted[k] - arr.mem[i] <= best[0]:
                        break  # sorted: nothing below gains more
                    if j not in taken:
                        g = gain[j] - gain[i]
                        if (
                            g > best[0]
                            and (limits.cores is None or cores - arr.cores[i] + arr.cores[j] <= limits.cores)
                            and (limits.gpus is None or gpus - arr.gpus[i] + arr.gpus[j] <= limits.gpus)
                        ):
                            best = (float(g), pos, j)
                            if not use_value:
                                break
                    k -= 1
            if best[1] is None:
                break
            chosen[best[1]] = best[2]
        return chosen

    def _dimensions(self, arr: "_Arrays", cand, limits):
        """Which dimensions can bind, with their limits; returns (grid, unit, extra dims)."""
        extra = []  # (name, limit, per-item usage array)
        if limits.cores is not None and int(arr.cores[cand].sum()) > limits.cores:
            extra.append(("cores", int(limits.cores), arr.cores))
        if limits.gpus is not None and int(arr.gpus[cand].sum()) > limits.gpus:
            extra.append(("gpus", int(limits.gpus), arr.gpus))
        if limits.max_items is not None and len(cand) > limits.max_items:
            extra.append(("count", int(limits.max_items), np.ones(len(arr.mem), dtype=np.int64)))
        other = 1
        for _, lim, _ in extra:
            other *= lim + 1
        grid = max(8, min(self.grid if extra else self.grid_1d, self.max_states // other - 1))
        unit = limits.mem / grid if limits.mem > 0 else 1.0
        return grid, unit, extra

    @staticmethod
    def _weights(arr: "_Arrays", cand, grid, unit, extra) -> np.ndarray:
        """Usage matrix (rows = cand; columns = inner dimensions..., memory cells), memory rounded
        UP to the grid (a job that fits exactly may be pushed over: _fill takes it back)."""
        mem = arr.mem[cand]
        w = np.ceil(mem / unit).astype(np.int64)
        w += (w * unit < mem)  # guard the division's rounding
        cols = [u[cand].astype(np.int64) for _, _, u in extra] + [w]
        return np.stack(cols, axis=1)

    def _subset_sum(self, arr: "_Arrays", cand, dims) -> list[int]:
        """Bitset subset-sum: bit s of ``reach`` is set when state s (a flattened vector of
        cores/GPUs/count used and memory cells used, memory outermost) is reachable."""
        grid, unit, extra = dims
        usage = self._weights(arr, cand, grid, unit, extra)
        lims = np.array([lim for _, lim, _ in extra] + [grid], dtype=np.int64)
        n_inner = len(lims) - 1
        strides = np.ones(len(lims), dtype=np.int64)
        for d in range(1, len(lims)):
            strides[d] = strides[d - 1] * (lims[d - 1] + 1)
        inner = int(strides[-1])
        total_bits = inner * (grid + 1)

        keep = np.all(usage <= lims, axis=1)
        pos_all = np.flatnonzero(keep)
        usage = usage[keep]
        # Interchangeable jobs (same usage vector) become power-of-two bundles, earlier jobs first;
        # a class never needs more copies than fit.
        key = usage @ strides
        order = np.argsort(key, kind="stable")
        skey = key[order]
        starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
        ends = np.r_[starts[1:], len(skey)]
        bundles: list[tuple[int, tuple, list[int]]] = []  # (shift, inner usage, positions in cand)
        for st, en in zip(starts.tolist(), ends.tolist()):
            members = pos_all[order[st:en]].tolist()
            u = usage[order[st]]
            cap = en - st
            for d in range(len(lims)):
                if u[d] > 0:
                    cap = min(cap, int(lims[d] // u[d]))
            shift1 = int(key[order[st]])
            uin = tuple(int(x) for x in u[:n_inner])
            size, start = 1, 0
            while start < cap:
                take = members[start : min(start + size, cap)]
                k = len(take)
                bundles.append((shift1 * k, tuple(x * k for x in uin), take))
                start += k
                size *= 2
        # Backtracking drops a bundle whenever the bundles before it reach the same state, so the
        # preferred (earlier) jobs go first.
        bundles.sort(key=lambda b: b[2][0])

        full = (1 << total_bits) - 1
        mask_cache: dict[tuple[int, int], int] = {}
        strides_l = strides.tolist()
        lims_l = lims.tolist()

        def inner_mask(d: int, u: int) -> int:
            """States whose coordinate in inner dimension d leaves room for u more."""
            m = mask_cache.get((d, u))
            if m is None:
                stride, lim = strides_l[d], lims_l[d]
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
        return [int(cand[p]) for p in chosen]

    def _value_dp(self, items, cand, limits, dims) -> list[int]:
        grid, unit, extra = dims
        usage = [tuple(int(v) for v in row) for row in self._weights(_Arrays(items), np.asarray(cand, dtype=np.int64), grid, unit, extra)]
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
