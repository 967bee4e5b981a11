"""Choose which ready jobs to start now: a greedy packer and an exact 0-1 knapsack on a memory grid.

Both take plain :class:`PackItem` records (or arrays) and resource limits and return the indices of
the chosen items. Memory is always constrained; cores, GPUs, a job count and any other named numeric
resource (``Limits.extra``: ``gpu_mem_mb``, ``disk_mb``...) are constrained when a limit is given. A
resource an item does not declare counts as 0; one without a limit is not constrained. Nothing ever
overfills: the knapsack rounds every memory weight UP to a grid cell of ``free_mem / grid`` (and a
large or fractional resource UP to coarse cells of its limit), so the cells it fits can never sum to
more than what is free; the exact sizes are checked again at the end.

``KnapsackPacker`` solves the paper's problem (maximise the memory in use) as a subset-sum over
a joint state space (memory cells x the other resources that can bind x job count), held as one
Python integer bitset: one shift-and-or per item. Items are taken in preference order and the
search stops as soon as the fullest reachable memory row is reached (no later item can improve it),
so a selection over 10,000 ready jobs usually touches a few dozen of them. When that does not
happen, items that share a usage vector are merged into power-of-two bundles (exact for bounded
knapsacks). Ties between equally full selections are broken towards items that come first in the
input, so callers express a preference (e.g. the longest remaining path first) by the order of the
items. With explicit ``value`` per item it solves a value-maximising knapsack by dynamic programming
over the same state space (numpy), for small sets such as one simulation step.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ChromoschedError

#: A resource limit this large (Snakemake's sys.maxsize for "not given") is no constraint.
UNLIMITED = 2**62
#: Exact (integer) state dimensions up to this limit; larger or fractional resources get coarse cells.
_EXACT_LIMIT = 256
_COARSE_CELLS = 32
#: Items tried one by one (with an early stop) before the bundled subset-sum.
_EAGER_ITEMS = 256
#: Distinct usage vectors the bundled subset-sum handles before it coarsens the memory grid.
_MAX_CLASSES = 1024
#: Candidates the bundled subset-sum considers (the most preferred), when the eager pass did not fill.
_MAX_CANDIDATES = 512


@dataclass(frozen=True)
class PackItem:
    """One candidate job: its memory (MB or any unit), cores, GPUs, other resources and an optional value."""

    key: Hashable
    mem: float
    cores: int = 0
    gpus: int = 0
    value: float | None = None
    extra: Mapping[str, float] | None = None  # other resources by name (gpu_mem_mb...); missing = 0


@dataclass(frozen=True)
class Limits:
    """Free resources for one selection; ``None`` (or a missing ``extra`` name) means unconstrained."""

    mem: float
    cores: int | None = None
    gpus: int | None = None
    max_items: int | None = None
    extra: Mapping[str, float] | None = None

    def constrained(self) -> list[tuple[str, float]]:
        """(name, limit) of every constrained resource other than memory and the job count."""
        out = []
        if self.cores is not None and self.cores < UNLIMITED:
            out.append(("cores", float(self.cores)))
        if self.gpus is not None and self.gpus < UNLIMITED:
            out.append(("gpus", float(self.gpus)))
        for name, lim in (self.extra or {}).items():
            if name in ("cores", "gpus"):
                raise ChromoschedError(f"resource name {name!r} is reserved in Limits.extra (use the field)")
            if lim is None or lim >= UNLIMITED:
                continue
            if not math.isfinite(float(lim)):
                raise ChromoschedError(f"limit of resource {name!r} must be a finite number, got {lim!r}")
            out.append((str(name), float(lim)))
        return out


def _check_limits(limits: Limits) -> None:
    if not math.isfinite(limits.mem) or limits.mem < 0:
        raise ChromoschedError(f"free memory must be a finite number >= 0, got {limits.mem!r}")


class _Arrays:
    """Memory, usage of every constrained resource (one column each) and values, validated once."""

    def __init__(self, mem, use, names, lims, values, keys=None):
        self.mem = mem
        self.use = use  # (n, k) float
        self.names = names
        self.lims = lims  # (k,) float
        self.values = values
        n = len(mem)
        bad = ~np.isfinite(mem) | (mem < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            key = keys[i] if keys is not None else i
            raise ChromoschedError(f"job {key!r}: memory must be a finite number >= 0, got {mem[i]!r}")
        if use.size and (~np.isfinite(use) | (use < 0)).any():
            i, d = (int(v[0]) for v in np.nonzero(~np.isfinite(use) | (use < 0)))
            key = keys[i] if keys is not None else i
            raise ChromoschedError(f"job {key!r}: {names[d]} must be a finite number >= 0, got {use[i, d]!r}")
        assert use.shape == (n, len(names))

    @classmethod
    def from_items(cls, items: Sequence[PackItem], limits: Limits) -> _Arrays:
        for it in items:  # unconstrained cores/GPUs still must not be negative
            if it.cores < 0 or it.gpus < 0:
                raise ChromoschedError(f"job {it.key!r}: cores and gpus must be >= 0")
        n = len(items)
        extra = {
            name: [float((it.extra or {}).get(name, 0) or 0) for it in items]
            for name, _ in limits.constrained()
            if name not in ("cores", "gpus")
        }
        values = None
        if any(it.value is not None for it in items):
            values = np.fromiter((it.value if it.value is not None else it.mem for it in items), dtype=float, count=n)
        return cls.from_arrays(
            np.fromiter((it.mem for it in items), dtype=float, count=n),
            [it.cores for it in items],
            [it.gpus for it in items],
            extra,
            limits,
            values,
            keys=[it.key for it in items],
        )

    @classmethod
    def from_arrays(cls, mem, cores, gpus, extra, limits: Limits, values, keys=None) -> _Arrays:
        mem = np.asarray(mem, dtype=float)
        n = len(mem)
        constrained = limits.constrained()
        names = [c[0] for c in constrained]
        use = np.zeros((n, len(names)))
        given = {"cores": cores, "gpus": gpus, **(extra or {})}
        for d, name in enumerate(names):
            if given.get(name) is not None:
                use[:, d] = np.asarray(given[name], dtype=float)
        values = None if values is None else np.asarray(values, dtype=float)
        return cls(mem, use, names, np.array([c[1] for c in constrained], dtype=float), values, keys)

    def fits(self, chosen, limits: Limits) -> bool:
        chosen = np.asarray(chosen, dtype=np.int64)
        return (
            float(self.mem[chosen].sum()) <= limits.mem * (1 + 1e-12)
            and bool(np.all(self.use[chosen].sum(axis=0) <= self.lims * (1 + 1e-12) + 1e-9))
            and (limits.max_items is None or len(chosen) <= limits.max_items)
        )

    def alone_ok(self, limits: Limits) -> np.ndarray:
        ok = self.mem <= limits.mem
        if len(self.lims):
            ok &= np.all(self.use <= self.lims + 1e-9, axis=1)
        return ok


def _row_groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows (sorted) and each row's index among them: ``np.unique(rows, axis=0,
    return_inverse=True)`` without its slow sort of rows as byte strings."""
    order = np.lexsort(rows.T[::-1])
    ranked = rows[order]
    new = np.r_[True, np.any(ranked[1:] != ranked[:-1], axis=1)]
    group_of = np.empty(len(rows), dtype=np.int64)
    group_of[order] = np.cumsum(new) - 1
    return ranked[new], group_of


