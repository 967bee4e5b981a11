"""Exact waves optimum: equal to exhaustive enumeration on small inputs, proven on GRCh37/38."""

import itertools
import random

import pytest

from chromosched.static.optimiser import optimise
from chromosched.static.peak_memory import PeakEvaluator
from chromosched.static.task_model import genome_taskset
from chromosched.static.waves_partition import block_sizes, solve_waves


def brute_force(memory, workers):
    """Smallest waves peak over all orders (every permutation: fine for n <= 8)."""
    n = len(memory)
    return min(
        max(sum(memory[i] for i in order[b : b + workers]) for b in range(0, n, workers))
        for order in itertools.permutations(range(n))
    )


def waves_peak(memory, order, workers):
    return max(sum(memory[i] for i in order[b : b + workers]) for b in range(0, len(order), workers))


def test_block_sizes():
    assert block_sizes(22, 4) == [4, 4, 4, 4, 4, 2]
    assert block_sizes(22, 11) == [11, 11]
    assert block_sizes(5, 7) == [5]
    assert block_sizes(0, 3) == []


@pytest.mark.parametrize("seed", range(12))
def test_matches_exhaustive_enumeration(seed):
    rng = random.Random(seed)
    n = rng.randint(3, 8)
    memory = [rng.choice([rng.randint(1, 20), rng.randint(1, 1000)]) for _ in range(n)]
    for workers in range(1, n + 1):
        res = solve_waves(memory, workers)
        assert res.proven and res.order is not None
        assert sorted(res.order) == list(range(n))
        assert waves_peak(memory, res.order, workers) == res.peak == brute_force(memory, workers)


def test_incumbent_only_strictly_better_and_node_limit():
    memory = [9, 8, 7, 6, 5, 4, 3, 2, 1]
    best = solve_waves(memory, 3)
    assert best.peak == 15 and best.proven
    # An incumbent that is already optimal: proven, nothing better to return.
    same = solve_waves(memory, 3, incumbent=15)
    assert same.order is None and same.peak == 15 and same.proven
    # A node limit too small for a proof: the answer says so.
    cut = solve_waves(PeakEvaluator(genome_taskset("GRCh37"), 6, "waves").mem, 6, node_limit=50)
    assert not cut.proven and cut.nodes == 51


@pytest.mark.parametrize("genome", ["GRCh37", "GRCh38"])
def test_optimiser_proves_waves_optimum_and_never_loses_to_hill_climbing(genome):
    tasks = genome_taskset(genome)
    for k in range(2, 11):
        res = optimise(tasks, k, "waves", budget=20_000, seed=0, with_hill_climb=True)
        assert res.method == "anneal+bnb" and res.gap == 0 and res.peak == res.lower_bound
        assert res.peak <= res.hill_climb_peak
        assert PeakEvaluator(tasks, k, "waves").peak(tasks.order_indices(res.order)) == res.peak
