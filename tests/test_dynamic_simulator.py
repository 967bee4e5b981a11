from dataclasses import replace

import numpy as np
import pytest

from chromosched.dynamic.policy import Allocation, Capacity, DynamicPolicy, preset
from chromosched.errors import ChromoschedError
from chromosched.simulation.comparison import ComparisonSettings, run_seed
from chromosched.simulation.declared_greedy import DeclaredGreedyPolicy
from chromosched.simulation.makespan_optimum import optimum_makespan
from chromosched.simulation.simulator import simulate
from chromosched.simulation.sizey_baseline import SizeyPolicy
from chromosched.simulation.workload import SimTask, Workload, WorkloadProfile, make_workload, profile


class FixedPolicy:
    """Starts every ready task it can, in id order, with a fixed allocation per attempt."""

    def __init__(self, allocations: dict[str, list[float]]):
        self.allocations = {k: list(v) for k, v in allocations.items()}
        self.failures: list[tuple[str, float]] = []
        self.successes: list[tuple[str, float, float]] = []

    def select(self, ready, free, running=(), now=0.0):
        out, mem = [], free.mem_mb
        for t in sorted(ready, key=lambda t: t.task_id):
            a = self.allocations[t.task_id][0]
            if a <= mem and (free.max_tasks is None or len(out) < free.max_tasks):
                out.append(Allocation(t, a, None, None))
                mem -= a
        return out

    def observe_success(self, task, measured_mb, runtime_s=None):
        self.successes.append((task.task_id, measured_mb, runtime_s))

    def observe_failure(self, task, allocated_mb):
        self.failures.append((task.task_id, allocated_mb))
        self.allocations[task.task_id].pop(0)


def tiny(tasks, capacity=10.0, max_parallel=None):
    prof = WorkloadProfile(name="tiny", capacity=capacity, n_tasks=len(tasks), max_parallel=max_parallel)
    return Workload(prof, 0, tuple(tasks))


def T(i, ram, dur):
    return SimTask(f"t{i}", i, ram, ram, dur, ram, dur)


def test_workload_follows_the_paper_model_and_is_seeded():
    prof = profile("paper-cal", task_size=0.4)
    w = make_workload(prof, 3)
    b = np.array([t.base for t in w.tasks])
    assert b[0] == pytest.approx(0.4 * 296) and b[-1] == pytest.approx(0.2 * b[0])
    assert np.allclose(np.diff(b), np.diff(b)[0])  # linear in the index
    for t in w.tasks:
        assert abs(t.ram / t.base - 1) <= 0.05 + 1e-12 and abs(t.duration / t.base - 1) <= 0.3 + 1e-12
        assert abs(t.prior_ram / t.base - 1) <= 0.05 + 1e-12
    assert make_workload(prof, 3) == w and make_workload(prof, 4) != w


def test_paper_semantics_fail_at_end_and_rerun():
    w = tiny([T(1, 6.0, 5.0), T(2, 3.0, 2.0)])
    pol = FixedPolicy({"t1": [5.0, 6.5], "t2": [3.0]})
    r = simulate(w, pol, semantics="paper")
    # t1 runs 0-5 with too little memory, fails at the END, reruns 5-10.
    assert pol.failures == [("t1", 5.0)]
    assert r.overcommits == 1 and r.makespan == pytest.approx(10.0)
    fail = [a for a in r.attempts if a.failed][0]
    assert (fail.start, fail.end) == (0.0, 5.0)
    # wasted: failure 5 x 5 + successes (6.5 - 6) x 5 + 0 = 27.5
    assert r.wasted == pytest.approx(27.5)
    # A failing attempt holds its allocation (5) until it is killed; t2 holds 3: peak 8 of 10.
    assert r.peak_utilisation == pytest.approx(0.8)


def test_system_semantics_kill_only_when_the_total_overflows():
    # t1 uses 6 with allocation 5, t2 uses 3: total 9 <= 10, nobody dies.
    w = tiny([T(1, 6.0, 5.0), T(2, 3.0, 2.0)])
    r = simulate(w, FixedPolicy({"t1": [5.0], "t2": [3.0]}), semantics="system")
    assert r.overcommits == 0 and r.makespan == pytest.approx(5.0)
    # t3 pushes the total to 12 > 10 at t=0: the over-user (t1, +1) is killed at once.
    w = tiny([T(1, 6.0, 5.0), T(2, 3.0, 2.0), T(3, 3.0, 1.0)], capacity=10.0)
    pol = FixedPolicy({"t1": [5.0, 6.0], "t2": [2.0], "t3": [3.0]})
    r = simulate(w, pol, semantics="system")
    killed = [a for a in r.attempts if a.failed]
    assert [(a.task_id, a.start, a.end) for a in killed] == [("t1", 0.0, 0.0)]
    assert r.overcommits == 1


def test_simulation_is_deterministic_per_seed():
    prof = profile("paper-cal", task_size=0.4)
    runs = []
    for _ in range(2):
        w = make_workload(prof, 5)
        runs.append(simulate(w, DynamicPolicy(preset("chromosched"), Capacity(296.0, max_tasks=10))))
    assert runs[0].attempts == runs[1].attempts and runs[0].makespan == runs[1].makespan
    other = simulate(make_workload(prof, 6), DynamicPolicy(preset("chromosched"), Capacity(296.0, max_tasks=10)))
    assert other.makespan != runs[0].makespan


