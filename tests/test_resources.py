"""Resource callables: heuristic with unknown inputs, retry escalation, budget cap, model swap."""

from __future__ import annotations

import pytest

from chromosched_pipeline import resources as res
from chromosched_pipeline.imputation.beagle import heap_mb_for


@pytest.fixture(autouse=True)
def _reset_model():
    yield
    res.use_model(None)
    res.configure(res.PipelineFacts())


def _facts(cohort, **kw):
    out = cohort.out_dir
    return res.PipelineFacts(
        panel=lambda c: str(out / "panel" / f"{c}.vcf.gz"),
        genetic_map=lambda c: str(out / "map" / f"{c}.map"),
        target_samples=50,
        **kw,
    )


def test_impute_request_follows_the_documented_heuristic(tiny_cohort):
    res.configure(_facts(tiny_cohort))
    mem = res.mem_mb("impute")({"chrom": "chr21"}, [], 1)
    # 1,2xx markers x 50 samples is far below the 64 MB minimum heap: the request is that heap + JVM
    assert heap_mb_for(mem) >= res.BEAGLE_MIN_HEAP_MB and heap_mb_for(mem - 2) < res.BEAGLE_MIN_HEAP_MB
    assert res.runtime("impute")({"chrom": "chr21"}, [], 1) == 5


def test_marker_count_comes_from_the_index(tiny_cohort):
    model = res.HeuristicModel(_facts(tiny_cohort))
    assert model.panel_markers("chr21") == tiny_cohort.chromosomes[0].n_panel_sites
    assert 0 < model.map_length_cm("chr21") < 2


def test_large_panels_scale_memory_with_markers_per_window():
    facts = res.PipelineFacts(target_samples=1000, window_cm=40.0, overlap_cm=2.0)
    model = res.HeuristicModel(facts)
    model._cache[("markers", "chr1")] = 6_000_000
    model._cache[("map_cm", "chr1")] = 280.0
    request = model.request(res.JobInfo("impute", {"chrom": "chr1"}, [], 1))
    per_window = 6_000_000 * 42 / 280
    expected_heap = 2 * (25 + 3.6 * per_window * 1000 / 1e6)
    assert abs(heap_mb_for(request.mem_mb) - expected_heap) <= 2


def test_unknown_inputs_do_not_fail_and_attempts_double(tmp_path):
    res.configure(res.PipelineFacts(memory_budget_mb=100_000))
    missing = [str(tmp_path / "not_yet.vcf.gz")]  # as at DAG build: made by an upstream job
    first = res.mem_mb("prs_partial")({"chrom": "chr1"}, missing, 1)
    assert first == res.PYTHON_STEP_MEMORY["prs_partial"][0]
    assert res.mem_mb("prs_partial")({"chrom": "chr1"}, missing, 3) == 4 * first
    assert res.runtime("prs_partial")({"chrom": "chr1"}, missing, 2) == 2 * res.runtime("prs_partial")({}, missing, 1)
    (tmp_path / "not_yet.vcf.gz").write_bytes(b"x" * 2**21)  # now it exists: 2 MB more input
    assert res.mem_mb("prs_partial")({"chrom": "chr1"}, missing, 1) == first + 8
    # unknown panel: assume big rather than fail late
    assert res.mem_mb("impute")({"chrom": "chr9"}, [], 1) > 500


def test_budget_caps_and_overrides(tiny_cohort):
    res.configure(_facts(tiny_cohort, memory_budget_mb=300, overrides={"impute": {"mem_mb": 200, "runtime": 7}}))
    assert res.mem_mb("impute")({"chrom": "chr21"}, [], 1) == 200
    assert res.mem_mb("impute")({"chrom": "chr21"}, [], 2) == 300  # 400 capped at the budget
    assert res.runtime("impute")({"chrom": "chr21"}, [], 2) == 14


def test_threads_from_config():
    res.configure(res.PipelineFacts(threads={"impute": 4}))
    assert res.threads("impute")({}, [], 1) == 4 and res.threads("prs_partial")({}, [], 1) == 1


def test_installed_model_answers_first_and_can_defer():
    seen = []

    class Store:
        def request(self, job):
            seen.append((job.rule, dict(job.wildcards), job.attempt))
            return (
                res.ResourceRequest(mem_mb=1234, runtime=9, threads=2) if job.wildcards.get("chrom") == "chr1" else None
            )

    res.use_model(Store())
    assert res.mem_mb("impute")({"chrom": "chr1"}, [], 2) == 1234
    assert res.threads("impute")({"chrom": "chr1"}, [], 1) == 2
    assert res.mem_mb("prs_partial")({"chrom": "chr2"}, [], 1) == res.PYTHON_STEP_MEMORY["prs_partial"][0]
    assert seen[0] == ("impute", {"chrom": "chr1"}, 2)
