"""Peak-memory evaluation: hand-checked cases, the paper's sequential column, evaluator vs sweep."""

import itertools
import random

import pytest

from chromosched.errors import ChromoschedError
from chromosched.static.peak_memory import PeakEvaluator, list_schedule, peak_memory, schedule, waves_schedule
from chromosched.static.task_model import TaskSet, genome_taskset

PAPER_SEQUENTIAL = {
    2: 492.45,
    3: 690.47,
    4: 881.63,
    5: 1062.54,
    6: 1233.66,
    7: 1392.80,
    8: 1539.16,
    9: 1680.37,
    10: 1815.91,
}


def tasks(mem, dur):
    return TaskSet(tuple(f"t{i}" for i in range(len(mem))), tuple(map(float, mem)), tuple(map(float, dur)))


def test_list_schedule_hand_checked():
    # K=2, order 0,1,2: t0 [0,1), t1 [0,2), t2 starts at 1 on t0's worker: [1,4).
    # memory: [0,1) 3+2=5, [1,2) 2+1=3, [2,4) 1 -> peak 5.
    s = list_schedule([3, 2, 1], [1, 2, 3], [0, 1, 2], 2)
    assert s.start == (0, 0, 1) and s.end == (1, 2, 4) and s.worker == (0, 1, 0)
    assert s.peak == 5 and s.makespan == 4
    # order 2,1,0: t2 [0,3), t1 [0,2), t0 [2,3): [0,2) 1+2=3, [2,3) 1+3=4 -> peak 4.
    s = list_schedule([3, 2, 1], [1, 2, 3], [2, 1, 0], 2)
    assert s.start == (2, 0, 0) and s.peak == 4


def test_half_open_intervals_do_not_overlap():
    # t0 and t1 end at 1 exactly when t2 starts: peak is 5+5, never 15.
    assert peak_memory(tasks([5, 5, 5], [1, 1, 1]), [0, 1, 2], 2) == 10


def test_worker_freed_without_work_is_not_counted():
    # K=3: t0,t1 end at 1; t3 (memory 10) starts at 1; t1's worker stays idle; t2 still runs.
    ts = tasks([1, 1, 1, 10], [1, 1, 2, 1])
    assert peak_memory(ts, [0, 1, 2, 3], 3) == 11
    assert PeakEvaluator(ts, 3).peak([0, 1, 2, 3]) == 11


def test_waves_hand_checked():
    # K=2 blocks {t0,t1} then {t2,t3}; the second block starts when t1 (3 long) ends.
    s = waves_schedule([1, 5, 2, 2], [1, 3, 1, 1], [0, 1, 2, 3], 2)
    assert s.start == (0, 0, 3, 3) and s.peak == 6 and s.makespan == 4
    # list scheduling of the same order lets t2 start at 1 beside t1: 5 + 2 = 7.
    assert list_schedule([1, 5, 2, 2], [1, 3, 1, 1], [0, 1, 2, 3], 2).peak == 7
    # A trailing partial block.
    assert waves_schedule([4, 3, 2], [1, 1, 1], [0, 1, 2], 2).peak == 7


def test_more_workers_than_tasks_and_one_worker():
    ts = tasks([3, 2, 1], [1, 2, 3])
    for model in ("list", "waves"):
        assert peak_memory(ts, [0, 1, 2], 5, model) == 6
        assert PeakEvaluator(ts, 5, model).peak([2, 0, 1]) == 6
        assert peak_memory(ts, [1, 2, 0], 1, model) == 3


@pytest.mark.parametrize("workers", sorted(PAPER_SEQUENTIAL))
def test_sequential_column_exact(workers):
    ts = genome_taskset("GRCh37")
    order = ts.sequential_order()
    assert round(peak_memory(ts, order, workers), 2) == PAPER_SEQUENTIAL[workers]
    assert round(PeakEvaluator(ts, workers).peak(order), 2) == PAPER_SEQUENTIAL[workers]


