"""The array path of the selection (dynamic/ready_jobs.py) against the policy's own per-job path, and the
session at 10,000 ready jobs: a valid packing, every --resources resource respected, flat memory."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from chromosched.dynamic.policy import Capacity, DynamicPolicy, RunningTask, TaskRequest, preset
from chromosched.dynamic.ready_jobs import ReadyJobs, select_vectorised
from chromosched.runtime.job_record import JobRecord
from chromosched.runtime.session import SchedulingSession, SessionSettings


def _trained_policy(rng, config="chromosched"):
    policy = DynamicPolicy(preset(config), Capacity(mem_mb=100_000.0, cores=32))
    for kind, slope in (("impute", 40.0), ("phase", 15.0)):
        warm = [
            TaskRequest(f"{kind}-w{i}", kind, {"index": float(i), "length": 10.0 * i}, prior_mb=slope * i + 200)
            for i in range(1, 6)
        ]
        policy.select(warm, Capacity(mem_mb=100_000.0, cores=32))
        for t in warm:
            policy.observe_success(t, slope * t.features["index"] * rng.uniform(0.9, 1.1) + 150, rng.uniform(10, 100))
    return policy


def _tasks(rng, n):
    out = []
    for i in range(n):
        kind = rng.choice(["impute", "phase"])
        x = float(rng.randint(1, 22))
        out.append(
            TaskRequest(
                f"{kind}-{i:04d}",
                kind,
                {"index": x, "length": 10.0 * x},
                prior_mb=40.0 * x + 200,
                cores=rng.randint(1, 4),
                min_mb=rng.choice([None, None, 300.0]),
                cap_mb=rng.choice([None, 900.0]),
            )
        )
    return out


@pytest.mark.parametrize("config", ["chromosched", "chromosched-memory-knapsack", "greedy+bias"])
@pytest.mark.parametrize("n", [12, 300])
def test_vectorised_selection_matches_the_policy(config, n):
    """Same jobs, same memory for each, in the same order: the array path is the policy's select."""
    for seed in range(4):
        rng = random.Random(seed)
        slow, fast = _trained_policy(random.Random(seed), config), _trained_policy(random.Random(seed), config)
        tasks = _tasks(rng, n)
        fast._failed_at[tasks[0].task_id] = 500.0  # an escalated job
        slow._failed_at[tasks[0].task_id] = 500.0
        by_uid = {t.task_id: t for t in tasks}
        table = ReadyJobs(fast.candidates, lambda r, by_uid=by_uid: by_uid[r.uid], fast._x)
        for t in tasks:
            table.add(JobRecord(uid=t.task_id, rule=t.kind, cores=t.cores, declared_mem_mb=int(t.prior_mb)))
        fast._register(tasks)
        free = Capacity(mem_mb=rng.uniform(2000, 9000), cores=rng.randint(4, 24))
        running = [RunningTask(tasks[-1], 700.0)]
        expected = slow.select(sorted(tasks[:-1], key=lambda t: t.task_id), free, running)
        slots = np.array([table.slot_of[t.task_id] for t in tasks[:-1]])
        got = select_vectorised(fast, table, slots, free, running)
        assert got is not None
        assert [a.task.task_id for a in got] == [a.task.task_id for a in expected]
        assert [a.mem_mb for a in got] == pytest.approx([a.mem_mb for a in expected])
        assert [a.predicted_runtime_s for a in got] == pytest.approx([a.predicted_runtime_s for a in expected])


def _probed_policy(seed: int, n_observed: int, packer: str) -> DynamicPolicy:
    """The session's probe-mode policy after each rule's probe and a few more measured jobs (no
    prior): few-shot fits, power-law extrapolation above the largest measured size, exploration."""
    config = replace(
        preset("chromosched-probe"), feature="size", alt_features=("length", "input", "prior"), packer=packer
    )
    policy = DynamicPolicy(config, Capacity(mem_mb=100_000.0, cores=32))
    rng = random.Random(seed)
    for kind, slope, power in (("align", 30.0, 1.0), ("call", 4.0, 2.0)):
        done = [
            TaskRequest(f"{kind}-p{i}", kind, {"size": s, "length": s}, size_hint=s)
            for i, s in enumerate([3.0, 5.0, 8.0][:n_observed])
        ]
        policy._register(done)
        for t in done:
            need = slope * t.features["size"] ** power * rng.uniform(0.9, 1.1) + 100
            policy.observe_success(t, need, rng.uniform(10, 100))
    return policy


