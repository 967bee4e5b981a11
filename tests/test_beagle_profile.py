"""The Beagle minimum-heap profiler: design, search, and a resumable table (real Beagle on tiny data)."""

import math
from pathlib import Path

import pytest

from chromosched_pipeline.imputation.beagle import BeagleResult
from chromosched_pipeline.imputation.beagle_design import TINY_BASE, TINY_SPACE, DesignSpace, interleave, make_design
from chromosched_pipeline.imputation.beagle_heap_search import Attempt, find_min_heap, probe_heaps, refine_bracket
from chromosched_pipeline.imputation.beagle_profile import probe, probe_heap_mb, profile, refine
from chromosched_pipeline.imputation.beagle_runs_table import COLUMNS, read_table, write_table


def test_design_covers_the_space_and_decouples_marker_counts():
    space = DesignSpace()
    points = make_design(64, seed=11, split="fit", space=space, n_common=20000)
    assert len({p.design_id for p in points}) == 64
    for p in points:
        assert space.threads[0] <= p.threads <= space.threads[1]
        assert space.ref_variants[0] <= p.ref_variants <= space.ref_variants[1]
        assert p.target_variants <= p.ref_variants
    ratio = [p.target_variants / p.ref_variants for p in points]
    assert max(ratio) / min(ratio) > 5  # array density varies on its own axis
    held = make_design(16, seed=12, split="heldout", space=space, n_common=20000)
    order = interleave(points, held)
    assert len(order) == 80 and {p.split for p in order[:4]} == {"fit", "heldout"}


def fake_beagle(true_min, gc_factor=1.0):
    calls = []

    def run_at(heap, timeout):
        calls.append(heap)
        ok = heap >= true_min
        result = BeagleResult(
            command=[],
            exit_code=0 if ok else 3,
            heap_oom=not ok,
            killed=False,
            wall_s=1.0,
            peak_rss_mb=heap + 60.0,
            heap_mb=heap,
        )
        return Attempt(heap, result, true_min * gc_factor if ok else heap - 2, False)

    return run_at, calls


@pytest.mark.parametrize("true_min, first, gc", [(40, 64, 1.2), (300, 64, 0.9), (12, 200, 0.8), (95, 96, 1.0)])
def test_search_brackets_the_minimum_within_tolerance(true_min, first, gc):
    run_at, calls = fake_beagle(true_min, gc)
    outcome = find_min_heap(run_at, first)
    assert outcome.status == "ok"
    assert outcome.min_heap_mb >= true_min > outcome.max_fail_mb
    assert outcome.min_heap_mb / outcome.max_fail_mb <= 1.09 or outcome.min_heap_mb - outcome.max_fail_mb <= 2
    assert len(calls) <= 10


def test_search_uses_a_good_live_set_prediction_to_finish_quickly():
    run_at, calls = fake_beagle(100, gc_factor=1.25)
    outcome = find_min_heap(run_at, 150, predict_from_gc=lambda g: g / 1.25)
    assert outcome.min_heap_mb >= 100 > outcome.max_fail_mb
    assert len(calls) == 3  # the generous run and two probes straddling the prediction


@pytest.mark.parametrize("true_min, lo, hi", [(37, 36, 39), (100, 92, 100), (51, 40, 60)])
def test_refine_narrows_a_bracket_and_rechecks_its_upper_end(true_min, lo, hi):
    run_at, calls = fake_beagle(true_min)
    new_lo, new_hi, best, attempts, status = refine_bracket(run_at, lo, hi, timeout_s=60, rtol=0.02, atol=1)
    assert calls[0] == hi  # the succeeding end is re-run first
    assert status == "ok" and best.heap_mb == new_hi
    assert new_lo < true_min <= new_hi and (new_hi - new_lo <= 1 or new_hi / new_lo <= 1.02)


def test_refine_reports_a_bracket_that_no_longer_reproduces():
    run_at, calls = fake_beagle(45)
    new_lo, new_hi, _, _, status = refine_bracket(run_at, 36, 39, timeout_s=60, rtol=0.02, atol=1)
    assert status == "moved" and new_lo < 45 <= new_hi and calls[0] == 39


def flaky_beagle(true_min, fail_every):
    """Succeeds at or above ``true_min``, except every ``fail_every``-th run (the minimum varies)."""
    calls = []
    inner, _ = fake_beagle(true_min)

    def run_at(heap, timeout):
        calls.append(heap)
        attempt = inner(heap if len(calls) % fail_every else 0, timeout)
        attempt.heap_mb = heap
        return attempt

    return run_at, calls


def test_probe_runs_each_estimate_inside_the_bracket_and_narrows_it():
    run_at, calls = fake_beagle(36.5)
    lo, hi, best, attempts = probe_heaps(run_at, 36, 37, [36.2, 36.84, 40.0, 35.0, 37.0], timeout_s=60, repeats=3)
    assert calls == [36.2, 36.84, 36.84, 36.84]  # only heaps strictly inside; a failure is not repeated
    assert (lo, hi) == (36.2, 36.84) and best.heap_mb == 36.84 and len(attempts) == 4


