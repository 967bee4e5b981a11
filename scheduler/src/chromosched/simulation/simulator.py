"""Discrete-event simulation of a dynamic memory scheduler on a :class:`Workload`.

The scheduler is anything with the policy protocol of :class:`DynamicPolicy`: ``select(ready,
free, running, now)``, ``observe_success(task, measured_mb, runtime_s)`` and
``observe_failure(task, allocated_mb)``. It is asked to choose at time 0 and after every event
(a job ends or is killed). The simulator checks every choice (known ready jobs, memory within the
free budget, job count within the cap) and refuses a policy that would wait forever.

Failure semantics (``semantics``):

- ``paper``: a job whose true peak exceeds its allocation runs to the END and then fails (the
  paper: its time doubles); it is rerun with whatever the policy allocates next.
- ``system``: memory is shared; a job may use more than its allocation as long as the running
  jobs' true total stays within the capacity. When a start pushes the total over, jobs that use
  more than their allocation are killed at once, largest excess first, until it fits.

Metrics per run: makespan, overcommits (failed attempts), peak and mean memory utilisation (true
use / capacity), mean allocated fraction, wasted memory-time in Sizey's definition
(successes: (allocation - use) x runtime; failures: allocation x time run), in the workload's
units (e.g. GB x hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..dynamic.policy import Allocation, Capacity, RunningTask, TaskRequest
from ..errors import ChromoschedError
from .workload import SimTask, Workload

SEMANTICS = ("paper", "system")
_EPS = 1e-9


class Policy(Protocol):
    def select(
        self, ready: Sequence[TaskRequest], free: Capacity, running: Sequence[RunningTask] = (), now: float = 0.0
    ) -> list[Allocation]: ...

    def observe_success(self, task: TaskRequest, measured_mb: float, runtime_s: float | None = None) -> None: ...

    def observe_failure(self, task: TaskRequest, allocated_mb: float) -> None: ...


@dataclass(frozen=True)
class Attempt:
    task_id: str
    start: float
    end: float
    allocation: float
    usage: float  # memory held in reality during the attempt
    failed: bool


@dataclass
class RunResult:
    makespan: float
    overcommits: int
    peak_utilisation: float
    mean_utilisation: float
    allocated_fraction: float
    wasted: float
    attempts: list[Attempt] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return {
            "makespan": self.makespan,
            "overcommits": float(self.overcommits),
            "peak_utilisation": self.peak_utilisation,
            "utilisation": self.mean_utilisation,
            "allocated_fraction": self.allocated_fraction,
            "wasted": self.wasted,
        }


_GRCH37 = None


def task_request(t: SimTask, n_tasks: int, kind: str = "sim") -> TaskRequest:
    """What a scheduler may know about a simulated task: its index, its chromosome's GRCh37
    length (for up to 22 tasks), the prior run, one core."""
    global _GRCH37
    if _GRCH37 is None:
        from ..genomes import genome_lengths

        _GRCH37 = list(genome_lengths("GRCh37").values())
    features = {"index": float(t.index)}
    if t.index <= len(_GRCH37):
        features["length"] = float(_GRCH37[t.index - 1])
    return TaskRequest(
        task_id=t.task_id,
        kind=kind,
        features=features,
        size_hint=float(n_tasks + 1 - t.index),
        prior_mb=t.prior_ram,
        prior_runtime_s=t.prior_duration,
        cores=1,
    )


def simulate(
    workload: Workload, policy: Policy, semantics: str = "paper", max_attempts: int | None = None
) -> RunResult:
    """Run ``policy`` on ``workload`` until every task has succeeded; return the metrics."""
    if semantics not in SEMANTICS:
        raise ChromoschedError(f"failure semantics must be one of {', '.join(SEMANTICS)}, got {semantics!r}")
    cap = workload.capacity
    max_par = workload.profile.max_parallel
    tasks = {t.task_id: t for t in workload.tasks}
    requests = {t.task_id: task_request(t, len(workload.tasks)) for t in workload.tasks}
    ready: set[str] = set(tasks)
    running: dict[str, tuple[Allocation, float]] = {}  # id -> (allocation, start)
    attempts: list[Attempt] = []
    limit = max_attempts if max_attempts is not None else 50 * len(tasks) + 100
    now = 0.0

    def finish(tid: str, end: float, failed: bool) -> None:
        alloc, start = running.pop(tid)
        t = tasks[tid]
        usage = t.ram if (not failed or semantics == "system") else alloc.mem_mb
        attempts.append(Attempt(tid, start, end, alloc.mem_mb, usage, failed))
        if failed:
            ready.add(tid)
            policy.observe_failure(requests[tid], alloc.mem_mb)
        else:
            policy.observe_success(requests[tid], t.ram, end - start)

    while ready or running:
        if len(attempts) > limit:
            raise ChromoschedError(f"simulation stopped after {limit} attempts: the policy keeps failing tasks")
        used = sum(a.mem_mb for a, _ in running.values())
        free = Capacity(
            mem_mb=max(cap - used, 0.0),
            cores=None,
            max_tasks=None if max_par is None else max_par - len(running),
        )
        ledger = [
            RunningTask(requests[tid], a.mem_mb, s, a.predicted_runtime_s) for tid, (a, s) in sorted(running.items())
        ]
        chosen = policy.select([requests[tid] for tid in sorted(ready)], free, ledger, now) if ready else []
        _validate(chosen, ready, free)
        for a in chosen:
            ready.discard(a.task.task_id)
            running[a.task.task_id] = (a, now)
        if semantics == "system" and chosen:
            _system_kills(running, tasks, cap, now, finish)
        if not running:
            if ready:
                raise ChromoschedError(
                    f"policy started nothing on an idle machine with {len(ready)} tasks waiting (would wait forever)"
                )
            break
        # Next event: the earliest end among running jobs.
        nxt = min(s + tasks[tid].duration for tid, (_, s) in running.items())
        now = nxt
        ending = sorted(tid for tid, (_, s) in running.items() if s + tasks[tid].duration <= now + _EPS)
        for tid in ending:
            a, _ = running[tid]
            failed = semantics == "paper" and tasks[tid].ram > a.mem_mb + _EPS
            finish(tid, now, failed)

    return _metrics(attempts, cap)


def _validate(chosen: Sequence[Allocation], ready: set[str], free: Capacity) -> None:
    ids = [a.task.task_id for a in chosen]
    if len(set(ids)) != len(ids) or any(i not in ready for i in ids):
        raise ChromoschedError(f"policy chose tasks that are not ready: {ids}")
    total = sum(a.mem_mb for a in chosen)
    if total > free.mem_mb * (1 + 1e-9) + 1e-9:
        raise ChromoschedError(f"policy overfilled memory: {total:.6g} chosen, {free.mem_mb:.6g} free")
    if any(a.mem_mb <= 0 for a in chosen):
        raise ChromoschedError("policy gave a task no memory")
    if free.max_tasks is not None and len(chosen) > free.max_tasks:
        raise ChromoschedError(f"policy started {len(chosen)} tasks, only {free.max_tasks} slots free")


def _system_kills(running, tasks, cap, now, finish) -> None:
    """Shared memory: kill over-users (largest excess first) while the true total exceeds capacity."""
    while True:
        total = sum(tasks[tid].ram for tid in running)
        if total <= cap + _EPS:
            return
        over = [
            (tasks[tid].ram - a.mem_mb, s, tid) for tid, (a, s) in running.items() if tasks[tid].ram > a.mem_mb + _EPS
        ]
        if not over:  # cannot happen while allocations fit the capacity
            raise ChromoschedError("memory over capacity with no job above its allocation")
        over.sort(key=lambda x: (-x[0], -x[1], x[2]))
        finish(over[0][2], now, True)


def _metrics(attempts: list[Attempt], cap: float) -> RunResult:
    makespan = max((a.end for a in attempts), default=0.0)
    overcommits = sum(1 for a in attempts if a.failed)
    wasted = 0.0
    area = 0.0
    alloc_area = 0.0
    for a in attempts:
        dt = a.end - a.start
        wasted += (a.allocation * dt) if a.failed else max(a.allocation - a.usage, 0.0) * dt
        area += a.usage * dt
        alloc_area += a.allocation * dt
    # Peak: sweep starts and ends (ends first at equal times: intervals are half-open).
    events = sorted([(a.start, 1, a.usage) for a in attempts] + [(a.end, 0, -a.usage) for a in attempts])
    cur = peak = 0.0
    for _, _, du in events:
        cur += du
        peak = max(peak, cur)
    denom = cap * makespan if makespan > 0 else 1.0
    return RunResult(
        makespan=makespan,
        overcommits=overcommits,
        peak_utilisation=peak / cap,
        mean_utilisation=area / denom,
        allocated_fraction=alloc_area / denom,
        wasted=wasted,
        attempts=attempts,
    )
