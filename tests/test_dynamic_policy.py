import pytest

from chromosched.dynamic.policy import (
    Capacity,
    DynamicPolicy,
    PolicyConfig,
    RunningTask,
    TaskRequest,
    preset,
)
from chromosched.errors import ChromoschedError


def tasks(n=6, prior=True, base=100.0):
    return [
        TaskRequest(
            task_id=f"chr{i}",
            kind="impute",
            features={"index": float(i)},
            size_hint=float(n + 1 - i),
            prior_mb=base * (1 - 0.04 * (i - 1)) if prior else None,
            prior_runtime_s=50.0 * (1 - 0.04 * (i - 1)),
        )
        for i in range(1, n + 1)
    ]


@pytest.mark.parametrize(
    "init, expected",
    [("biggest", ["chr1", "chr2"]), ("smallest", ["chr6", "chr5"]), ("mixed", ["chr1", "chr6"])],
)
def test_init_phase_runs_tasks_alone_in_strategy_order(init, expected):
    pol = DynamicPolicy(PolicyConfig(init=init, init_tasks=2), Capacity(mem_mb=500.0))
    ready = tasks(prior=False)
    started = []
    for _ in range(2):
        chosen = pol.select(ready, Capacity(500.0))
        assert len(chosen) == 1 and chosen[0].mem_mb == 500.0  # alone, whole budget
        t = chosen[0].task
        # While it runs nothing else starts.
        assert pol.select([r for r in ready if r is not t], Capacity(0.0), [RunningTask(t, 500.0)]) == []
        started.append(t.task_id)
        pol.observe_success(t, 100.0 - 4 * (int(t.task_id[3:]) - 1), 10.0)
        ready = [r for r in ready if r is not t]
    assert started == expected
    # Trained now: several tasks at once, each with a predicted allocation.
    chosen = pol.select(ready, Capacity(500.0))
    assert len(chosen) > 1 and all(a.mem_mb < 500.0 for a in chosen)


def test_prior_removes_the_sequential_phase():
    pol = DynamicPolicy(preset("knapsack+bias+smallest+prior"), Capacity(mem_mb=300.0))
    chosen = pol.select(tasks(), Capacity(300.0))
    assert len(chosen) >= 2
    assert sum(a.mem_mb for a in chosen) <= 300.0


def test_failure_escalates_by_at_least_s_and_success_resets():
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=1000.0))
    ready = tasks()
    first = {a.task.task_id: a for a in pol.select(ready, Capacity(1000.0))}
    a = first["chr1"]
    pol.observe_failure(a.task, a.mem_mb)
    again = {x.task.task_id: x for x in pol.select([a.task], Capacity(1000.0))}
    assert again["chr1"].mem_mb >= 1.3 * a.mem_mb - 1e-9
    pol.observe_success(a.task, 1.25 * a.mem_mb, 40.0)
    assert pol.memory.get("impute")._points["chr1"].kind == "observed"


def test_selection_respects_free_memory_and_slots():
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=1000.0, max_tasks=10))
    ready = tasks(20)
    for free_mem, slots in ((150.0, 10), (1000.0, 3), (35.0, 2)):
        chosen = pol.select(ready, Capacity(free_mem, max_tasks=slots), [RunningTask(ready[0], 10.0)])
        assert sum(a.mem_mb for a in chosen) <= free_mem
        assert len(chosen) <= slots


def test_job_larger_than_the_budget_is_an_error_not_a_wait():
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=200.0))
    big = TaskRequest("chr1", "impute", {"index": 1.0}, prior_mb=400.0)
    chosen = pol.select([big], Capacity(200.0))
    assert [a.mem_mb for a in chosen] == [200.0]  # capped: it gets the whole budget alone
    pol.observe_failure(big, 200.0)
    with pytest.raises(ChromoschedError, match="chr1 \\(impute\\): ran out of memory with the whole budget of 200 MB"):
        pol.select([big], Capacity(200.0))


