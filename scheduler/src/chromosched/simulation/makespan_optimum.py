"""The theoretical optimum: the shortest makespan with perfect knowledge of memory and durations.

A CP-SAT model (OR-tools): one interval per task, a cumulative constraint on memory (capacity C)
and, when the workload caps parallel jobs, a second cumulative on the job count. Memory and time
are scaled to integers (``scale`` units per workload unit): durations rounded up, memory rounded
up, capacity rounded down, so every schedule the solver finds is feasible for the real numbers.
The solver is warm-started with a longest-first list schedule and capped in time; it reports its
status (OPTIMAL or FEASIBLE) and the proven lower bound, both in workload units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ChromoschedError
from .workload import Workload


@dataclass(frozen=True)
class OptimumResult:
    makespan: float
    lower_bound: float
    status: str  # OPTIMAL | FEASIBLE
    starts: dict[str, float]
    wall_s: float


def list_schedule(mem: list[int], dur: list[int], cap: int, max_par: int | None, order: list[int]) -> list[int]:
    """Serial schedule generation: each task (in ``order``) at the earliest time it fits."""
    starts = [0] * len(mem)
    placed: list[tuple[int, int, int]] = []  # (start, end, mem)
    for i in order:
        if mem[i] > cap:
            raise ChromoschedError(f"task {i + 1} needs {mem[i]} > capacity {cap} (scaled)")
        candidates = sorted({0} | {e for _, e, _ in placed})
        for t in candidates:
            end = t + dur[i]
            points = [t] + [s for s, _, _ in placed if t < s < end]
            ok = True
            for p in points:
                active = [(s, e, m) for s, e, m in placed if s <= p < e]
                if sum(m for _, _, m in active) + mem[i] > cap or (max_par is not None and len(active) + 1 > max_par):
                    ok = False
                    break
            if ok:
                starts[i] = t
                placed.append((t, end, mem[i]))
                break
    return starts


def _makespan(starts: list[int], dur: list[int]) -> int:
    return max(s + d for s, d in zip(starts, dur))


def search_order(
    mem: list[int], dur: list[int], cap: int, max_par: int | None, iterations: int, seed: int = 0
) -> tuple[int, list[int]]:
    """Best list schedule found by local search over task orders (swap and move-to moves,
    sideways moves accepted), started from the best of three priority rules."""
    import random

    rng = random.Random(seed)
    n = len(mem)
    best = None
    for key in (lambda i: -dur[i], lambda i: -mem[i], lambda i: -mem[i] * dur[i]):
        order = sorted(range(n), key=key)
        ms = _makespan(list_schedule(mem, dur, cap, max_par, order), dur)
        if best is None or ms < best[0]:
            best = (ms, order)
    cur_ms, cur = best
    for _ in range(iterations if n > 1 else 0):
        cand = list(cur)
        i, j = rng.sample(range(n), 2)
        if rng.random() < 0.5:
            cand[i], cand[j] = cand[j], cand[i]
        else:
            cand.insert(j, cand.pop(i))
        ms = _makespan(list_schedule(mem, dur, cap, max_par, cand), dur)
        if ms <= cur_ms:
            cur_ms, cur = ms, cand
            if ms < best[0]:
                best = (ms, cand)
    return best[0], list_schedule(mem, dur, cap, max_par, best[1])


def optimum_makespan(
    workload: Workload,
    time_limit_s: float = 5.0,
    scale: int = 100,
    workers: int = 1,
    seed: int = 0,
    params: dict | None = None,
    search_iterations: int = 1500,
) -> OptimumResult:
    """Solve the perfect-knowledge schedule for one workload with CP-SAT."""
    from ortools.sat.python import cp_model

    tasks = workload.tasks
    cap = int(math.floor(workload.capacity * scale + 1e-9))
    mem = [int(math.ceil(t.ram * scale - 1e-9)) for t in tasks]
    dur = [max(1, int(math.ceil(t.duration * scale - 1e-9))) for t in tasks]
    for t, m in zip(tasks, mem):
        if m > cap:
            raise ChromoschedError(
                f"{t.task_id} needs {t.ram:.6g} > capacity {workload.capacity:.6g}: no schedule exists (clip_ram is off)"
            )
    max_par = workload.profile.max_parallel
    horizon = sum(dur)
    model = cp_model.CpModel()
    starts, ends, intervals = [], [], []
    for i in range(len(tasks)):
        s = model.new_int_var(0, horizon, f"s{i}")
        e = model.new_int_var(0, horizon, f"e{i}")
        intervals.append(model.new_interval_var(s, dur[i], e, f"x{i}"))
        starts.append(s)
        ends.append(e)
    model.add_cumulative(intervals, mem, cap)
    # Tasks above half the capacity exclude each other pairwise: a no-overlap constraint on them
    # is redundant but much stronger in propagation (it settles the 100% task size instantly).
    big = [iv for iv, m in zip(intervals, mem) if 2 * m > cap]
    if len(big) > 1:
        model.add_no_overlap(big)
    if max_par is not None and max_par < len(tasks):
        model.add_cumulative(intervals, [1] * len(tasks), max_par)
    # Simple bounds the solver may not derive quickly with one worker: energy and job count.
    energy_lb = math.ceil(sum(m * d for m, d in zip(mem, dur)) / cap)
    count_lb = math.ceil(sum(dur) / max_par) if max_par is not None else 0
    lb = max(max(dur), energy_lb, count_lb)
    makespan = model.new_int_var(lb, horizon, "makespan")
    model.add_max_equality(makespan, ends)
    model.minimize(makespan)
    # Warm start: local search over list schedules (CP-SAT alone finds poor solutions here).
    best = search_order(mem, dur, cap, max_par, search_iterations, seed)
    for var, v in zip(starts, best[1]):
        model.add_hint(var, v)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    for k, v in (params or {}).items():
        setattr(solver.parameters, k, v)
    status = solver.solve(model)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # The hint is always feasible; report it if the solver returned nothing in time.
        return OptimumResult(
            best[0] / scale, 0.0, "HINT", {t.task_id: s / scale for t, s in zip(tasks, best[1])}, solver.wall_time
        )
    return OptimumResult(
        makespan=solver.objective_value / scale,
        lower_bound=solver.best_objective_bound / scale,
        status=name,
        starts={t.task_id: solver.value(s) / scale for t, s in zip(tasks, starts)},
        wall_s=solver.wall_time,
    )
