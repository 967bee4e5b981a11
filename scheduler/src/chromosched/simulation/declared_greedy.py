"""Snakemake-like scheduling on a static declared memory (the usual ``resources: mem_mb=...``).

Every job of a rule declares the same memory: the largest peak of the prior run times a headroom
(``per_task=True`` declares each job's own prior peak times the headroom instead). Jobs are taken
in Snakemake's greedy reward order (priority, then input size: bigger chromosomes first) while
they fit. A job that runs out of memory is retried with ``mem_mb * attempt`` (Snakemake's common
retry idiom), capped at the budget, as Snakemake caps requests at ``--resources mem_mb``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..dynamic.packers import FirstFitPacker, Limits, PackItem
from ..dynamic.policy import Allocation, Capacity, RunningTask, TaskRequest
from ..errors import ChromoschedError


class DeclaredGreedyPolicy:
    def __init__(self, capacity: Capacity, headroom: float = 1.1, per_task: bool = False):
        if headroom <= 0:
            raise ChromoschedError(f"declared-memory headroom must be > 0, got {headroom}")
        self.capacity = capacity
        self.headroom = headroom
        self.per_task = per_task
        self._declared: dict[str, float] = {}
        self._rule_max: dict[str, float] = {}
        self._attempt: dict[str, int] = {}

    def _declare(self, ready: Sequence[TaskRequest]) -> None:
        for t in ready:
            if t.prior_mb is not None:
                self._rule_max[t.kind] = max(self._rule_max.get(t.kind, 0.0), t.prior_mb)
        for t in ready:
            if t.task_id in self._declared:
                continue
            base = t.prior_mb if (self.per_task and t.prior_mb is not None) else self._rule_max.get(t.kind)
            self._declared[t.task_id] = self.capacity.mem_mb if base is None else base * self.headroom

    def select(
        self, ready: Sequence[TaskRequest], free: Capacity, running: Sequence[RunningTask] = (), now: float = 0.0
    ) -> list[Allocation]:
        self._declare(ready)
        order = sorted(ready, key=lambda t: (-(t.size_hint or 0.0), t.task_id))
        mems = [min(self._declared[t.task_id] * self._attempt.get(t.task_id, 1), self.capacity.mem_mb) for t in order]
        items = [PackItem(t.task_id, m, t.cores, t.gpus) for t, m in zip(order, mems)]
        picked = FirstFitPacker().select(items, Limits(free.mem_mb, free.cores, free.gpus, free.max_tasks))
        return [Allocation(order[i], mems[i], None, None) for i in picked]

    def observe_success(self, task: TaskRequest, measured_mb: float, runtime_s: float | None = None) -> None:
        self._attempt.pop(task.task_id, None)

    def observe_failure(self, task: TaskRequest, allocated_mb: float) -> None:
        if allocated_mb >= self.capacity.mem_mb * (1 - 1e-9):
            raise ChromoschedError(
                f"task {task.task_id} ({task.kind}): ran out of memory with the whole budget of {self.capacity.mem_mb:.6g} MB"
            )
        self._attempt[task.task_id] = self._attempt.get(task.task_id, 1) + 1