@pytest.mark.parametrize("packer", ["knapsack", "greedy"])
@pytest.mark.parametrize("n_observed", [1, 2, 3])
@pytest.mark.parametrize("busy", [(), ("align",)])
def test_vectorised_selection_matches_the_policy_after_probing(packer, n_observed, busy):
    """Rules without a prior after their probe: the same jobs with the same memory in the same
    order (extrapolated sizes above the measured ones, declared caps, exploration of the smallest
    job of each rule with nothing running, then the packer)."""
    for seed in range(4):
        rng = random.Random(100 + seed)
        slow, fast = (_probed_policy(seed, n_observed, packer) for _ in range(2))
        tasks = []
        for i in range(60):
            kind = rng.choice(["align", "call"])
            size = float(rng.randint(1, 40))
            tasks.append(
                TaskRequest(
                    f"{kind}-{i:03d}",
                    kind,
                    {"size": size, "length": size},
                    size_hint=size,
                    cores=rng.randint(1, 4),
                    min_mb=rng.choice([None, None, 300.0]),
                    cap_mb=rng.choice([None, None, 2500.0]),
                )
            )
        slow._failed_at[tasks[0].task_id] = 500.0
        fast._failed_at[tasks[0].task_id] = 500.0
        running = [
            RunningTask(TaskRequest(f"{kind}-run", kind, {"size": 2.0, "length": 2.0}, size_hint=2.0), 400.0)
            for kind in busy
        ]
        by_uid = {t.task_id: t for t in tasks}
        table = ReadyJobs(fast.candidates, lambda r, by_uid=by_uid: by_uid[r.uid], fast._x)
        for t in tasks:
            table.add(JobRecord(uid=t.task_id, rule=t.kind, cores=t.cores))
        fast._register(tasks)
        free = Capacity(mem_mb=rng.uniform(3000, 20000), cores=rng.randint(4, 24))
        expected = slow.select(sorted(tasks, key=lambda t: t.task_id), free, running)
        got = select_vectorised(fast, table, table.slots(), free, running)
        assert got is not None
        assert expected, "the case must start jobs"
        assert [a.task.task_id for a in got] == [a.task.task_id for a in expected]
        assert [a.mem_mb for a in got] == pytest.approx([a.mem_mb for a in expected])
        assert [a.predicted_mb for a in got] == pytest.approx([a.predicted_mb for a in expected])
    # The case is real: big jobs are sized above their fit (extrapolated), and with nothing of a
    # learning rule running its smallest job comes first.
    big = [
        t
        for t in tasks
        if t.features["size"] > 8 and t.cap_mb is None and t.min_mb is None and t.task_id != tasks[0].task_id
    ]
    mems, points = fast._allocations(big[0].kind, big[:1])
    assert mems[0] > points[0] * 1.05
    if n_observed < 3 and "call" not in busy:
        first_call = next(a for a in expected if a.task.kind == "call")
        smallest = min((t for t in tasks if t.kind == "call"), key=lambda t: (t.features["size"], t.task_id))
        assert first_call.task.task_id == smallest.task_id


def test_a_rule_still_to_probe_goes_to_the_policy():
    policy = _probed_policy(0, 1, "knapsack")
    table = ReadyJobs(policy.candidates, lambda r: TaskRequest(r.uid, r.rule, {"size": 1.0, "length": 1.0}), policy._x)
    table.add(JobRecord(uid="a", rule="align"))
    table.add(JobRecord(uid="b", rule="never_measured"))
    policy._register(t for t in table.tasks if t is not None)
    assert select_vectorised(policy, table, table.slots(), Capacity(mem_mb=1000.0)) is None
    only_align = np.array([table.slot_of["a"]])
    assert select_vectorised(policy, table, only_align, Capacity(mem_mb=100_000.0)) is not None
    # While the new rule's probe runs, its other jobs wait and the known rule's jobs are packed.
    probe = RunningTask(TaskRequest("p", "never_measured", {"size": 1.0, "length": 1.0}), 500.0)
    slow = _probed_policy(0, 1, "knapsack")
    expected = slow.select([table.tasks[table.slot_of[u]] for u in ("a", "b")], Capacity(mem_mb=5000.0), [probe])
    got = select_vectorised(policy, table, table.slots(), Capacity(mem_mb=5000.0), [probe])
    assert [a.task.task_id for a in got] == [a.task.task_id for a in expected] == ["a"]
    assert [a.mem_mb for a in got] == pytest.approx([a.mem_mb for a in expected])


def test_untrained_job_types_go_to_the_policy():
    policy = DynamicPolicy(preset("chromosched-no-prior"), Capacity(mem_mb=1000.0))
    table = ReadyJobs(policy.candidates, lambda r: TaskRequest(r.uid, r.rule, {"index": 1.0}), policy._x)
    table.add(JobRecord(uid="a", rule="new"))
    policy._register(table.tasks[:1])
    assert select_vectorised(policy, table, table.slots(), Capacity(mem_mb=1000.0)) is None


