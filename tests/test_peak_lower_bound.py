"""Lower bounds: never above the true optimum (brute force on small instances), tight where proven."""

import itertools
import math
import random

import pytest

from chromosched.static.peak_lower_bound import earliest_tie, list_lower_bound, lower_bound, waves_lower_bound
from chromosched.static.peak_memory import PeakEvaluator
from chromosched.static.task_model import TaskSet, genome_taskset

# An order reaching the K=2 bound under list scheduling, found by `chromosched order` (seed 0).
K2_OPTIMAL = (
    "chr2,chr19,chr22,chr18,chr20,chr7,chr10,chr12,chr5,chr15,chr3,chr17,chr14,chr9,chr11,chr8,"
    "chr6,chr13,chr4,chr16,chr21,chr1"
).split(",")


def _instances(rng, count):
    for _ in range(count):
        n = rng.randint(3, 6)
        kind = rng.random()
        if kind < 0.4:  # small integers: many simultaneous ends and starts
            mem = [float(rng.randint(1, 6)) for _ in range(n)]
            dur = [float(rng.randint(1, 4)) for _ in range(n)]
        elif kind < 0.7:  # memory = duration, as with chromosome lengths
            mem = [float(rng.randint(1, 9)) for _ in range(n)]
            dur = list(mem)
        else:
            mem = [rng.uniform(1, 10) for _ in range(n)]
            dur = [rng.uniform(1, 10) for _ in range(n)]
        yield mem, dur, rng.randint(2, n)


@pytest.mark.parametrize("model", ["list", "waves"])
def test_bound_never_exceeds_brute_force_optimum(model):
    rng = random.Random(3)
    tight = 0
    for mem, dur, k in _instances(rng, 150):
        ts = TaskSet(tuple(f"t{i}" for i in range(len(mem))), tuple(mem), tuple(dur))
        ev = PeakEvaluator(ts, k, model)
        optimum = min(ev.peak(p) for p in itertools.permutations(range(len(mem))))
        bound = lower_bound(ts, k, model)
        assert bound <= optimum, (model, mem, dur, k, bound, optimum)
        tight += bound == optimum
    assert tight > 50  # and it is not a trivial bound


def test_list_bound_proves_k2_optimum_grch37():
    ts = genome_taskset("GRCh37")
    bound = list_lower_bound(ts.memory, ts.duration, 2)
    assert round(bound, 2) == 321.28  # chr2 + chr18
    reached = PeakEvaluator(ts, 2).peak(ts.order_indices(K2_OPTIMAL))
    assert reached == bound
    # The paper's 297.38 is therefore out of reach under list scheduling.
    assert bound > 297.38


def test_list_bounds_below_best_known_grch37():
    ts = genome_taskset("GRCh37")
    # Best orders we know (benchmarks/static_orderings.py); a bound above them would be wrong.
    best_known = {3: 456.52, 5: 719.75, 10: 1356.93}
    for k, peak in best_known.items():
        assert list_lower_bound(ts.memory, ts.duration, k) <= peak
    assert list_lower_bound(ts.memory, ts.duration, 22) == pytest.approx(sum(ts.memory))
    assert list_lower_bound(ts.memory, ts.duration, 1) == pytest.approx(max(ts.memory))


def test_waves_bound_grch37():
    ts = genome_taskset("GRCh37")
    assert round(waves_lower_bound(ts.memory, 2), 2) == 297.38  # chr1 + chr21: the paper's K=2 value
    assert waves_lower_bound(ts.memory, 22) == pytest.approx(sum(ts.memory))


def test_earliest_tie():
    assert earliest_tie([1.0, 2.0, 3.0]) == 3.0  # {1,2} and {3}
    assert earliest_tie([1.0, 2.0, 4.0]) == math.inf
    assert earliest_tie([1.0] * 30) == 0.0  # too many to enumerate: assume ties anywhere
    grch37 = genome_taskset("GRCh37").duration
    # No two workers can free together before ~789 Mbp, so for K >= 4 the no-tie bound applies.
    assert 789 < earliest_tie(grch37) < sum(grch37) / 3


def test_configuration_bound_never_exceeds_brute_force_optimum_for_every_k():
    np = pytest.importorskip("numpy")
    from chromosched.static.configuration_bound import configuration_lower_bound

    rng = random.Random(5)
    raised = proofs = 0
    # Even trials: real-valued lengths, where no two workers free together (the MILP's strict form);
    # odd trials: small integers, full of ties (the two-case form).
    for trial in range(10):
        n = 6 if trial < 8 else 7
        if trial % 2:
            mem = [float(rng.randint(1, 9)) for _ in range(n)]
            dur = list(mem)  # memory = duration, as with chromosome lengths
        else:
            mem = [rng.uniform(1, 10) for _ in range(n)]
            dur = [rng.uniform(1, 10) for _ in range(n)]
        ts = TaskSet(tuple(f"t{i}" for i in range(n)), tuple(mem), tuple(dur))
        perms = np.array(list(itertools.permutations(range(n))))
        for k in range(2, n):
            optimum = int(PeakEvaluator(ts, k).batch_peaks(perms)[0].min()) / 10**6
            analytic = list_lower_bound(mem, dur, k)
            bound = configuration_lower_bound(mem, dur, k, analytic, optimum)
            assert bound is None or bound <= optimum, (mem, dur, k, bound, optimum)
            proofs += bound == optimum
            raised += bound is not None and bound > analytic
    assert raised > 0 and proofs > 0  # it proves more than the analytic bound, optima included


def test_every_bound_below_brute_force_optimum_for_every_k():
    np = pytest.importorskip("numpy")
    rng = random.Random(9)
    for _ in range(40):
        n = 7
        mem = [float(rng.randint(1, 12)) for _ in range(n)]
        dur = list(mem) if rng.random() < 0.5 else [float(rng.randint(1, 12)) for _ in range(n)]
        ts = TaskSet(tuple(f"t{i}" for i in range(n)), tuple(mem), tuple(dur))
        perms = np.array(list(itertools.permutations(range(n))))
        for k in range(1, n + 1):
            optimum = int(PeakEvaluator(ts, k).batch_peaks(perms)[0].min()) / 10**6
            assert lower_bound(ts, k) <= optimum, (mem, dur, k)


def test_bound_hand_checked():
    # K=2, memory = duration = 3, 2, 1: the 3 always overlaps the 2 (if the 3 starts first or second,
    # the other worker is busy with the 2 during part of it; if it starts last, at time 1 or 2, the
    # 2 still runs), so every order peaks at 5; the bound proves it.
    ts = TaskSet(("a", "b", "c"), (3.0, 2.0, 1.0), (3.0, 2.0, 1.0))
    ev = PeakEvaluator(ts, 2)
    assert {ev.peak(p) for p in itertools.permutations(range(3))} == {5.0}
    assert list_lower_bound(ts.memory, ts.duration, 2) == 5.0
    # One worker: the largest task; as many workers as tasks: everything at once.
    assert list_lower_bound(ts.memory, ts.duration, 1) == 3.0
    assert list_lower_bound(ts.memory, ts.duration, 3) == 6.0
