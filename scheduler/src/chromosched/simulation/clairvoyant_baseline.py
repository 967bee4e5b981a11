"""A clairvoyant online scheduler: the simulator's true memory and durations, no margins.

It splits the gap between a real policy and the optimum into what not knowing costs and what
deciding online costs: it starts jobs only when the simulator asks (like every policy), in
longest-true-duration-first order, each with exactly its true peak. Simulation only.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..dynamic.packers import FirstFitPacker, Limits, PackItem
from ..dynamic.policy import Allocation, Capacity, RunningTask, TaskRequest
from .workload import Workload


class ClairvoyantPolicy:
    def __init__(self, workload: Workload):
        self._truth = {t.task_id: t for t in workload.tasks}

    def select(
        self, ready: Sequence[TaskRequest], free: Capacity, running: Sequence[RunningTask] = (), now: float = 0.0
    ) -> list[Allocation]:
        order = sorted(ready, key=lambda r: (-self._truth[r.task_id].duration, r.task_id))
        items = [PackItem(r.task_id, self._truth[r.task_id].ram, r.cores, r.gpus) for r in order]
        picked = FirstFitPacker().select(items, Limits(free.mem_mb, free.cores, free.gpus, free.max_tasks))
        return [
            Allocation(order[i], items[i].mem, items[i].mem, self._truth[order[i].task_id].duration) for i in picked
        ]

    def observe_success(self, task: TaskRequest, measured_mb: float, runtime_s: float | None = None) -> None:
        pass

    def observe_failure(self, task: TaskRequest, allocated_mb: float) -> None:  # pragma: no cover - never fails
        pass