def _record(i: int, rng) -> JobRecord:
    gpu = i % 10 == 0
    resources = {"_cores": rng.choice([1, 2, 4, 8]), "_nodes": 1, "mem_mb": rng.randint(1000, 32000)}
    if gpu:
        resources.update(gpu=1, gpu_mem_mb=rng.randint(4000, 40000))
    return JobRecord(
        uid=f"work[i={i}]",
        rule="work",
        wildcards={"i": str(i)},
        cores=resources["_cores"],
        gpus=int(gpu),
        declared_mem_mb=resources["mem_mb"],
        resources=resources,
        storable=False,
    )


def test_ten_thousand_ready_jobs_get_a_valid_packing_and_memory_stays_flat(tmp_path):
    rng = random.Random(3)
    settings = SessionSettings(store=str(tmp_path / "store"), model=str(tmp_path / "model.json"), events=None)
    session = SchedulingSession(settings)
    total = {
        "mem_mb": 256_000,
        "_cores": 64,
        "_nodes": 2**63 - 1,
        "_job_count": 2**63 - 1,
        "gpu": 2,
        "gpu_mem_mb": 48_000,
    }
    session.begin({**total, "_total_known": 1})
    ready = [_record(i, rng) for i in range(10_000)]
    session.update_ready(ready)
    by_uid = {r.uid: r for r in ready}
    running: dict[str, JobRecord] = {}
    next_id = 10_000

    def free_now() -> dict:
        free = dict(total)
        for r in running.values():
            for k in ("mem_mb", "_cores", "gpu", "gpu_mem_mb"):
                free[k] -= r.resources.get(k, 0)
        return free

    def one_round() -> None:
        nonlocal next_id
        free = free_now()
        chosen = session.select_ready(free)
        mem = sum(d.mem_mb for d in chosen)
        assert len({d.record.uid for d in chosen}) == len(chosen)
        assert mem <= free["mem_mb"]
        for k in ("_cores", "gpu", "gpu_mem_mb"):
            assert sum(d.record.resources.get(k, 0) for d in chosen) <= free[k], k
        for d in chosen:
            running[d.record.uid] = by_uid.pop(d.record.uid)
        # One job finishes and a new one becomes ready, as in a run.
        uid = rng.choice(sorted(running))
        running.pop(uid)
        session.finished(uid, None)
        new = _record(next_id, rng)
        next_id += 1
        by_uid[new.uid] = new
        session.update_ready([new])

    one_round()
    assert running, "the first round must start jobs"
    capacity = len(session._ready.active)
    for _ in range(60):
        one_round()
    table = session._ready
    assert len(table) == len(by_uid)
    # Rows of started jobs are reused and nothing per job is left behind in the table: a long run
    # does not grow it.
    assert len(table.active) == capacity
    assert len(table._sorted_uids) == len(table._order_key) == len(table.slot_of) == len(by_uid)
    assert table._n - len(table._free) == len(by_uid)
    assert all(table.records[s] is None for s in table._free)