def test_known_minimum_above_budget_and_too_many_cores_fail_fast():
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=200.0, cores=4))
    with pytest.raises(ChromoschedError, match="needs at least 300 MB, more than the whole budget of 200 MB"):
        pol.select([TaskRequest("x", features={"index": 1.0}, prior_mb=10.0, min_mb=300.0)], Capacity(200.0, cores=4))
    with pytest.raises(ChromoschedError, match="needs 8 cores but only 4 exist"):
        pol.select([TaskRequest("y", features={"index": 1.0}, prior_mb=10.0, cores=8)], Capacity(200.0, cores=4))


def test_missing_feature_is_named():
    pol = DynamicPolicy(PolicyConfig(feature="variants"), Capacity(mem_mb=200.0))
    with pytest.raises(ChromoschedError, match="task a: size feature 'variants' missing \\(has: index\\)"):
        pol.select([TaskRequest("a", features={"index": 1.0})], Capacity(200.0))


def test_unknown_preset_and_bad_config():
    with pytest.raises(ChromoschedError, match="unknown policy 'nope'"):
        preset("nope")
    with pytest.raises(ChromoschedError, match="init strategy"):
        PolicyConfig(init="random")


def test_state_survives_save_and_load(tmp_path):
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=1000.0))
    ready = tasks()
    for a in pol.select(ready, Capacity(1000.0)):
        pol.observe_success(a.task, a.predicted_mb * 1.02, 30.0)
    pol.save_state(tmp_path / "s.json")
    warm = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=1000.0))
    warm.load_state(tmp_path / "s.json")
    assert warm.memory.get("impute").n_observed == pol.memory.get("impute").n_observed
    # A warm-started policy needs no init phase even without priors.
    cold_tasks = tasks(prior=False)
    assert len(warm.select(cold_tasks, Capacity(1000.0))) > 1


def test_feature_selection_picks_the_feature_memory_follows():
    import random

    rng = random.Random(5)
    lengths = [
        249.0,
        243.0,
        198.0,
        191.0,
        181.0,
        171.0,
        159.0,
        146.0,
        141.0,
        135.0,
        135.0,
        134.0,
        115.0,
        107.0,
        102.0,
        90.0,
        81.0,
        78.0,
        59.0,
        63.0,
        48.0,
        51.0,
    ]
    ready = [
        TaskRequest(
            f"chr{i}",
            "impute",
            {"index": float(i), "length": lengths[i - 1]},
            prior_mb=10.0 * lengths[i - 1] * (1 + rng.uniform(-0.05, 0.05)),
        )
        for i in range(1, 23)
    ]
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=5000.0))
    pol.select(ready, Capacity(5000.0))
    assert pol.chosen_feature("impute") == "length"
    # With memory linear in the index, the primary feature stays.
    linear = [
        TaskRequest(
            f"chr{i}",
            "impute",
            {"index": float(i), "length": lengths[i - 1]},
            prior_mb=(2500.0 - 100.0 * i) * (1 + rng.uniform(-0.05, 0.05)),
        )
        for i in range(1, 23)
    ]
    pol = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=5000.0))
    pol.select(linear, Capacity(5000.0))
    assert pol.chosen_feature("impute") == "index"


