"""The write-once prediction store and the rules' store-backed mem_mb."""

from __future__ import annotations

import json
import threading

import pytest

from chromosched.errors import ChromoschedError
from chromosched.runtime.prediction_store import Prediction, PredictionStore, wildcards_key
from chromosched_pipeline import resources as res


def test_write_once_keeps_the_first_value(tmp_path):
    store = PredictionStore(tmp_path / "store")
    first = store.put_once(Prediction("impute", {"chrom": "chr1"}, 1, 900, source="prior"))
    again = store.put_once(Prediction("impute", {"chrom": "chr1"}, 1, 5000, source="regressor"))
    assert first.mem_mb == again.mem_mb == 900 and again.source == "prior"
    assert store.get("impute", {"chrom": "chr1"}, 2) is None
    store.put_once(Prediction("impute", {"chrom": "chr1"}, 2, 1300, source="escalation"))
    assert [p.mem_mb for p in store.entries()] == [900, 1300]


def test_concurrent_writers_agree(tmp_path):
    store = PredictionStore(tmp_path)
    results = []

    def write(mb):
        results.append(store.put_once(Prediction("impute", {"chrom": "chr2"}, 1, mb)).mem_mb)

    threads = [threading.Thread(target=write, args=(100 + i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert not [p for p in (tmp_path / "impute").iterdir() if p.name.startswith(".tmp-")]


def test_keys_are_stable_and_file_safe():
    assert wildcards_key({"sample": "A/B", "chrom": "chr1"}) == "chrom=chr1,sample=A_B"
    assert wildcards_key({}) == "_"


def test_corrupt_entry_is_a_clear_error(tmp_path):
    store = PredictionStore(tmp_path)
    path = store.path("impute", {"chrom": "chr3"}, 1)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ChromoschedError, match=r"chrom=chr3.attempt1.json: corrupt prediction entry"):
        store.get("impute", {"chrom": "chr3"}, 1)


def test_non_positive_prediction_rejected(tmp_path):
    with pytest.raises(ChromoschedError, match="must be positive"):
        PredictionStore(tmp_path).put_once(Prediction("impute", {"chrom": "chr1"}, 1, 0))


def test_archive_moves_entries_aside(tmp_path):
    store = PredictionStore(tmp_path / "p")
    assert store.archive() is None
    store.put_once(Prediction("r", {}, 1, 10))
    moved = store.archive()
    assert moved is not None and json.loads(next(moved.glob("r/*.json")).read_text())["mem_mb"] == 10
    assert store.get("r", {}, 1) is None


def test_rules_read_the_store_and_fall_back_to_the_heuristic(tmp_path):
    store = PredictionStore(tmp_path)
    res.use_model(res.PredictionStoreModel(store))
    try:
        heuristic = res.mem_mb("prs_combine")({"chrom": "chr1"}, [], 1)
        store.put_once(Prediction("prs_combine", {"chrom": "chr1"}, 1, heuristic + 777))
        assert res.mem_mb("prs_combine")({"chrom": "chr1"}, [], 1) == heuristic + 777
        # another attempt has no entry yet: the heuristic (doubled for attempt 2) answers
        assert res.mem_mb("prs_combine")({"chrom": "chr1"}, [], 2) == 2 * heuristic
        # runtime still comes from the heuristic
        assert res.runtime("prs_combine")({"chrom": "chr1"}, [], 1) == res.runtime("prs_combine")(
            {"chrom": "chr2"}, [], 1
        )
    finally:
        res.use_model(None)


def test_a_cluster_jobs_overhead_is_stored_and_left_out_of_the_tools_memory(tmp_path):
    """Under a cluster executor mem_mb (sbatch --mem) includes the job's own Snakemake; the tool's
    memory (Beagle's heap is sized from it) is mem_mb less that overhead, read back from the store."""
    store = PredictionStore(tmp_path)
    res.use_model(res.PredictionStoreModel(store))
    try:
        store.put_once(Prediction("impute", {"chrom": "chr1"}, 1, 1130, source="prior", overhead_mb=250))
        assert store.get("impute", {"chrom": "chr1"}, 1).overhead_mb == 250
        assert res.mem_mb("impute")({"chrom": "chr1"}, [], 1) == 1130
        assert res.tool_mem_mb("impute")({"chrom": "chr1"}, [], 1) == 880
        # no overhead stored (local run, or an entry written before the field existed): the same number
        store.put_once(Prediction("impute", {"chrom": "chr2"}, 1, 700))
        assert res.tool_mem_mb("impute")({"chrom": "chr2"}, [], 1) == 700
    finally:
        res.use_model(None)
    # without a store model the heuristic's mem_mb answers both
    assert res.tool_mem_mb("prs_combine")({"chrom": "chr1"}, [], 1) == res.mem_mb("prs_combine")(
        {"chrom": "chr1"}, [], 1
    )
