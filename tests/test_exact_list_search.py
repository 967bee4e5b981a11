"""The exact branch and bound over list-scheduling orders: it agrees with brute force on every small
instance (feasible at the optimum with an order that reaches it, infeasible one tick below), proves
bounds on GRCh37 that the analytic relaxation cannot, and degrades to "no proof" without a compiler."""

import ctypes
import itertools
import random

import numpy as np
import pytest

from chromosched.static import exact_list_search, multistart_annealing
from chromosched.static.exact_list_search import decide, exact_lower_bound
from chromosched.static.optimiser import build_table, optimise
from chromosched.static.peak_lower_bound import list_lower_bound
from chromosched.static.peak_memory import GRID, PeakEvaluator
from chromosched.static.search import search
from chromosched.static.task_model import TaskSet, genome_taskset


def _ticks(values):
    return [int(round(v * GRID)) for v in values]


def _random_instance(rng, n):
    kind = rng.random()
    if kind < 0.35:  # small integers, memory = duration: workers free together all the time
        mem = [float(rng.randint(1, 9)) for _ in range(n)]
        return mem, list(mem)
    if kind < 0.6:  # small integers, memory and duration apart
        return [float(rng.randint(1, 12)) for _ in range(n)], [float(rng.randint(1, 12)) for _ in range(n)]
    mem = [round(rng.uniform(1, 100), 4) for _ in range(n)]  # chromosome-like: no ties
    return mem, list(mem)


def test_decide_agrees_with_brute_force_for_every_k():
    rng = random.Random(11)
    proofs = 0
    for _ in range(45):
        n = rng.randint(4, 7)
        mem, dur = _random_instance(rng, n)
        ts = TaskSet(tuple(f"t{i}" for i in range(n)), tuple(mem), tuple(dur))
        perms = np.array(list(itertools.permutations(range(n))))
        for k in range(2, n):
            ev = PeakEvaluator(ts, k)
            optimum = int(ev.batch_peaks(perms)[0].min())  # ticks
            at = decide(_ticks(mem), _ticks(dur), k, optimum)
            below = decide(_ticks(mem), _ticks(dur), k, optimum - 1)
            assert at.status == "feasible", (mem, dur, k)
            assert int(round(ev.peak(at.order) * GRID)) <= optimum  # the order it returns reaches it
            assert sorted(at.order) == list(range(n))
            assert below.status == "infeasible", (mem, dur, k, optimum)
            proofs += optimum > int(round(list_lower_bound(mem, dur, k) * GRID))
    assert proofs > 20  # many optima the analytic bound could not prove


def test_grch37_bounds_beyond_the_relaxation():
    ts = genome_taskset("GRCh37")
    mem, dur = _ticks(ts.memory), _ticks(ts.duration)
    # K=2: one tick below the known optimum (chr2 + chr18) is infeasible, the optimum is feasible.
    assert decide(mem, dur, 2, 321_276_621).status == "feasible"
    assert decide(mem, dur, 2, 321_276_620).status == "infeasible"
    # K=3: the relaxation proves 439.96; the whole tree below 446.6 Mbp is searched in ~7M nodes.
    assert list_lower_bound(ts.memory, ts.duration, 3) < 440.0
    assert decide(mem, dur, 3, 446_600_000).status == "infeasible"
    # K=9: the relaxation proves 1161.25; the search proves 1180 in well under a million nodes.
    result = decide(mem, dur, 9, 1_180_000_000)
    assert result.status == "infeasible" and result.nodes < 1_000_000


def test_node_limit_gives_unknown_deterministically():
    ts = genome_taskset("GRCh37")
    mem, dur = _ticks(ts.memory), _ticks(ts.duration)
    first = decide(mem, dur, 4, 584_000_000, node_limit=50_000)
    again = decide(mem, dur, 4, 584_000_000, node_limit=50_000)
    assert first.status == again.status == "unknown"
    assert first.nodes == again.nodes == 50_001


