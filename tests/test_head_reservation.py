"""Keeping memory for the longest ready job (chromosched.dynamic.head_reservation), by hand."""

from __future__ import annotations

import math

import numpy as np

from chromosched.dynamic.head_reservation import plan_head
from chromosched.dynamic.packers import KnapsackPacker, Limits
from chromosched.dynamic.ready_jobs import _pack_around_head


def arrays(*values):
    return [np.asarray(v, dtype=float) for v in values]


def test_the_head_starts_first_when_it_fits():
    mem, length = arrays([100, 300, 50], [2.0, 7.0, 1.0])
    plan = plan_head(mem, length, length, free_mem=400, running_ends=[], now=0.0)
    assert plan.head == 1 and plan.fits


def test_reserved_start_and_what_may_run_before_it():
    # Head: 300 MB for 7 s; 200 MB free now; running: 150 MB ending at t=4, 100 MB at t=9.
    mem, length = arrays([300, 120, 60, 180], [7.0, 3.0, 9.0, 2.0])
    plan = plan_head(mem, length, length, free_mem=200, running_ends=[(4.0, 150.0, 0.0), (9.0, 100.0, 0.0)], now=1.0)
    assert plan.head == 2  # the longest job (9 s) is the head; 60 MB fits: it starts first
    assert plan.fits
    mem, length = arrays([300, 120, 60, 180], [7.0, 3.0, 2.0, 2.0])
    plan = plan_head(mem, length, length, free_mem=200, running_ends=[(4.0, 150.0, 0.0), (9.0, 100.0, 0.0)], now=1.0)
    assert plan.head == 0 and not plan.fits
    assert plan.at == 4.0 and plan.spare == 200 + 150 - 300  # it fits when the 150 MB job ends
    assert plan.short.tolist() == [False, True, True, True]  # 1+3, 1+2, 1+2 <= 4


def test_an_overdue_job_is_expected_to_run_half_its_age_again():
    mem, length = arrays([300, 120], [7.0, 3.0])
    # Started at t=0, predicted to end at t=4, still running at t=10: expected to end at t=15.
    plan = plan_head(mem, length, length, free_mem=200, running_ends=[(4.0, 150.0, 0.0)], now=10.0)
    assert plan.at == 15.0 and plan.short.tolist() == [False, True]


def test_no_reservation_without_a_promise():
    mem, length = arrays([300, 120], [7.0, 3.0])
    assert plan_head(mem, length, length, 200, [(math.inf, 500.0, 0.0)], 0.0) is None  # end unknown
    assert plan_head(mem, length, length, 200, [(5.0, 50.0, 0.0)], 0.0) is None  # never enough
    nan = np.array([np.nan, np.nan])
    assert plan_head(mem, nan, nan, 200, [(5.0, 500.0, 0.0)], 0.0) is None  # no runtimes known


def test_backfill_never_delays_the_head():
    """Random rounds: whatever is packed around a head that does not fit, the memory still held at
    the head's reserved start by the chosen jobs (those predicted to run past it) fits beside it."""
    rng = np.random.default_rng(7)
    packer = KnapsackPacker()
    checked = 0
    for _ in range(300):
        n = int(rng.integers(2, 12))
        mem = rng.uniform(10, 400, n)
        runtime = rng.uniform(0.5, 10, n)
        running = [(float(e), float(m), 0.0) for e, m in zip(rng.uniform(0, 8, 3), rng.uniform(50, 300, 3))]
        free = float(rng.uniform(0, 400))
        plan = plan_head(mem, runtime, runtime, free, running, now=0.0)
        if plan is None or plan.fits:
            continue
        cores = np.ones(n, dtype=np.int64)
        picked = _pack_around_head(plan, packer, mem, cores, cores * 0, Limits(mem=free), None, {})
        assert plan.head not in picked
        assert mem[picked].sum() <= free + 1e-6
        past = [i for i in picked if runtime[i] > plan.at]
        freed = sum(m for e, m, _ in running if e <= plan.at)
        assert (
            free - mem[picked].sum() + freed + mem[[i for i in picked if i not in past]].sum() >= mem[plan.head] - 1e-6
        )
        checked += 1
    assert checked > 50