def test_job_larger_than_capacity_raises_instead_of_hanging():
    prof = profile("paper-cal", task_size=1.0, clip_ram=False, beta_ram=0.0)
    w = make_workload(prof, 0)
    big = replace(w.tasks[0], ram=400.0)  # needs more than the 296 that exist
    w = Workload(prof, 0, (big,) + w.tasks[1:])
    for pol in (
        DynamicPolicy(preset("chromosched"), Capacity(296.0, max_tasks=10)),
        DynamicPolicy(preset("knapsack"), Capacity(296.0, max_tasks=10)),
        DeclaredGreedyPolicy(Capacity(296.0)),
    ):
        with pytest.raises(ChromoschedError, match="chr1 .*ran out of memory with the whole budget of 296"):
            simulate(w, pol)


def test_simulator_rejects_a_policy_that_overfills_or_stalls():
    w = tiny([T(1, 6.0, 5.0)])

    class Greedy(FixedPolicy):
        def select(self, ready, free, running=(), now=0.0):
            return [Allocation(t, 11.0, None, None) for t in ready]

    with pytest.raises(ChromoschedError, match="overfilled memory: 11 chosen, 10 free"):
        simulate(w, Greedy({"t1": [11.0]}))

    class Idle(FixedPolicy):
        def select(self, ready, free, running=(), now=0.0):
            return []

    with pytest.raises(ChromoschedError, match="would wait forever"):
        simulate(w, Idle({"t1": [1.0]}))


def test_optimum_is_exact_on_a_small_instance_and_below_every_policy():
    # Two tasks above half the capacity cannot overlap; the third fits beside either.
    w = tiny([T(1, 6.0, 4.0), T(2, 6.0, 3.0), T(3, 4.0, 7.0)])
    opt = optimum_makespan(w, time_limit_s=5.0)
    assert opt.status == "OPTIMAL" and opt.makespan == pytest.approx(7.0)
    prof = profile("paper-cal", task_size=0.4)
    wl = make_workload(prof, 1)
    opt = optimum_makespan(wl, time_limit_s=1.0, search_iterations=200)
    assert opt.lower_bound <= opt.makespan
    for name in ("knapsack", "chromosched"):
        r = simulate(wl, DynamicPolicy(preset(name), Capacity(296.0, max_tasks=10)))
        assert opt.makespan <= r.makespan + 1e-6
    # The optimum's schedule is feasible: memory and job count within limits at every start.
    starts = opt.starts
    for t in wl.tasks:
        at = starts[t.task_id]
        active = [u for u in wl.tasks if starts[u.task_id] <= at < starts[u.task_id] + u.duration + 1e-6]
        assert sum(u.ram for u in active) <= 296.0 + 1e-6 and len(active) <= 10


def test_chromosched_beats_the_papers_rows_on_a_few_seeds():
    prof = profile("paper-cal", task_size=0.4)
    res = {name: [] for name in ("knapsack+bias+smallest+prior", "chromosched")}
    for seed in range(3):
        w = make_workload(prof, seed)
        for name in res:
            res[name].append(simulate(w, DynamicPolicy(preset(name), Capacity(296.0, max_tasks=10))))
    ours, paper = res["chromosched"], res["knapsack+bias+smallest+prior"]
    assert np.mean([r.makespan for r in ours]) < np.mean([r.makespan for r in paper])
    assert sum(r.overcommits for r in ours) <= sum(r.overcommits for r in paper)


def test_sizey_and_declared_baselines_run_and_size_sensibly():
    prof = profile("paper-cal", task_size=0.4)
    w = make_workload(prof, 2)
    r = simulate(w, SizeyPolicy(Capacity(296.0, max_tasks=10)))
    assert r.makespan > 0 and all(a.allocation > 0 for a in r.attempts)
    ok = [a for a in r.attempts if not a.failed]
    assert len(ok) == 22
    d = simulate(w, DeclaredGreedyPolicy(Capacity(296.0, max_tasks=10), headroom=1.1))
    declared = 1.1 * max(t.prior_ram for t in w.tasks)
    assert {round(a.allocation, 9) for a in d.attempts} == {round(declared, 9)}
    assert d.overcommits == 0  # 10% over the largest prior covers +-5% noise


def test_run_seed_reports_every_policy_on_the_same_workload():
    prof = profile("paper-cal", task_size=0.1)
    s = ComparisonSettings(
        profile=prof,
        seeds=(0,),
        policies=("knapsack", "chromosched", "optimum"),
        optimum_time_limit_s=0.5,
        optimum_search_iterations=50,
    )
    out = run_seed(s, 0)
    assert set(out) == {"knapsack", "chromosched", "optimum"}
    assert out["optimum"]["makespan"] <= min(out["knapsack"]["makespan"], out["chromosched"]["makespan"]) + 1e-6
    assert out["optimum"]["status"] in ("OPTIMAL", "FEASIBLE")


def test_clairvoyant_baseline_never_fails_and_sits_between_policy_and_optimum():
    from chromosched.simulation.clairvoyant_baseline import ClairvoyantPolicy

    prof = profile("paper-cal", task_size=0.4)
    w = make_workload(prof, 4)
    clair = simulate(w, ClairvoyantPolicy(w))
    assert clair.overcommits == 0 and clair.wasted == pytest.approx(0.0)
    opt = optimum_makespan(w, time_limit_s=0.5, search_iterations=300)
    assert opt.makespan <= clair.makespan + 1e-6