def selection_fits(items: Sequence[PackItem], chosen: Sequence[int], limits: Limits) -> bool:
    """True when the chosen items respect every limit (used by tests and as a final guard)."""
    return len(set(chosen)) == len(chosen) and _Arrays.from_items(items, limits).fits(list(chosen), limits)


def _take_in_order(arr: _Arrays, order: Sequence[int], limits: Limits, memory_sorted: bool) -> list[int]:
    """Walk the items in ``order`` and take each that still fits every limit.

    ``memory_sorted``: ``order`` is by ascending memory, so the first item whose memory does not
    fit ends the walk (nothing later fits either); otherwise such an item is skipped.
    """
    mem, chosen = 0.0, []
    left = arr.lims.copy() + 1e-9
    mems = arr.mem.tolist()
    use = arr.use
    check = len(left) > 0
    for i in order:
        if limits.max_items is not None and len(chosen) >= limits.max_items:
            break
        if mem + mems[i] > limits.mem:
            if memory_sorted:
                break
            continue
        if check:
            if np.any(use[i] > left):
                continue
            left -= use[i]
        chosen.append(int(i))
        mem += mems[i]
    return chosen


class GreedyPacker:
    """Ascending memory, add while everything fits: the most jobs (the paper's greedy)."""

    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check_limits(limits)
        arr = _Arrays.from_items(items, limits)
        order = np.argsort(arr.mem, kind="stable").tolist()
        return _take_in_order(arr, order, limits, memory_sorted=True)

    def select_arrays(
        self, mem, cores=None, gpus=None, limits: Limits | None = None, values=None, extra=None
    ) -> list[int]:
        if limits is None:
            raise ChromoschedError("select_arrays needs limits")
        _check_limits(limits)
        arr = _Arrays.from_arrays(mem, cores, gpus, extra, limits, values)
        order = np.argsort(arr.mem, kind="stable").tolist()
        return _take_in_order(arr, order, limits, memory_sorted=True)