def test_probe_counts_a_heap_as_enough_only_if_every_repeat_succeeds():
    run_at, calls = flaky_beagle(30, fail_every=3)
    lo, hi, best, _ = probe_heaps(run_at, 36, 37, [36.84], timeout_s=60, repeats=3)
    assert calls == [36.84] * 3 and (lo, hi) == (36.84, 37) and best is None  # third run failed: OOM stands


def test_probe_heap_and_xmx_never_exceed_the_estimate():
    from chromosched_pipeline.imputation.beagle import heap_mb_of_option, xmx_option

    for estimate in (36.8412, 16.2215, 90.0, 1234.5678):
        heap = probe_heap_mb(estimate)
        option = xmx_option(heap)
        assert heap <= estimate and estimate - heap < 1 / 1024
        assert heap_mb_of_option(option) == heap
    assert xmx_option(37) == "-Xmx37m" and xmx_option(36.84) == "-Xmx37724k"
    assert heap_mb_of_option("-Xmx2g") is None and heap_mb_of_option("nthreads=2") is None


def test_profile_runs_real_beagle_and_resumes(tmp_path):
    out = tmp_path / "runs.tsv"
    work = tmp_path / "work"
    rows = profile(
        out, work, n_fit=2, n_heldout=1, seed=11, space=TINY_SPACE, base=TINY_BASE, limit=1, progress=lambda m: None
    )
    assert len(rows) == 1
    comments, first = read_table(out)
    assert any("regenerate" in c for c in comments)
    row = first[0]
    assert row["status"] == "ok" and int(row["attempts"]) >= 2
    assert float(row["peak_rss_mb"]) > float(row["min_heap_mb"])  # the JVM's own RSS, above its heap
    assert math.isfinite(float(row["wall_s"]))
    # resume: the finished point is kept as it was, the rest are measured, nothing twice
    profile(out, work, n_fit=2, n_heldout=1, seed=11, space=TINY_SPACE, base=TINY_BASE, progress=lambda m: None)
    _, rows = read_table(out)
    assert [r["design_id"] for r in rows] == ["fit-0000", "fit-0001", "heldout-0000"]
    assert rows[0] == row
    assert all(set(r) == set(COLUMNS) for r in rows)
    assert not list((work / "runs").iterdir())  # per-run inputs cleaned up
    # refine: a coarse bracket (3, 16] MB on the held-out row (as a coarse first pass would leave it)
    # narrows to 1 MB with real Beagle; the 8 MB floor run succeeded, so the minimum is at most 8
    comments, rows = read_table(out)
    rows[2].update(max_fail_mb="3", min_heap_mb="16")
    write_table(out, comments, rows)
    refine(out, work, "heldout", seed=11, rtol=0.0, atol=1.0, base=TINY_BASE, progress=lambda m: None)
    comments, after = read_table(out)
    held = after[2]
    assert int(held["min_heap_mb"]) - int(held["max_fail_mb"]) <= 1 and held["status"] == "ok"
    assert 3 <= int(held["max_fail_mb"]) < int(held["min_heap_mb"]) <= 8
    assert int(held["attempts"]) > int(rows[2]["attempts"])
    assert after[:2] == rows[:2] and any(c.startswith("# refined: heldout") for c in comments)
    assert not list((work / "runs").iterdir())
    # probe: with a bracket (3, estimate + 20] around the shipped prior's estimate for this row, Beagle
    # runs at the estimate itself (3 repeats, all succeed: the 8 MB floor run already did), and the
    # row's minimum heap becomes that KB-exact estimate
    from chromosched.prior import load_prior
    from chromosched_pipeline.imputation.beagle_design import FEATURES

    prior_path = Path(__file__).resolve().parents[1] / "config" / "priors" / "beagle.json"
    prior = load_prior(prior_path)
    estimate = prior.calibrated_mb(
        {**{f: float(held[f]) for f in prior.feature_names}, "chrom_cm": float(held["chrom_cm"])}, 0.9
    )
    assert set(prior.feature_names) <= set(FEATURES) and estimate > 8
    held.update(max_fail_mb="3", min_heap_mb=str(int(estimate) + 20))
    write_table(out, comments, after)
    probe(
        out,
        work,
        "heldout",
        seed=11,
        prior_path=prior_path,
        levels=[0.9],
        repeats=3,
        base=TINY_BASE,
        progress=lambda m: None,
    )
    comments, probed = read_table(out)
    assert float(probed[2]["min_heap_mb"]) == probe_heap_mb(estimate) and probed[2]["max_fail_mb"] == "3"
    assert int(probed[2]["attempts"]) == int(held["attempts"]) + 3
    assert any(c.startswith("# probed: heldout") for c in comments) and probed[:2] == after[:2]
    # resumable: the estimate is now the bracket's upper end, so nothing is run again
    probe(
        out,
        work,
        "heldout",
        seed=11,
        prior_path=prior_path,
        levels=[0.9],
        repeats=3,
        base=TINY_BASE,
        progress=lambda m: None,
    )
    assert read_table(out)[1] == probed