@pytest.mark.parametrize("model", ["list", "waves"])
def test_fast_evaluator_matches_event_sweep(model):
    rng = random.Random(11)
    ts = genome_taskset("GRCh38")
    for workers in (1, 2, 3, 5, 8, 13, 21, 22, 30):
        ev = PeakEvaluator(ts, workers, model)
        for _ in range(40):
            order = list(range(22))
            rng.shuffle(order)
            assert ev.peak(order) == peak_memory(ts, order, workers, model)
    # Small integer instances are full of simultaneous ends and starts.
    for _ in range(400):
        n, k = rng.randint(1, 8), rng.randint(1, 4)
        ts = tasks([rng.randint(1, 5) for _ in range(n)], [rng.randint(1, 3) for _ in range(n)])
        order = list(range(n))
        rng.shuffle(order)
        assert PeakEvaluator(ts, k, model).peak(order) == peak_memory(ts, order, k, model)


def test_evaluator_counts_evaluations():
    ev = PeakEvaluator(tasks([1, 2, 3], [1, 1, 1]), 2)
    for p in itertools.permutations(range(3)):
        ev.peak_ticks(list(p))
    assert ev.evaluations == 6


def test_bad_arguments():
    ts = tasks([1, 2], [1, 1])
    with pytest.raises(ChromoschedError, match="permutation"):
        peak_memory(ts, [0, 0], 2)
    with pytest.raises(ChromoschedError, match="workers"):
        peak_memory(ts, [0, 1], 0)
    with pytest.raises(ChromoschedError, match="unknown model 'wave'"):
        schedule(ts, [0, 1], 2, "wave")
    with pytest.raises(ChromoschedError, match="duration must be a positive"):
        tasks([1, 2], [1, 0])


def test_waves_block_sums():
    ev = PeakEvaluator(tasks([4, 3, 2, 1, 5], [1, 1, 1, 1, 1]), 2, "waves")
    assert [ev.to_units(s) for s in ev.block_sums([0, 1, 2, 3, 4])] == [7, 3, 5]
    assert ev.evaluations == 1


def test_batch_peaks_equal_the_scalar_loop():
    np = pytest.importorskip("numpy")
    rng = random.Random(11)
    grch37 = genome_taskset("GRCh37")
    for k in (1, 2, 3, 7, 21, 22):
        ev = PeakEvaluator(grch37, k)
        orders = [rng.sample(range(22), 22) for _ in range(40)]
        peaks, _ = ev.batch_peaks(np.array(orders))
        assert peaks.tolist() == [ev.peak_ticks(o) for o in orders]
    # Small integers: many simultaneous ends and starts (the tie rules must agree exactly).
    for _ in range(200):
        n = rng.randint(2, 7)
        ts = tasks([rng.randint(1, 5) for _ in range(n)], [rng.randint(1, 3) for _ in range(n)])
        ev = PeakEvaluator(ts, rng.randint(1, n))
        orders = [rng.sample(range(n), n) for _ in range(10)]
        peaks, _ = ev.batch_peaks(np.array(orders))
        assert peaks.tolist() == [ev.peak_ticks(o) for o in orders]
    ev = PeakEvaluator(tasks([1], [1]), 1)
    assert ev.evaluations == 0
    ev.batch_peaks(np.zeros((5, 1), dtype=int))
    assert ev.evaluations == 5  # each row is one evaluation (budgets compare batched and scalar searches)


def test_batch_excess_area_hand_checked():
    np = pytest.importorskip("numpy")
    # Hand-checked: K=2, order 0,1,2 of memory [3,2,1], duration [1,2,3]: levels 5 on [0,1), 3 on [1,2),
    # 1 on [2,4). Excess above 2 (in grid ticks): 3*1 + 1*1 = 4 units of memory x time.
    ev = PeakEvaluator(tasks([3, 2, 1], [1, 2, 3]), 2)
    peaks, excess = ev.batch_peaks(np.array([[0, 1, 2]]), threshold=2 * 10**6)
    assert peaks.tolist() == [5 * 10**6] and excess[0] == pytest.approx(4 * 10**12)
    _, excess = ev.batch_peaks(np.array([[0, 1, 2]]), threshold=5 * 10**6)
    assert excess[0] == 0  # nothing above the peak
    # The spread is the integral of (level / scale)^power: 5^2*1 + 3^2*1 + 1^2*2 = 36 at scale 1 unit.
    _, spread = ev.batch_peaks(np.array([[0, 1, 2]]), scale=10**6, power=2)
    assert spread[0] == pytest.approx(36 * 10**6)
    with pytest.raises(ChromoschedError, match="list model"):
        PeakEvaluator(tasks([1, 2], [1, 2]), 1, "waves").batch_peaks(np.array([[0, 1]]))