def test_bisection_finds_better_orders_and_proves_optima():
    rng = random.Random(4)
    better = optimal = 0
    for _ in range(12):
        mem, dur = _random_instance(rng, 7)
        ts = TaskSet(tuple(f"t{i}" for i in range(7)), tuple(mem), tuple(dur))
        for k in (2, 3, 4):
            ev = PeakEvaluator(ts, k)
            optimum = ev.batch_peaks(np.array(list(itertools.permutations(range(7)))))[0].min() / GRID
            sequential = ev.peak(ts.sequential_order())
            analytic = list_lower_bound(mem, dur, k)
            if sequential <= analytic:
                continue
            result = exact_lower_bound(mem, dur, k, analytic, sequential, ev.peak)
            if result.order is not None:
                better += 1
                assert result.peak == ev.peak(result.order) < sequential
            assert result.bound is None or result.bound <= optimum
            if result.optimal:  # the order it proves optimal: the better one it found, else the given one
                optimal += 1
                assert (result.peak if result.order is not None else sequential) == pytest.approx(optimum)
            elif result.bound is not None:  # bisection ends within its precision of the best order found
                assert result.bound >= (result.peak or sequential) * (1 - 2e-4) - 1e-6
    assert better > 5 and optimal > 0


def test_optimiser_uses_the_proof():
    rng = random.Random(1)
    mem = tuple(round(rng.uniform(10, 250), 3) for _ in range(10))
    ts = TaskSet(tuple(f"c{i}" for i in range(10)), mem, mem)
    row = optimise(ts, 3, budget=30_000, seed=0)  # 240,000 nodes for the exact search
    analytic = list_lower_bound(mem, mem, 3)
    assert analytic < row.peak - 50  # the relaxation alone leaves a 13 % gap here
    assert row.lower_bound == row.peak  # the branch and bound proves the search's order optimal