def test_calibrated_prior_caps_allocations_until_a_failure():
    """A calibrated prior (cap_mb) is an upper estimate: the policy's margin never lifts an
    allocation above it, learning lowers it, and a failure lifts the cap."""
    from dataclasses import replace

    config = replace(preset("chromosched"), feature="size")
    policy = DynamicPolicy(config, Capacity(mem_mb=10_000, cores=1))
    policy.memory.configure("beagle", default_margin=0.0)
    priors = [300.0, 280.0, 260.0, 240.0, 220.0, 200.0]
    tasks = [TaskRequest(f"t{i}", "beagle", {"size": p}, prior_mb=p, cap_mb=p) for i, p in enumerate(priors)]
    first = policy.select(tasks, Capacity(mem_mb=10_000, cores=1))[0]
    assert first.mem_mb == pytest.approx(first.task.prior_mb)  # exactly the calibrated estimate
    policy.observe_success(first.task, measured_mb=0.6 * first.task.prior_mb)  # the prior runs high
    rest = [t for t in tasks if t.task_id != first.task.task_id]
    second = policy.select(rest, Capacity(mem_mb=10_000, cores=1))[0]
    assert second.mem_mb <= second.task.prior_mb + 1e-9
    policy.observe_failure(second.task, allocated_mb=second.mem_mb)
    again = policy.select([second.task], Capacity(mem_mb=10_000, cores=1))[0]
    assert again.mem_mb >= config.escalation * second.mem_mb - 1e-9 and again.mem_mb > second.task.prior_mb


def test_per_type_settings_apply_to_that_type_only():
    from chromosched.dynamic.ram_regressor import RegressorRegistry, RegressorSettings

    registry = RegressorRegistry(RegressorSettings(default_margin=0.5))
    registry.get("impute@prior")
    registry.configure("impute", default_margin=0.0)
    assert registry.get("impute").settings.default_margin == 0.0
    assert registry.get("impute@prior").settings.default_margin == 0.0  # its alternative features too
    assert registry.get("prepare").settings.default_margin == 0.5


def test_a_need_above_the_calibrated_prior_lifts_the_cap():
    from dataclasses import replace

    policy = DynamicPolicy(replace(preset("chromosched"), feature="size"), Capacity(mem_mb=10_000, cores=1))
    tasks = [
        TaskRequest(f"t{i}", "beagle", {"size": p}, prior_mb=p, cap_mb=p) for i, p in enumerate([300.0, 250.0, 200.0])
    ]
    first = policy.select(tasks, Capacity(mem_mb=10_000, cores=1))[0]
    policy.observe_success(first.task, measured_mb=1.5 * first.task.prior_mb)  # the prior runs low
    nxt = policy.select([t for t in tasks if t is not first.task], Capacity(mem_mb=10_000, cores=1))[0]
    assert nxt.mem_mb > nxt.task.prior_mb  # the learned need, not the prior that proved too low


def test_a_declared_mem_mb_bounds_allocations_and_leaves_the_fit_once_a_job_is_seen():
    """A rule's declared mem_mb (prior_is_bound) is an upper bound, not an estimate: the first job
    gets it, later ones never more (without a failure), and one observation replaces it."""
    from dataclasses import replace

    config = replace(preset("chromosched"), feature="size")
    declared = [
        TaskRequest(f"c{i}", "prs", {"size": 250.0 - 10 * i}, prior_mb=250.0, cap_mb=250.0, prior_is_bound=True)
        for i in range(8)
    ]
    plain = [replace(t, kind="prs2", prior_is_bound=False, cap_mb=None) for t in declared]
    policy = DynamicPolicy(config, Capacity(mem_mb=400, cores=1))
    got = {}
    for kind, group in (("prs", declared), ("prs2", plain)):
        first = policy.select(group, Capacity(mem_mb=400, cores=1))[0]
        assert first.mem_mb == pytest.approx(250.0)
        policy.observe_success(first.task, measured_mb=45.0)
        got[kind] = policy.select([t for t in group if t is not first.task], Capacity(mem_mb=400, cores=1))[0].mem_mb
    assert got["prs"] <= 1.5 * 45.0 + 1e-9  # the observation plus the early margin
    assert got["prs2"] > 250.0  # as an estimate, the declared value keeps pulling (and the margin lifts it)
    # a failure still escalates above the bound
    nxt = policy.select(declared[1:], Capacity(mem_mb=400, cores=1))[0]
    policy.observe_failure(nxt.task, allocated_mb=nxt.mem_mb)
    again = policy.select([nxt.task], Capacity(mem_mb=400, cores=1))[0]
    assert again.mem_mb >= config.escalation * nxt.mem_mb - 1e-9
