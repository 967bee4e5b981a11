"""Exact peak memory of an order of tasks on K workers, by an event sweep.

Two execution models:

* ``list`` (the paper's stated model, default): the first K tasks of the order start at t=0; each
  later task starts, in order, on the first worker to become free. A task occupies the half-open
  interval [start, start + duration), so a task ending at t and one starting at t never overlap.
* ``waves``: positions are cut into blocks of K; a block's tasks start together and the next block
  starts when the whole block has finished. Its peak is the largest block's summed memory.

Exactness: memory and duration are put on an integer grid of 1e-6 of their unit (bp for lengths in
Mbp, microseconds for seconds), so ties between finishing times (and equal peaks) are decided
exactly, not by floating-point luck. ``PeakEvaluator`` is the fast inner loop of the searches; it
counts evaluations so searches can be compared at equal budgets.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ChromoschedError
from .task_model import TaskSet

MODELS = ("list", "waves")
GRID = 1_000_000  # integer ticks per unit: exact for bp-valued Mbp lengths


def _ticks(values: Sequence[float]) -> list[int]:
    return [int(round(v * GRID)) for v in values]


def _check(n: int, order: Sequence[int], workers: int) -> None:
    if workers < 1:
        raise ChromoschedError(f"workers must be at least 1, got {workers}")
    if len(order) != n or sorted(order) != list(range(n)):
        raise ChromoschedError(f"order must be a permutation of the {n} tasks, got {list(order)}")


@dataclass(frozen=True)
class Schedule:
    """A simulated order: start/end per task (indexed like the tasks), worker per task, peak."""

    start: tuple[float, ...]
    end: tuple[float, ...]
    worker: tuple[int, ...]
    peak: float
    makespan: float


def list_schedule(
    memories: Sequence[float], durations: Sequence[float], order: Sequence[int], workers: int
) -> Schedule:
    """Simulate ``order`` under list scheduling and return start times, workers and the exact peak.

    The peak comes from a sweep over the start/end events (ends before starts at equal times).
    """
    return _simulate(memories, durations, order, workers, _list_starts)


def waves_schedule(
    memories: Sequence[float], durations: Sequence[float], order: Sequence[int], workers: int
) -> Schedule:
    """Simulate ``order`` under the waves model (blocks of K start together)."""
    return _simulate(memories, durations, order, workers, _waves_starts)


def _simulate(
    memories: Sequence[float],
    durations: Sequence[float],
    order: Sequence[int],
    workers: int,
    place: Callable[[list[int], Sequence[int], int], tuple[list[int], list[int]]],
) -> Schedule:
    """Check the order, let ``place`` give each task its start (ticks) and worker, sweep the peak."""
    n = len(memories)
    _check(n, order, workers)
    dur = _ticks(durations)
    start, worker = place(dur, order, workers)
    end = [start[i] + dur[i] for i in range(n)]
    peak = _sweep_peak(_ticks(memories), start, end)
    return Schedule(
        tuple(s / GRID for s in start),
        tuple(e / GRID for e in end),
        tuple(worker),
        peak / GRID,
        max(end) / GRID,
    )


def _list_starts(dur: list[int], order: Sequence[int], workers: int) -> tuple[list[int], list[int]]:
    """List model: each task in order starts on the first worker to become free."""
    n = len(dur)
    start = [0] * n
    worker = [0] * n
    # (time the worker becomes free, worker id): ties go to the lowest worker id, "first worker".
    free = [(0, w) for w in range(min(workers, n))]
    heapq.heapify(free)
    for task in order:
        t, w = heapq.heappop(free)
        start[task], worker[task] = t, w
        heapq.heappush(free, (t + dur[task], w))
    return start, worker


def _waves_starts(dur: list[int], order: Sequence[int], workers: int) -> tuple[list[int], list[int]]:
    """Waves model: blocks of K start together, the next when the whole block has finished."""
    n = len(dur)
    start = [0] * n
    worker = [0] * n
    t = 0
    for b in range(0, n, workers):
        block = order[b : b + workers]
        for w, task in enumerate(block):
            start[task], worker[task] = t, w
        t += max(dur[task] for task in block)
    return start, worker


def _sweep_peak(mem: list[int], start: list[int], end: list[int]) -> int:
    """Maximum over time of the summed memory of running tasks (half-open intervals)."""
    # At equal times an end (kind 0) is processed before a start (kind 1).
    events = sorted([(e, 0, -m) for e, m in zip(end, mem)] + [(s, 1, m) for s, m in zip(start, mem)])
    cur = peak = 0
    for _, _, delta in events:
        cur += delta
        if cur > peak:
            peak = cur
    return peak


def schedule(tasks: TaskSet, order: Sequence[int], workers: int, model: str = "list") -> Schedule:
    """Simulate ``order`` (task indices) of ``tasks`` under ``model``."""
    if model == "list":
        return list_schedule(tasks.memory, tasks.duration, order, workers)
    if model == "waves":
        return waves_schedule(tasks.memory, tasks.duration, order, workers)
    raise ChromoschedError(f"unknown model '{model}' (known: {', '.join(MODELS)})")


def peak_memory(tasks: TaskSet, order: Sequence[int], workers: int, model: str = "list") -> float:
    """Exact peak memory of ``order`` (task indices) under ``model`` (reference implementation)."""
    return schedule(tasks, order, workers, model).peak


class PeakEvaluator:
    """Fast exact peak for one task set, worker count and model; counts its evaluations.

    ``peak_ticks(order)`` returns the peak as an integer number of grid ticks (exact, comparable);
    ``to_units`` converts back. The list-model loop keeps one slot per worker: when time advances,
    the memory just before advancing is a candidate peak; all tasks ending at a time are removed
    before that time's candidate is recorded, which is exactly the half-open sweep.
    """

    def __init__(self, tasks: TaskSet, workers: int, model: str = "list"):
        if model not in MODELS:
            raise ChromoschedError(f"unknown model '{model}' (known: {', '.join(MODELS)})")
        if workers < 1:
            raise ChromoschedError(f"workers must be at least 1, got {workers}")
        self.tasks = tasks
        self.n = len(tasks)
        self.workers = workers
        self.model = model
        self.mem = _ticks(tasks.memory)
        self.dur = _ticks(tasks.duration)
        self.evaluations = 0
        self.peak_ticks = self._list_peak if model == "list" else self._waves_peak

    @staticmethod
    def to_units(ticks: int) -> float:
        return ticks / GRID

    def peak(self, order: Sequence[int]) -> float:
        """Peak in the task set's memory unit."""
        return self.peak_ticks(order) / GRID

    def _list_peak(self, order: Sequence[int]) -> int:
        self.evaluations += 1
        mem, dur, k = self.mem, self.dur, self.workers
        if k >= len(order):
            return sum(mem[i] for i in order)
        first = order[:k]
        wmem = [mem[i] for i in first]
        free = [dur[i] for i in first]
        cur = peak = sum(wmem)
        last_t = 0
        for i in order[k:]:
            t = min(free)
            w = free.index(t)
            if t != last_t:  # time advances: the state at last_t is complete
                if cur > peak:
                    peak = cur
                last_t = t
            m = mem[i]
            cur += m - wmem[w]
            wmem[w] = m
            free[w] = t + dur[i]
        # Workers that finished at the last dispatch time without new work are not running then.
        for w in range(k):
            if free[w] <= last_t:
                cur -= wmem[w]
        return peak if peak > cur else cur

    def block_sums(self, order: Sequence[int]) -> list[int]:
        """Waves model: the memory sum of each block of K positions (ticks); counts as an evaluation."""
        self.evaluations += 1
        mem, k = self.mem, self.workers
        return [sum(mem[i] for i in order[b : b + k]) for b in range(0, len(order), k)]

    def _waves_peak(self, order: Sequence[int]) -> int:
        self.evaluations += 1
        mem, k = self.mem, self.workers
        return max(sum(mem[i] for i in order[b : b + k]) for b in range(0, len(order), k))

    def batch_peaks(self, orders, scale: int = 0, power: int = 0, threshold: int | None = None):
        """List model, many orders at once (numpy; each row counts as one evaluation).

        Returns ``(peaks, spread)``: the exact peak of every row of ``orders`` (a 2-D integer array
        of task indices) in ticks, and, when ``power`` > 0, the integral over time of
        (memory in use / ``scale``) ** ``power``: a smooth companion of the peak that also falls when
        the profile gets lower or shorter near its top, which lets a search cross plateaus of
        equal peak. With ``threshold`` the spread is instead the excess area: the integral of
        (memory in use - threshold) where positive, in grid ticks squared (0 iff peak <= threshold).
        Same loop as ``_list_peak``, one step per position for all rows together.
        """
        import numpy as np

        if self.model != "list":
            raise ChromoschedError("batch_peaks is for the list model")
        orders = np.asarray(orders, dtype=np.int64)
        rows_n, n = orders.shape
        self.evaluations += rows_n
        if not hasattr(self, "_mem_np"):
            self._mem_np = np.asarray(self.mem, dtype=np.int64)
            self._dur_np = np.asarray(self.dur, dtype=np.int64)
        mem = self._mem_np[orders]
        k = self.workers
        if k >= n:
            return mem.sum(axis=1), np.zeros(rows_n)
        dur = self._dur_np[orders]
        wmem = mem[:, :k].copy()
        free = dur[:, :k].copy()
        cur = wmem.sum(axis=1)
        peak = cur.copy()
        last = np.zeros(rows_n, dtype=np.int64)
        spread = np.zeros(rows_n)
        rows = np.arange(rows_n)
        inv = 1.0 / scale if scale else 0.0
        for j in range(k, n):
            w = free.argmin(axis=1)
            t = free[rows, w]
            # The level ``cur`` held on [last, t); when t == last nothing is recorded (ties).
            np.maximum(peak, np.where(t != last, cur, 0), out=peak)
            if threshold is not None:
                spread += np.maximum(cur - threshold, 0).astype(float) * (t - last)
            elif power:
                spread += (cur * inv) ** power * (t - last)
            last = t
            m = mem[:, j]
            cur += m - wmem[rows, w]
            wmem[rows, w] = m
            free[rows, w] = t + dur[:, j]
        # After the last dispatch the level only falls: the first level is the candidate; workers
        # that finished exactly at the last dispatch time are not running then.
        cur -= (wmem * (free <= last[:, None])).sum(axis=1)
        np.maximum(peak, cur, out=peak)
        if power or threshold is not None:
            # The tail after the last dispatch: tasks end one by one (ascending end times).
            ends = np.sort(np.where(free > last[:, None], free, last[:, None]), axis=1)
            order_end = np.argsort(np.where(free > last[:, None], free, last[:, None]), axis=1, kind="stable")
            level = cur.astype(float)
            prev = last
            for c in range(k):
                e = ends[:, c]
                if threshold is not None:
                    spread += np.maximum(level - threshold, 0) * (e - prev)
                else:
                    spread += (level * inv) ** power * (e - prev)
                gone = np.where(free[rows, order_end[:, c]] > last, wmem[rows, order_end[:, c]], 0)
                level = level - gone
                prev = e
        return peak, spread