class FirstFitPacker:
    """Walk the items in the given order and take each that still fits (list scheduling)."""

    def select(self, items: Sequence[PackItem], limits: Limits) -> list[int]:
        _check_limits(limits)
        arr = _Arrays.from_items(items, limits)
        return _take_in_order(arr, range(len(items)), limits, memory_sorted=False)

    def select_arrays(
        self, mem, cores=None, gpus=None, limits: Limits | None = None, values=None, extra=None
    ) -> list[int]:
        if limits is None:
            raise ChromoschedError("select_arrays needs limits")
        _check_limits(limits)
        arr = _Arrays.from_arrays(mem, cores, gpus, extra, limits, values)
        return _take_in_order(arr, range(len(arr.mem)), limits, memory_sorted=False)


class KnapsackPacker:
    """Exact 0-1 knapsack on a memory grid with cores, GPUs, other resources and a job count as
    further constraints.

    Without item values it maximises the memory used (in grid cells: weights rounded up, so a
    selection never overfills); with values it maximises their sum. ``grid`` is the number of
    memory cells the free memory is cut into; ``max_states`` bounds the joint state space (the
    grid is coarsened when the other dimensions would make it larger).
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
        return self._select(_Arrays.from_items(items, limits), limits)

    def select_arrays(
        self, mem, cores=None, gpus=None, limits: Limits | None = None, values=None, extra=None
    ) -> list[int]:
        """The same selection from plain arrays (no PackItem objects: cheaper for 10,000 jobs).
        ``extra``: name -> per-item usage array for resources named in ``limits.extra``."""
        if limits is None:
            raise ChromoschedError("select_arrays needs limits")
        _check_limits(limits)
        if len(mem) == 0:
            return []
        return self._select(_Arrays.from_arrays(mem, cores, gpus, extra, limits, values), limits)

    def _select(self, arr: _Arrays, limits: Limits) -> list[int]:
        if limits.max_items is not None and limits.max_items < 1:
            return []
        cand = np.flatnonzero(arr.alone_ok(limits))
        if len(cand) == 0:
            return []
        if arr.fits(cand, limits):
            return cand.tolist()
        if self._at_most_one(arr, cand, limits):
            # One more job at most (e.g. one core free): the biggest (most valuable) that fits, the
            # earliest on ties.
            gain = arr.mem if arr.values is None else arr.values
            return [int(cand[int(np.argmax(gain[cand]))])]
        if arr.values is not None:
            if self._at_most_two(arr, cand, limits):
                # A few cores free: the best job or pair, exactly and without the DP.
                pair = self._best_pair(arr, cand, limits)
                if pair is not None:
                    return sorted(pair)
            chosen = self._value_dp(arr, cand, self._dimensions(arr, cand, limits))
        else:
            # Memory alone first: when that optimum also respects the other limits it is optimal
            # for the full problem (a relaxation's optimum that is feasible), and it is cheap.
            chosen = self._subset_sum(arr, cand, self._dimensions(arr, cand, Limits(limits.mem)))
            if not arr.fits(chosen, limits):
                chosen = self._subset_sum(arr, cand, self._dimensions(arr, cand, limits))
        chosen = self._fill(arr, cand, chosen, limits)
        chosen = self._swap_up(arr, cand, chosen, limits)
        if not arr.fits(chosen, limits):  # pragma: no cover - guard, never expected
            raise ChromoschedError("knapsack selection exceeded the free resources (internal error)")
        return sorted(chosen)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _at_most_one(arr: _Arrays, cand, limits) -> bool:
        """True when no two candidates fit together in some resource (or the job count is 1)."""
        if limits.max_items is not None and limits.max_items <= 1:
            return True
        if len(arr.lims) == 0:
            return False
        use = arr.use[cand]
        smallest = np.partition(use, 1, axis=0)[:2] if len(cand) >= 2 else use
        return bool(np.any(smallest.sum(axis=0) > arr.lims + 1e-9))

    @staticmethod
    def _at_most_two(arr: _Arrays, cand, limits) -> bool:
        """True when no three candidates fit together (the three smallest of some resource, memory
        included, or the job count, already exceed what is free)."""
        if (limits.max_items is not None and limits.max_items <= 2) or len(cand) < 3:
            return True
        if float(np.partition(arr.mem[cand], 2)[:3].sum()) > limits.mem * (1 + 1e-12):
            return True
        if len(arr.lims) == 0:
            return False
        three = np.partition(arr.use[cand], 2, axis=0)[:3].sum(axis=0)
        return bool(np.any(three > arr.lims * (1 + 1e-12) + 1e-9))

    @staticmethod
    def _best_pair(arr: _Arrays, cand, limits) -> list[int] | None:
        """The most valuable packing of at most two candidates at their exact sizes (so at least
        as good as the DP on its rounded-up grid): the best one alone or the best pair. Ties: the
        single job, then the fuller pair (as the DP), then the pair of earliest jobs. For each usage vector of the other resources
        the jobs are sorted by memory once, and each job's best partner is a prefix maximum up to
        the memory it leaves (vectorised, no DP). None (use the DP) when the other resources take
        more than 16 usage vectors or rounding makes the found pair not fit."""
        v = arr.values[cand]
        if np.isnan(v).any():
            return None
        n = len(cand)
        m = arr.mem[cand]
        by_value = np.lexsort((np.arange(n), -m, -v))  # value down, then memory down, then input order
        rank = np.empty(n, dtype=np.int64)
        rank[by_value] = np.arange(n)
        if arr.use.shape[1]:
            groups, group_of = _row_groups(arr.use[cand])
            if len(groups) > 16:
                return None
        else:
            groups, group_of = np.zeros((1, 0)), np.zeros(n, dtype=np.int64)
        by_mem = np.argsort(m, kind="stable")
        members = [by_mem[group_of[by_mem] == g] for g in range(len(groups))]
        room = limits.mem * (1 + 1e-12)
        lims = arr.lims * (1 + 1e-12) + 1e-9
        found = []  # (pair value, memory, earlier, later) as positions in cand
        for a, first in enumerate(members):
            best_before = np.minimum.accumulate(rank[first])  # best job among the k smallest of a
            for b in range(a, len(groups)):
                if np.any(groups[a] + groups[b] > lims):
                    continue
                second = members[b]
                end = np.searchsorted(m[first], room - m[second], side="right")
                if b == a:
                    end = np.minimum(end, np.arange(len(second)))  # smaller partners only: each pair once
                ok = end > 0
                if not ok.any():
                    continue
                j = second[ok]
                i = by_value[best_before[end[ok] - 1]]
                found.append((v[i] + v[j], m[i] + m[j], np.minimum(i, j), np.maximum(i, j)))
        single = int(by_value[0])
        if not found:
            return [int(cand[single])]
        val, mem, lo, hi = (np.concatenate(x) for x in zip(*found))
        k = np.lexsort((hi, lo, -mem, -val))[0]
        if not val[k] > v[single]:
            return [int(cand[single])]
        pair = [int(cand[lo[k]]), int(cand[hi[k]])]
        return pair if arr.fits(pair, limits) else None

    @staticmethod
    def _fill(arr: _Arrays, cand, chosen, limits) -> list[int]:
        """Add, in preference order, jobs that still fit at their exact size (grid rounding slack)."""
        chosen = list(chosen)
        if limits.max_items is not None and len(chosen) >= limits.max_items:
            return chosen
        mem = float(arr.mem[chosen].sum()) if chosen else 0.0
        left = arr.lims + 1e-9 - (arr.use[chosen].sum(axis=0) if chosen else 0.0)
        # Only jobs that fit what is left on their own can be added: look at those alone.
        ok = arr.mem[cand] <= limits.mem - mem
        if len(left):
            ok &= np.all(arr.use[cand] <= left, axis=1)
        room = cand[ok]
        if len(room) == 0:
            return chosen
        taken = set(chosen)
        mems = arr.mem[room].tolist()
        uses = arr.use[room].tolist()
        left = left.tolist()
        for i, m, u in zip(room.tolist(), mems, uses):
            if i in taken:
                continue
            if limits.max_items is not None and len(chosen) >= limits.max_items:
                break
            if mem + m > limits.mem or any(x > y for x, y in zip(u, left)):
                continue
            chosen.append(i)
            taken.add(i)
            mem += m
            left = [y - x for x, y in zip(u, left)]
        return chosen

    @staticmethod
    def _swap_up(arr: _Arrays, cand, chosen, limits, max_rounds: int = 20) -> list[int]:
        """Exchange one chosen job for an unchosen one when that gains memory (or value) at the
        exact sizes: recovers fits that rounding up to the grid lost (40 + 60 in a budget of 100)."""
        chosen = list(chosen)
        if not chosen:
            return chosen
        if arr.values is not None:
            return KnapsackPacker._swap_up_value(arr, cand, chosen, limits, max_rounds)
        mem_c = arr.mem[cand]
        for _ in range(max_rounds):
            mem_in = arr.mem[chosen]
            slack = limits.mem - float(mem_in.sum())
            # Only jobs a little bigger than a chosen one can replace it: (mem_i, mem_i + slack].
            below = np.sort(mem_in)
            k = np.searchsorted(below, mem_c, side="left") - 1  # the largest chosen job smaller than each
            step = mem_c - below[np.maximum(k, 0)]
            near = cand[(k >= 0) & (step <= slack)]
            if len(near) == 0:
                break
            near = near[~np.isin(near, chosen)]
            diff = arr.mem[near][None, :] - mem_in[:, None]  # (chosen, near)
            ok = (diff > 1e-12) & (diff <= slack)
            if arr.use.shape[1] and ok.any():
                used = arr.use[chosen].sum(axis=0)
                after = used[None, None, :] - arr.use[chosen][:, None, :] + arr.use[near][None, :, :]
                ok &= np.all(after <= arr.lims + 1e-9, axis=2)
            if not ok.any():
                break
            gain = np.where(ok, diff, -np.inf)
            pos, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
            chosen[int(pos)] = int(near[j])
        return chosen

    @staticmethod
    def _swap_up_value(arr: _Arrays, cand, chosen, limits, max_rounds: int) -> list[int]:
        """_swap_up for value knapsacks (small sets): the best single exchange by value."""
        gain = arr.values
        order = cand[np.argsort(arr.mem[cand], kind="stable")]  # by memory, once
        mems_sorted = arr.mem[order]
        gain_sorted = gain[order]
        has_other = arr.use.shape[1] > 0
        use_sorted = arr.use[order] if has_other else None
        for _ in range(max_rounds):
            taken = np.isin(order, chosen)
            used = arr.use[chosen].sum(axis=0)
            slack = limits.mem - float(arr.mem[chosen].sum())
            best = (1e-12, None, None)
            for pos, i in enumerate(chosen):
                # Unchosen jobs no bigger than i's memory plus the slack, better by more than the
                # best exchange so far; on ties the biggest (the last in memory order) wins.
                k_end = int(np.searchsorted(mems_sorted, arr.mem[i] + slack, side="right"))
                if k_end == 0:
                    continue
                g = gain_sorted[:k_end] - gain[i]
                ok = ~taken[:k_end] & (g > best[0])
                if has_other:
                    ok &= np.all(used - arr.use[i] + use_sorted[:k_end] <= arr.lims + 1e-9, axis=1)
                if not ok.any():
                    continue
                k = k_end - 1 - int(np.argmax(np.where(ok, g, -np.inf)[::-1]))
                best = (float(g[k]), pos, int(order[k]))
            if best[1] is None:
                break
            chosen[best[1]] = best[2]
        return chosen

    def _dimensions(self, arr: _Arrays, cand, limits):
        """Which dimensions can bind, as (grid, unit, extra dims); an extra dim is (name, limit in
        its cells, per-item usage in its cells, rounded up)."""
        extra = []
        lims = dict(limits.constrained())
        for d, name in enumerate(arr.names):
            if name not in lims:
                continue
            col = arr.use[:, d]
            if float(col[cand].sum()) <= lims[name] * (1 + 1e-12) + 1e-9:
                continue  # cannot bind
            lim = lims[name]
            if lim <= _EXACT_LIMIT and np.all(col[cand] == np.round(col[cand])):
                extra.append((name, int(math.floor(lim + 1e-9)), np.round(col).astype(np.int64)))
            else:
                unit = lim / _COARSE_CELLS if lim > 0 else 1.0
                cells = np.ceil(col / unit - 1e-12).astype(np.int64)
                cells += cells * unit < col  # guard the division's rounding
                extra.append((name, _COARSE_CELLS, cells))
        if limits.max_items is not None and len(cand) > limits.max_items:
            extra.append(("count", int(limits.max_items), np.ones(len(arr.mem), dtype=np.int64)))
        other = 1
        for _, lim, _ in extra:
            other *= lim + 1
        grid = max(8, min(self.grid if extra else self.grid_1d, self.max_states // other - 1))
        unit = limits.mem / grid if limits.mem > 0 else 1.0
        return grid, unit, extra

    @staticmethod
    def _weights(arr: _Arrays, cand, grid, unit, extra) -> np.ndarray:
        """Usage matrix (rows = cand; columns = inner dimensions..., memory cells), memory rounded
        UP to the grid (a job that fits exactly may be pushed over: _fill takes it back)."""
        mem = arr.mem[cand]
        w = np.ceil(mem / unit).astype(np.int64)
        w += w * unit < mem  # guard the division's rounding
        cols = [u[cand] for _, _, u in extra] + [w]
        return np.stack(cols, axis=1)

    def _subset_sum(self, arr: _Arrays, cand, dims) -> list[int]:
        """Bitset subset-sum: bit s of ``reach`` is set when state s (a flattened vector of the
        other resources used and memory cells used, memory outermost) is reachable."""
        grid, unit, extra = dims
        lims = np.array([lim for _, lim, _ in extra] + [grid], dtype=np.int64)
        n_inner = len(lims) - 1
        strides = np.ones(len(lims), dtype=np.int64)
        for d in range(1, len(lims)):
            strides[d] = strides[d - 1] * (lims[d - 1] + 1)
        inner = int(strides[-1])
        total_bits = inner * (grid + 1)
        full = (1 << total_bits) - 1
        # The fullest memory row any selection could reach: stop once it is reached.
        if float(arr.mem[cand].sum()) >= grid * unit:
            top_row = grid  # weights are rounded up: together they cover every cell
        else:
            top_row = min(grid, int(self._weights(arr, cand, grid, unit, extra)[:, -1].sum()))
        top_bit = top_row * inner
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

        def run(steps):
            """Shift-and-or each (shift, inner usage) in order; stops at the top row.
            Returns the reach after each step (history[0] = nothing taken)."""
            reach = 1
            history = [reach]
            for shift, uin in steps:
                if n_inner == 0:
                    # Memory is the outermost dimension: overflow lands above total_bits, cut off.
                    reach = (reach | (reach << shift)) & full
                else:
                    src = reach
                    for d in range(n_inner):
                        if uin[d]:
                            src &= inner_mask(d, uin[d])
                    reach = (reach | (src << shift)) & full
                history.append(reach)
                if reach >> top_bit:
                    break
            return history

        def best_state(reach: int) -> int:
            state = (reach.bit_length() - 1) // inner * inner  # highest memory row reached
            row = (reach >> state) & ((1 << inner) - 1)
            return state + (row & -row).bit_length() - 1  # lowest inner state in that row

        def backtrack(history, shifts, members) -> list[int]:
            state = best_state(history[-1])
            chosen: list[int] = []
            for b in range(len(history) - 2, -1, -1):
                if (history[b] >> state) & 1:
                    continue  # reachable without this step: the earlier (preferred) items win
                state -= shifts[b]
                chosen.extend(members[b])
            return [int(cand[p]) for p in chosen]

        if not len(cand):
            return []

        # Eager pass: items one by one in preference order; usually the top row comes quickly.
        head = cand[:_EAGER_ITEMS]
        usage = self._weights(arr, head, grid, unit, extra)
        fit = np.flatnonzero(np.all(usage <= lims, axis=1))
        keys_l = (usage[fit] @ strides).tolist()
        inner_use = usage[fit, :n_inner].tolist()
        history = run(zip(keys_l, inner_use))
        if history[-1] >> top_bit or len(head) == len(cand):
            taken = len(history) - 1
            return backtrack(history, keys_l[:taken], [[int(p)] for p in fit[:taken]])

        # Thousands of candidates: the exact search runs over the 512 most preferred ones (then
        # _fill and _swap_up look at all of them at their exact sizes).
        cand = cand[:_MAX_CANDIDATES]
        usage = self._weights(arr, cand, grid, unit, extra)
        keep = np.all(usage <= lims, axis=1)
        pos_all = np.flatnonzero(keep)
        usage = usage[keep]
        key = usage @ strides
        # Interchangeable jobs (same usage vector) become power-of-two bundles, earlier jobs first;
        # a class never needs more copies than fit.
        order = np.argsort(key, kind="stable")
        skey = key[order]
        starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
        if len(starts) > _MAX_CLASSES and grid >= 256:
            # Thousands of distinct jobs: half as many memory cells (each rounded up, so still
            # never overfilled; _fill and _swap_up take back what rounding loses).
            return self._subset_sum(arr, cand, (grid // 2, unit * grid / (grid // 2), extra))
        ends = np.r_[starts[1:], len(skey)]
        bundles: list[tuple[int, list[int], list[int]]] = []  # (shift, inner usage, positions in cand)
        for st, en in zip(starts.tolist(), ends.tolist()):
            members = pos_all[order[st:en]].tolist()
            u = usage[order[st]]
            cap = en - st
            for d in range(len(lims)):
                if u[d] > 0:
                    cap = min(cap, int(lims[d] // u[d]))
            shift1 = int(key[order[st]])
            uin = [int(x) for x in u[:n_inner]]
            size, start = 1, 0
            while start < cap:
                take = members[start : min(start + size, cap)]
                k = len(take)
                bundles.append((shift1 * k, [x * k for x in uin], take))
                start += k
                size *= 2
        # Backtracking drops a bundle whenever the bundles before it reach the same state, so the
        # preferred (earlier) jobs go first.
        bundles.sort(key=lambda b: b[2][0])
        history = run((b[0], b[1]) for b in bundles)
        taken = len(history) - 1
        return backtrack(history, [b[0] for b in bundles[:taken]], [b[2] for b in bundles[:taken]])

    @staticmethod
    def _undominated(weights: np.ndarray, values: np.ndarray, lims: tuple[int, ...]) -> np.ndarray:
        """Positions (ascending) worth giving the value DP. Exact: the best value within any
        capacity (usage at most a DP state) is the same with or without the dropped jobs.

        Jobs are ordered by value (down), then usage (lexicographically, up), then position; a
        job is dropped when enough jobs before it use at most as much in every cell dimension:

        - of its own class (same usage in every dimension): at least as many as fit together
          (``min(lims // usage)``);
        - of any class: at least as many as the largest number of jobs any packing can hold
          (``most``: per dimension, how many of the smallest usages fit).

        Either way, a packing that holds a dropped job leaves one of those jobs out, and exchanging
        the two keeps it feasible and loses no value; each exchange moves to an earlier job, so
        exchanges end with a packing of kept jobs that is worth at least as much."""
        n, dims = weights.shape
        lims_a = np.asarray(lims, dtype=np.int64)
        order = np.lexsort((np.arange(n), *[weights[:, d] for d in range(dims - 1, -1, -1)], -values))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        # Own class: one integer key per usage vector (the DP's flattened state index).
        strides = np.cumprod(np.r_[1, lims_a[:-1] + 1])
        cls = weights @ strides
        by_cls = np.lexsort((rank, cls))
        sorted_cls = cls[by_cls]
        first = np.r_[0, np.flatnonzero(sorted_cls[1:] != sorted_cls[:-1]) + 1]
        within = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
        cap = np.where(weights > 0, lims_a[None, :] // np.maximum(weights, 1), n).min(axis=1)
        keep = np.zeros(n, dtype=bool)
        keep[by_cls[within < cap[by_cls]]] = True
        most = n
        for d in range(dims):
            most = min(most, int(np.searchsorted(np.cumsum(np.sort(weights[:, d])), lims_a[d], side="right")))
        if most >= n - 1:
            return np.flatnonzero(keep)
        # Any class: count, for each job, the jobs in earlier blocks of the order (blocks of
        # ``width``; jobs in its own block are not counted, so some dominated jobs may stay) that
        # use at most its memory cells, among the classes whose other usage is at most its own.
        mem = weights[:, -1]
        inner = weights[:, :-1]
        _, first_of, group_of = np.unique(inner @ strides[:-1], return_index=True, return_inverse=True)
        if len(first_of) > 16:
            return np.flatnonzero(keep)
        groups = inner[first_of]
        group_of = group_of.ravel()
        width = max(64, n // 32)
        block = rank // width
        n_blocks = int(block.max()) + 1
        cells = int(lims_a[-1]) + 1
        mem_c = np.minimum(mem, cells - 1)
        for g, usage in enumerate(groups):
            pool = np.all(inner <= usage, axis=1) if dims > 1 else np.ones(n, dtype=bool)
            hist = np.bincount(block[pool] * cells + mem_c[pool], minlength=n_blocks * cells)
            count = hist.reshape(n_blocks, cells).cumsum(axis=1).cumsum(axis=0)
            members = np.flatnonzero(group_of == g)
            b = block[members]
            before = np.where(b > 0, count[np.maximum(b - 1, 0), mem_c[members]], 0)
            keep[members[before >= most]] = False
        return np.flatnonzero(keep)

    def _value_dp(self, arr: _Arrays, cand, dims) -> list[int]:
        grid, unit, extra = dims
        weights = self._weights(arr, cand, grid, unit, extra)
        lims = tuple(lim for _, lim, _ in extra) + (grid,)
        kept = self._undominated(weights, arr.values[cand], lims)[:_MAX_CANDIDATES]
        # As in the subset-sum: with thousands of candidates the exact DP runs over the 512 most
        # preferred undominated ones; _fill and _swap_up then look at all at their exact sizes.
        cand, weights = cand[kept], weights[kept]
        usage = [tuple(int(v) for v in row) for row in weights]
        shape = tuple(lim + 1 for lim in lims)  # last axis = memory cells
        dp = np.full(shape, -np.inf)
        dp[(0,) * len(shape)] = 0.0
        keep = []
        values = arr.values[cand].tolist()
        cand = cand.tolist()
        for pos in range(len(cand)):
            u = usage[pos]
            if any(x > s - 1 for x, s in zip(u, shape)):
                keep.append(None)
                continue
            src = tuple(slice(0, s - x) for x, s in zip(u, shape))
            dst = tuple(slice(x, s) for x, s in zip(u, shape))
            cand_val = dp[src] + values[pos]  # a copy: dst may overlap src
            take = cand_val > dp[dst]
            np.copyto(dp[dst], cand_val, where=take)
            keep.append(take)  # indexed by state - usage
        # The most valuable state; among equally valuable ones (sums of equal values differ in
        # their last bits) the fullest memory row, as the memory knapsack would choose.
        best = float(dp.max())
        ties = np.flatnonzero(dp.ravel() >= best - 1e-9 * abs(best))
        state = np.unravel_index(int(ties[np.argmax(np.unravel_index(ties, shape)[-1])]), shape)
        chosen = []
        for pos in range(len(cand) - 1, -1, -1):
            k = keep[pos]
            if k is None:
                continue
            before = tuple(s - x for s, x in zip(state, usage[pos]))
            if min(before) >= 0 and k[before]:
                chosen.append(cand[pos])
                state = before
        return chosen
