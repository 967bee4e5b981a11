import itertools
import random

import pytest

from chromosched.errors import ChromoschedError
from chromosched.packers import (
    FirstFitPacker,
    GreedyPacker,
    KnapsackPacker,
    Limits,
    PackItem,
    selection_fits,
)


def brute_force(items, limits, objective):
    best, best_set = -1.0, ()
    n = len(items)
    for k in range(n + 1):
        for combo in itertools.combinations(range(n), k):
            if selection_fits(items, combo, limits):
                val = sum(objective(items[i]) for i in combo)
                if val > best + 1e-9:
                    best, best_set = val, combo
    return best, best_set


def random_instance(rng, n, grid, with_cores):
    items = [
        PackItem(f"j{i}", float(rng.randint(1, grid // 2)), rng.randint(1, 4) if with_cores else 0)
        for i in range(n)
    ]
    limits = Limits(
        mem=float(grid),
        cores=rng.randint(2, 8) if with_cores else None,
        max_items=rng.choice([None, 2, 3, 5]),
    )
    return items, limits


@pytest.mark.parametrize("with_cores", [False, True])
def test_knapsack_memory_optimal_against_brute_force(with_cores):
    rng = random.Random(7 if with_cores else 3)
    grid = 60
    # Integer memories and a memory limit equal to the grid: one cell = 1 unit, so the DP is exact.
    packer = KnapsackPacker(grid=grid, grid_1d=grid)
    for _ in range(60):
        items, limits = random_instance(rng, rng.randint(1, 9), grid, with_cores)
        chosen = packer.select(items, limits)
        assert selection_fits(items, chosen, limits)
        best, _ = brute_force(items, limits, lambda it: it.mem)
        assert sum(items[i].mem for i in chosen) == pytest.approx(best)


def test_knapsack_values_optimal_against_brute_force():
    rng = random.Random(11)
    grid = 50
    packer = KnapsackPacker(grid=grid, grid_1d=grid)
    for _ in range(60):
        n = rng.randint(1, 8)
        items = [PackItem(i, float(rng.randint(1, 30)), rng.randint(0, 3), 0, rng.uniform(0.1, 10)) for i in range(n)]
        limits = Limits(mem=float(grid), cores=rng.choice([None, 3, 6]), max_items=rng.choice([None, 2, 4]))
        chosen = packer.select(items, limits)
        assert selection_fits(items, chosen, limits)
        best, _ = brute_force(items, limits, lambda it: it.value)
        # _fill may add items beyond the DP optimum only when they fit; never below the optimum.
        assert sum(items[i].value for i in chosen) >= best - 1e-9


@pytest.mark.parametrize("packer", [KnapsackPacker(), KnapsackPacker(grid=64, grid_1d=64), GreedyPacker(), FirstFitPacker()])
def test_packers_never_exceed_any_limit(packer):
    rng = random.Random(2024)
    for _ in range(300):
        n = rng.randint(0, 40)
        items = [
            PackItem(i, rng.uniform(0.0, 120.0), rng.randint(0, 6), rng.randint(0, 2), rng.choice([None, rng.uniform(0, 5)]))
            for i in range(n)
        ]
        if any(it.value is not None for it in items):
            items = [PackItem(it.key, it.mem, it.cores, it.gpus, it.value if it.value is not None else 1.0) for it in items]
        limits = Limits(
            mem=rng.uniform(0.0, 400.0),
            cores=rng.choice([None, rng.randint(0, 16)]),
            gpus=rng.choice([None, rng.randint(0, 3)]),
            max_items=rng.choice([None, rng.randint(0, 10)]),
        )
        chosen = packer.select(items, limits)
        assert selection_fits(items, chosen, limits), (items, limits, chosen)


def test_knapsack_fills_more_memory_than_greedy_when_it_matters():
    items = [PackItem("a", 40.0), PackItem("b", 35.0), PackItem("c", 60.0)]
    limits = Limits(mem=100.0)
    greedy = GreedyPacker().select(items, limits)
    knap = KnapsackPacker().select(items, limits)
    assert sorted(greedy) == [0, 1]  # 75 used
    assert sorted(knap) == [0, 2]  # 100 used


def test_knapsack_prefers_earlier_items_on_ties():
    items = [PackItem("first", 50.0), PackItem("second", 50.0), PackItem("third", 50.0)]
    assert KnapsackPacker().select(items, Limits(mem=100.0)) == [0, 1]


def test_knapsack_many_identical_jobs_bundles():
    items = [PackItem(i, 10.0, 1) for i in range(1000)]
    chosen = KnapsackPacker().select(items, Limits(mem=95.0, cores=64))
    assert len(chosen) == 9 and selection_fits(items, chosen, Limits(mem=95.0, cores=64))
    chosen = KnapsackPacker().select(items, Limits(mem=1000.0, cores=7))
    assert len(chosen) == 7


def test_exact_fit_survives_grid_rounding():
    # 3 x 33.3333 fits 100 exactly in reals but not after rounding up on a coarse grid.
    items = [PackItem(i, 100.0 / 3) for i in range(3)]
    chosen = KnapsackPacker(grid=8, grid_1d=8).select(items, Limits(mem=100.0))
    assert len(chosen) == 3


def test_bad_input_is_a_clear_error():
    with pytest.raises(ChromoschedError, match="job 'x': memory must be a finite number"):
        KnapsackPacker().select([PackItem("x", float("nan"))], Limits(mem=10.0))
    with pytest.raises(ChromoschedError, match="free memory"):
        GreedyPacker().select([], Limits(mem=-1.0))


def test_array_interface_matches_items():
    import numpy as np

    rng = random.Random(9)
    items = [PackItem(i, rng.uniform(1, 50), rng.randint(1, 4)) for i in range(200)]
    limits = Limits(mem=300.0, cores=20)
    packer = KnapsackPacker()
    a = packer.select(items, limits)
    b = packer.select_arrays(np.array([it.mem for it in items]), np.array([it.cores for it in items]), limits=limits)
    assert a == b and selection_fits(items, a, limits)
