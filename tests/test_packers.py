import itertools
import random

import numpy as np
import pytest

from chromosched.dynamic.packers import (
    FirstFitPacker,
    GreedyPacker,
    KnapsackPacker,
    Limits,
    PackItem,
    selection_fits,
)
from chromosched.errors import ChromoschedError


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
        PackItem(f"j{i}", float(rng.randint(1, grid // 2)), rng.randint(1, 4) if with_cores else 0) for i in range(n)
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


@pytest.mark.parametrize(
    "packer", [KnapsackPacker(), KnapsackPacker(grid=64, grid_1d=64), GreedyPacker(), FirstFitPacker()]
)
def test_packers_never_exceed_any_limit(packer):
    rng = random.Random(2024)
    for _ in range(300):
        n = rng.randint(0, 40)
        items = [
            PackItem(
                i, rng.uniform(0.0, 120.0), rng.randint(0, 6), rng.randint(0, 2), rng.choice([None, rng.uniform(0, 5)])
            )
            for i in range(n)
        ]
        if any(it.value is not None for it in items):
            items = [
                PackItem(it.key, it.mem, it.cores, it.gpus, it.value if it.value is not None else 1.0) for it in items
            ]
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


def brute_force_extra(items, limits):
    best = -1.0
    for k in range(len(items) + 1):
        for combo in itertools.combinations(range(len(items)), k):
            if selection_fits(items, combo, limits):
                best = max(best, sum(items[i].mem for i in combo))
    return best


def test_knapsack_packs_other_resources_optimally():
    # GPU jobs and CPU jobs under one budget: memory, cores, gpu count and gpu memory (a large,
    # fractional resource that gets coarse cells) all bind; undeclared resources count as 0.
    rng = random.Random(5)
    packer = KnapsackPacker(grid=60, grid_1d=60)
    for _ in range(60):
        items = []
        for i in range(rng.randint(1, 9)):
            extra = {}
            if rng.random() < 0.5:
                extra = {"gpu": rng.randint(1, 2), "gpu_mem_mb": rng.uniform(1000.0, 40000.0)}
            items.append(PackItem(i, float(rng.randint(1, 30)), rng.randint(1, 4), 0, None, extra or None))
        limits = Limits(mem=60.0, cores=rng.choice([None, 6]), extra={"gpu": rng.randint(0, 2), "gpu_mem_mb": 80000.0})
        chosen = packer.select(items, limits)
        assert selection_fits(items, chosen, limits)
        # Coarse gpu-memory cells may cost a little fill, never a violation; exact otherwise.
        best = brute_force_extra(items, limits)
        got = sum(items[i].mem for i in chosen)
        assert got <= best + 1e-9
        coarse = Limits(
            mem=60.0, cores=limits.cores, extra={"gpu": limits.extra["gpu"], "gpu_mem_mb": 80000.0 * (1 - 1 / 32)}
        )
        assert got >= brute_force_extra(items, coarse) - 1e-9 or got == best


@pytest.mark.parametrize("packer", [KnapsackPacker(), GreedyPacker(), FirstFitPacker()])
def test_one_gpu_serialises_gpu_jobs(packer):
    items = [
        PackItem("gpu-a", 10.0, 1, 0, None, {"gpu": 1}),
        PackItem("gpu-b", 10.0, 1, 0, None, {"gpu": 1}),
        PackItem("cpu", 10.0, 1),
    ]
    chosen = packer.select(items, Limits(mem=100.0, cores=8, extra={"gpu": 1}))
    assert sorted(chosen) in ([0, 2], [1, 2])
    # A resource not given in the limits is not constrained.
    assert sorted(packer.select(items, Limits(mem=100.0, cores=8))) == [0, 1, 2]


def test_extra_resources_in_array_interface_and_never_overfilled():
    import numpy as np

    rng = np.random.default_rng(3)
    n = 2000
    mem = rng.uniform(100, 8000, n)
    cores = rng.integers(1, 9, n)
    gpu = (rng.random(n) < 0.3).astype(int)
    gpu_mem = gpu * rng.uniform(2000, 40000, n)
    limits = Limits(mem=64000.0, cores=32, extra={"gpu": 2, "gpu_mem_mb": 80000.0})
    for packer in (KnapsackPacker(), GreedyPacker(), FirstFitPacker()):
        chosen = packer.select_arrays(mem, cores, limits=limits, extra={"gpu": gpu, "gpu_mem_mb": gpu_mem})
        assert len(set(chosen)) == len(chosen) and chosen
        assert mem[chosen].sum() <= 64000.0 and cores[chosen].sum() <= 32
        assert gpu[chosen].sum() <= 2 and gpu_mem[chosen].sum() <= 80000.0


def test_knapsack_large_ready_set_is_a_valid_near_full_packing():
    import numpy as np

    rng = np.random.default_rng(1)
    mem = rng.integers(1000, 32000, 10_000).astype(float)
    cores = rng.choice([1, 2, 4, 8], 10_000)
    limits = Limits(mem=256000.0, cores=64)
    chosen = KnapsackPacker().select_arrays(mem, cores, limits=limits)
    assert len(set(chosen)) == len(chosen)
    assert mem[chosen].sum() <= 256000.0 and cores[chosen].sum() <= 64
    assert mem[chosen].sum() >= 0.999 * 256000.0


def _value_table(weights, values, lims):
    """Best value at every state (usage vector) of a 0-1 knapsack over integer cell weights."""
    shape = tuple(lim + 1 for lim in lims)
    dp = np.full(shape, -np.inf)
    dp[(0,) * len(shape)] = 0.0
    for w, v in zip(weights.tolist(), values.tolist()):
        if any(x > lim for x, lim in zip(w, lims)):
            continue
        src = tuple(slice(0, s - x) for x, s in zip(w, shape))
        dst = tuple(slice(x, s) for x, s in zip(w, shape))
        dp[dst] = np.maximum(dp[dst], dp[src] + v)
    return dp


def _within(table):
    """Best value using at most each state's usage (a running maximum along every axis)."""
    for axis in range(table.ndim):
        table = np.maximum.accumulate(table, axis=axis)
    return table


def test_value_dp_dominance_keeps_every_state_value():
    """The jobs the value DP drops (dominated by as many jobs as any packing holds, or by their own
    class) change no capacity's best value: DP tables over all jobs and over the kept ones are equal."""
    rng = np.random.default_rng(5)
    dropped = 0
    for trial in range(40):
        n = int(rng.integers(5, 700))
        cores_lim = int(rng.integers(1, 7))
        grid = int(rng.integers(8, 40))
        mem = rng.integers(1, grid // 2 + 2, n)
        if trial % 2:
            values = np.round(mem * rng.uniform(0.5, 1.0, n), 1)  # values follow memory, some ties
        else:
            values = rng.integers(1, 4, n).astype(float)  # heavy ties
        if trial % 3 == 0:
            weights, lims = mem[:, None], (grid,)
        else:
            weights, lims = np.stack([rng.integers(0, 3, n), mem], axis=1), (cores_lim, grid)
        kept = KnapsackPacker._undominated(weights, values, lims)
        assert np.all(np.diff(kept) > 0)
        dropped += n - len(kept)
        np.testing.assert_array_equal(
            _within(_value_table(weights[kept], values[kept], lims)), _within(_value_table(weights, values, lims))
        )
    assert dropped > 200  # the check above saw real drops


def _best_one_or_two(mem, cores, values, limits):
    """Brute force over every job and every pair (exact sizes)."""
    n = len(mem)
    best = 0.0
    for i in range(n):
        if mem[i] <= limits.mem and (limits.cores is None or cores[i] <= limits.cores):
            best = max(best, values[i])
        for j in range(i + 1, n):
            if limits.max_items is not None and limits.max_items < 2:
                continue
            if mem[i] + mem[j] <= limits.mem * (1 + 1e-12) and (
                limits.cores is None or cores[i] + cores[j] <= limits.cores
            ):
                best = max(best, values[i] + values[j])
    return best


def test_at_most_two_jobs_best_pair_is_exact():
    """With room for at most two jobs (two or three cores free, a job count of 2, or memory) the
    value knapsack takes the best job or pair at their exact sizes: equal to brute force, and at
    least what the DP on its rounded-up grid finds."""
    rng = np.random.default_rng(9)
    packer = KnapsackPacker()
    applied = 0
    for trial in range(120):
        n = int(rng.integers(2, 40))
        mem = rng.uniform(100, 5000, n)
        cores = rng.integers(1, 4, n)
        values = np.round(mem * rng.uniform(0.3, 1.0, n), -1) if trial % 2 else rng.integers(1, 5, n).astype(float)
        limits = Limits(
            mem=float(rng.uniform(200, 9000)),
            cores=int(rng.integers(1, 5)),
            max_items=[None, 2, 3][trial % 3],
        )
        chosen = packer.select_arrays(mem, cores, limits=limits, values=values)
        assert len(set(chosen)) == len(chosen)
        assert mem[chosen].sum() <= limits.mem * (1 + 1e-12) and cores[chosen].sum() <= limits.cores
        from chromosched.dynamic.packers import _Arrays

        arr = _Arrays.from_arrays(mem, cores, None, None, limits, values)
        cand = np.flatnonzero(arr.alone_ok(limits))
        if len(cand) < 2 or not KnapsackPacker._at_most_two(arr, cand, limits):
            continue
        applied += 1
        assert len(chosen) <= 2
        assert values[chosen].sum() == pytest.approx(_best_one_or_two(mem, cores, values, limits))
        grid_dp = packer._value_dp(arr, cand, packer._dimensions(arr, cand, limits))
        assert values[chosen].sum() >= values[grid_dp].sum() - 1e-9
    assert applied > 40


def test_best_pair_among_thousands_of_jobs():
    rng = np.random.default_rng(3)
    n = 1500
    mem = rng.uniform(500, 32000, n)
    cores = rng.choice([1, 2, 4, 8], n)
    values = mem * rng.uniform(0.5, 0.9, n)
    limits = Limits(mem=30000.0, cores=2)  # two 1-core jobs, or one 2-core job
    chosen = KnapsackPacker().select_arrays(mem, cores, limits=limits, values=values)
    fits = (mem[:, None] + mem[None, :] <= limits.mem) & (cores[:, None] + cores[None, :] <= limits.cores)
    np.fill_diagonal(fits, False)
    pair = np.where(fits, values[:, None] + values[None, :], -np.inf).max()
    single = values[(mem <= limits.mem) & (cores <= limits.cores)].max()
    assert values[chosen].sum() == pytest.approx(max(pair, single))


@pytest.mark.parametrize("cores", [2, 3])
def test_value_knapsack_breaks_value_ties_towards_the_fuller_packing(cores):
    """Equally valuable packings (one measured job: every job is predicted alike) are broken
    towards the one that uses more memory, as the memory knapsack would (by the DP with three
    cores free, by the exact pair search with two)."""
    mem = np.array([5.0, 5.0, 5.0, 25.0, 25.0, 25.0])
    chosen = KnapsackPacker().select_arrays(
        mem, np.ones(6, dtype=int), limits=Limits(mem=80.0, cores=cores), values=np.ones(6)
    )
    assert sorted(chosen) == [3, 4, 5][:cores]