def test_ready_rows_follow_what_the_session_learns_about_a_rule(tmp_path):
    """A ready job's cached request is what the session would build now: a declared mem_mb caps
    jobs up to the size a measured job agreed at (and none once a job needed more); a rule whose
    probe measured nothing is budgeted at its declared number (undeclared jobs left to the cores)."""
    from chromosched.runtime.job_measurements import Measurement
    from chromosched.runtime.job_record import job_uid

    settings = SessionSettings(store=str(tmp_path / "store"), model=str(tmp_path / "model.json"), events=None)
    session = SchedulingSession(settings)
    session.begin({"mem_mb": 4000, "_cores": 8, "_total_known": 1})

    def records(rule, declared):
        return [
            JobRecord(
                uid=job_uid(rule, {"chrom": f"chr{i}"}),
                rule=rule,
                wildcards={"chrom": f"chr{i}"},
                declared_mem_mb=declared,
                resources={"mem_mb": declared} if declared else {},
                cores=1,
            )
            for i in range(1, 23)
        ]

    def rows_match_fresh_requests():
        table = session._ready
        for uid, slot in table.slot_of.items():
            record, cached = table.records[slot], table.tasks[slot]
            assert bool(table.column("unmanaged")[slot]) == session._unmanaged(record), uid
            if cached is None:
                continue
            fresh = session._task(record)
            assert (cached.cap_mb, cached.features, cached.prior_mb) == (
                fresh.cap_mb,
                fresh.features,
                fresh.prior_mb,
            ), uid
            cap = table.column("cap")[slot]
            assert (np.isnan(cap) and fresh.cap_mb is None) or cap == fresh.cap_mb, uid

    session.update_ready(records("work", 900))
    (probe,) = session.select_ready({"mem_mb": 4000, "_cores": 8})
    assert probe.record.wildcards["chrom"] == "chr21"  # the smallest
    session.finished(probe.record.uid, Measurement(300.0, 2.0, "max_rss"))  # agrees with 900 up to chr21
    rows_match_fresh_requests()
    assert not any(t is not None and t.cap_mb for t in session._ready.tasks)  # every other job is bigger
    work = {r.wildcards["chrom"]: r for r in records("work", 900) if r.wildcards["chrom"] != "chr21"}
    (big,) = session.select([work["chr3"]], {"mem_mb": 4000, "_cores": 8})  # 198 Mbp, alone
    session.update_ready([r for c, r in work.items() if c != "chr3"])  # ready while chr3 runs
    session.finished(big.record.uid, Measurement(0.8 * 900, 2.0, "max_rss"))  # agrees up to chr3's size
    rows_match_fresh_requests()
    capped = sorted(
        session._ready.records[s].wildcards["chrom"]
        for s, t in enumerate(session._ready.tasks)
        if t is not None and t.cap_mb == 900.0
    )
    assert capped == sorted(c for c in work if c not in ("chr1", "chr2", "chr3"))  # the jobs not bigger than chr3
    picked = session.select_ready({"mem_mb": 4000, "_cores": 8})
    session.finished(picked[0].record.uid, Measurement(2000.0, 2.0, "max_rss"))  # one job needed more: no cap any more
    rows_match_fresh_requests()
    assert all(t is None or t.cap_mb is None for t in session._ready.tasks)

    for uid in list(session.running):
        session.finished(uid, Measurement(500.0, 2.0, "max_rss"))
    session.update_ready(records("merge", None), list(session._ready.slot_of))
    (probe,) = session.select_ready({"mem_mb": 4000, "_cores": 8})
    session.finished(probe.record.uid, None)  # the probe left no measurement
    rows_match_fresh_requests()
    merge_rows = [s for s in session._ready.slot_of.values() if session._ready.records[s].rule == "merge"]
    assert merge_rows and all(session._ready.column("unmanaged")[s] for s in merge_rows)


def test_preference_order_equals_lexsort():
    """The fast preference order (argsort, then lexsort of the tied rows only) is np.lexsort's."""
    from chromosched.dynamic.ready_jobs import preference_order

    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 200))
        keys = [rng.permutation(n).astype(float)]  # the uid key: unique
        if rng.random() < 0.3:
            keys[0] = rng.integers(0, 3, n).astype(float)  # even the last key ties: index order
        for _ in range(int(rng.integers(0, 3))):
            keys.append(-rng.integers(0, int(rng.integers(1, 6)), n).astype(float))  # many ties
        if rng.random() < 0.3:
            keys.append(rng.normal(size=n))  # no ties
        if rng.random() < 0.1:
            keys[-1][0] = np.nan  # NaN: lexsort itself decides
        assert (preference_order(keys) == np.lexsort(keys)).all()


def test_single_pick_equals_the_knapsack_in_preference_order():
    """The shortcut for rounds where the knapsack takes all candidates or at most one (one core
    free, a job count of 1, jobs bigger than half the memory) returns the job the knapsack picks
    over the jobs in preference order (the most valuable, the first in preference order on ties)."""
    from chromosched.dynamic.packers import KnapsackPacker, Limits
    from chromosched.dynamic.ready_jobs import _single_pick, preference_order

    rng = np.random.default_rng(21)
    applied = 0
    for trial in range(150):
        n = int(rng.integers(1, 400))
        mem = rng.uniform(100, 9000, n).round(-2)  # ties in memory
        cores = rng.choice([1, 2, 4], n)
        gpus = rng.choice([0, 0, 1], n)
        values = None if trial % 3 == 0 else (mem * rng.choice([0.5, 1.0], n)).round(-2)
        keys = [rng.permutation(n).astype(float), -mem, -rng.integers(0, 3, n).astype(float)]
        limits = Limits(
            mem=float(rng.uniform(50, 20000)),
            cores=int(rng.choice([1, 1, 2, 64])),
            gpus=int(rng.choice([1, 4])),
            max_items=[None, 1, 5][trial % 3],
        )
        rows = _single_pick(mem, cores, gpus, limits, values, {}, keys)
        if rows is None:
            continue
        applied += 1
        order = preference_order(keys)
        picked = KnapsackPacker().select_arrays(
            mem[order], cores[order], gpus[order], limits=limits, values=None if values is None else values[order]
        )
        assert sorted(rows) == sorted(order[picked].tolist())
    assert applied > 60