def test_without_a_compiler_the_relaxation_stands(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", "/bin/false")
    exact_list_search._library.cache_clear()
    multistart_annealing._library.cache_clear()  # the search without a compiler too: the portfolio
    try:
        assert not exact_list_search.available()
        ts = genome_taskset("GRCh37")
        table = build_table(ts, [5], budget=2_000, progress=False)  # K=5: too many K-subsets for the MILP
        assert table.rows[0].lower_bound == pytest.approx(list_lower_bound(ts.memory, ts.duration, 5), abs=1e-6)
        assert "did not run (no C compiler)" in table.metadata["bound"]
    finally:
        exact_list_search._library.cache_clear()
        multistart_annealing._library.cache_clear()


def _recorded_probes(monkeypatch):
    probed = []
    real = exact_list_search.decide

    def recording(m, d, k, p, node_limit=exact_list_search.PROBE_NODES):
        answer = real(m, d, k, p, node_limit)
        probed.append((p, answer.status, node_limit))
        return answer

    monkeypatch.setattr(exact_list_search, "decide", recording)
    return probed


def _twelve_tasks():
    rng = random.Random(8)
    mem = tuple(round(rng.uniform(10, 250), 3) for _ in range(12))
    ts = TaskSet(tuple(f"c{i}" for i in range(12)), mem, mem)
    ev = PeakEvaluator(ts, 4)
    good = search(ev, "multistart", 100_000, seed=0)  # a good order: no probe finds a better one in 100 nodes
    return mem, ev, good


def _gap_proof(monkeypatch, total_nodes):
    """The twelve tasks' proof from the analytic bound: their memories, the probes made, the result, the
    peak and the 3 % level (the ceiling of peak / 1.03) in ticks."""
    mem, ev, good = _twelve_tasks()
    probed = _recorded_probes(monkeypatch)
    result = exact_lower_bound(mem, mem, 4, list_lower_bound(mem, mem, 4), good.peak, ev.peak, total_nodes=total_nodes)
    peak = int(round(good.peak * GRID))
    return mem, probed, result, peak, -(-peak * 100 // 103)


def test_the_gap_target_gets_its_own_probe_before_the_bisection(monkeypatch):
    # A 12-task instance with the node limit so small that every probe comes back "unknown": the
    # second probe (after the one a tick below the peak) is the 3 % level, with 5x the total of its own.
    mem, probed, result, peak, level = _gap_proof(monkeypatch, 400)
    assert probed[0][0] == peak - 1
    assert probed[1][0] == level and probed[1][2] == 5 * 400  # its own allowance
    assert len(probed) > 3 and all(status == "unknown" for _, status, _ in probed)
    known = int(list_lower_bound(mem, mem, 4) * GRID)
    assert all(known < p < peak for p, _, _ in probed[2:])  # the bisection: unproven level, from the known bound
    assert result.nodes > 400  # the gap probe's nodes come beyond the 400 of the others
    assert result.order is None and result.bound is None


def test_a_proven_gap_level_is_where_the_bisection_starts(monkeypatch):
    # With nodes enough, the 3 % level is proven infeasible first (in about 9,400 nodes, under half of a
    # bisection probe's 20,000); every later probe is above it, and the bound is at least the level.
    _, probed, result, peak, level = _gap_proof(monkeypatch, 80_000)
    assert probed[1][:2] == (level, "infeasible")
    assert all(p > level for p, _, _ in probed[2:]) and len(probed) > 2
    assert result.optimal or result.bound >= level / GRID


def test_a_gap_level_harder_than_a_probe_skips_the_bisection(monkeypatch):
    # The same proof with probes of 5,000 nodes: proving the 3 % level took more than half of that, and
    # every level above it is harder still (the bisection of the test above needs 10,700-11,200 nodes a
    # probe), so no bisection probe is made and the bound is the level.
    mem, probed, result, peak, level = _gap_proof(monkeypatch, 20_000)
    assert [p[:2] for p in probed] == [(peak - 1, "unknown"), (level, "infeasible")]
    assert result.bound == level / GRID and not result.optimal
    # probes of 12,000 nodes: the level's 9,400 are between half a probe and a whole one
    _, probed, result, peak, level = _gap_proof(monkeypatch, 48_000)
    assert [p[:2] for p in probed] == [(peak - 1, "unknown"), (level, "infeasible")]
    # ...while the level itself, given more than 5,000 nodes, decides what a bisection probe cannot
    assert decide(_ticks(mem), _ticks(mem), 4, level, 5_000).status == "unknown"


def test_within_reach_the_proof_of_optimality_comes_before_the_bisection(monkeypatch):
    # A known bound within 1.25 % of the peak (581.088264 is proven by the bisection of the test below):
    # after the first probe, the probe one tick below the peak with its own allowance proves the
    # peak optimal, and no bisection probe is made.
    mem, ev, good = _twelve_tasks()
    probed = _recorded_probes(monkeypatch)
    result = exact_lower_bound(mem, mem, 4, 581.088264, good.peak, ev.peak, total_nodes=60_000)
    peak = int(round(good.peak * GRID))
    assert probed == [(peak - 1, "unknown", 6_000), (peak - 1, "infeasible", 75_000)]
    assert result.optimal and result.bound == peak / GRID


def test_within_reach_the_proof_of_optimality_interrupts_the_bisection(monkeypatch):
    # The same instance: the first probe (8,000 nodes, a tenth of the total) cannot decide the tick
    # below the peak, which needs about 14,000. The bisection proves 577.91 (0.73 % below the peak):
    # within 1.25 % of it, so the probe one tick below the peak comes next, with 1.25 x the total of
    # its own, and proves the peak optimal; the bisection's probes above 577.91 (580.03, 581.09, ...,
    # 11,700 nodes and more each) are not made.
    mem, ev, good = _twelve_tasks()
    probed = _recorded_probes(monkeypatch)
    result = exact_lower_bound(mem, mem, 4, list_lower_bound(mem, mem, 4), good.peak, ev.peak, total_nodes=80_000)
    peak = int(round(good.peak * GRID))
    assert probed[0] == (peak - 1, "unknown", 8_000)
    assert probed[-2][1] == "infeasible" and peak - probed[-2][0] <= 0.0125 * peak
    assert all(peak - p > 0.0125 * peak for p, _, _ in probed[1:-2])  # none within reach before
    assert probed[-1] == (peak - 1, "infeasible", 100_000)
    assert result.optimal and result.bound == peak / GRID and result.nodes < 60_000  # 53,376


def test_an_undecided_proof_of_optimality_lets_the_bisection_go_on(monkeypatch):
    # A total of 8,000 nodes: the probe one tick below the peak gets 10,000 of its own, fewer than the
    # 14,000 it needs. Within reach from the start (580.03 is proven), it comes first, undecided; the
    # bisection then spends the total as it would have, and that probe is not made again at the end.
    mem, ev, good = _twelve_tasks()
    probed = _recorded_probes(monkeypatch)
    result = exact_lower_bound(mem, mem, 4, 580.028529, good.peak, ev.peak, total_nodes=8_000)
    peak = int(round(good.peak * GRID))
    assert probed[:2] == [(peak - 1, "unknown", 800), (peak - 1, "unknown", 10_000)]
    bisection = probed[2:]
    assert bisection and all(580_028_529 < p < peak - 1 and limit <= 2_000 for p, _, limit in bisection)
    assert not result.optimal and result.nodes >= 8_000 + 10_000


def test_the_c_search_refuses_tasks_not_sorted_by_memory():
    # The relaxation builds its items in memory order from the task numbers: decide() sorts them,
    # and the C side checks it (bad arguments: no answer rather than a wrong one).
    mem = [5_000_000, 9_000_000, 7_000_000, 3_000_000]
    lib = exact_list_search._library()
    n = len(mem)
    arr = ctypes.c_longlong * n
    order, nodes = (ctypes.c_int * n)(), ctypes.c_longlong(0)
    pairs = (ctypes.c_uint64 * 1)()
    args = (n, 2, arr(*mem), arr(*mem), 14_000_000, -1, 0, pairs, pairs, 1000, order, ctypes.byref(nodes))
    assert lib.feasible(*args) == -2
    ordered = sorted(mem, reverse=True)
    args = (n, 2, arr(*ordered), arr(*ordered), 14_000_000, -1, 0, pairs, pairs, 1000, order, ctypes.byref(nodes))
    assert lib.feasible(*args) in (0, 1)
    assert decide(mem, mem, 2, 14_000_000).status in ("feasible", "infeasible")


def test_a_probe_already_undecided_is_not_repeated(monkeypatch):
    # Skipping the first probe (the caller's checkpoint made it, undecided) changes nothing else: the
    # same later probes with the same allowances, the same result.
    mem, ev, good = _twelve_tasks()
    peak = int(round(good.peak * GRID))
    ticks = _ticks(mem)
    allowance = exact_list_search.first_probe_nodes(400)
    checkpoint = decide(ticks, ticks, 4, peak - 1, allowance)  # the caller's probe, before the recording
    assert checkpoint.status == "unknown"
    probed = _recorded_probes(monkeypatch)
    known = list_lower_bound(mem, mem, 4)
    whole = exact_lower_bound(mem, mem, 4, known, good.peak, ev.peak, total_nodes=400)
    assert probed[0] == (peak - 1, "unknown", allowance)
    first, rest = probed[0], probed[1:]
    probed.clear()
    undecided = (peak, checkpoint.nodes)
    skipped = exact_lower_bound(mem, mem, 4, known, good.peak, ev.peak, total_nodes=400, undecided_below=undecided)
    assert probed == rest and first not in probed and len(rest) > 2
    assert skipped == whole
    probed.clear()  # at another peak the caller's probe says nothing: the first probe runs
    exact_lower_bound(mem, mem, 4, known, good.peak, ev.peak, total_nodes=400, undecided_below=(peak + 1, 41))
    assert probed[0] == first
