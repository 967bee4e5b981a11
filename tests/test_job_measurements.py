"""What finished and failed jobs tell the scheduler (benchmark TSVs, outcome logs)."""

from __future__ import annotations

import json

from chromosched.runtime.job_measurements import failure_was_oom, measure_success, read_benchmark, read_outcome

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_benchmark_rows_give_peak_rss_and_mean_runtime(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text(
        HEADER + "2.0\t0:00:02\t120.5\t1\t1\t1\t0\t0\t50\t1\n" + "4.0\t0:00:04\t150.0\t1\t1\t1\t0\t0\t50\t1\n"
    )
    assert read_benchmark(path) == (150.0, 3.0)
    assert read_benchmark(tmp_path / "missing.tsv") == (None, None)
    (tmp_path / "na.tsv").write_text(HEADER + "NA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n")
    assert read_benchmark(tmp_path / "na.tsv") == (None, None)


def test_outcome_need_wins_over_rss_and_short_jobs_teach_nothing(tmp_path):
    bench = tmp_path / "b.tsv"
    bench.write_text(HEADER + "5.0\t0:00:05\t900\t1\t1\t1\t0\t0\t50\t1\n")
    outcome = tmp_path / "o.jsonl"
    outcome.write_text(
        json.dumps({"kind": "heap_oom", "mem_mb": 100})
        + "\n{cut line\n"
        + json.dumps({"kind": "ok", "need_mb": 240.0, "wall_s": 4.0})
        + "\n"
    )
    m = measure_success(str(bench), str(outcome))
    assert (m.need_mb, m.source, m.runtime_s) == (240.0, "outcome", 5.0)  # Java: RSS follows -Xmx
    assert measure_success(str(bench), None).source == "max_rss"
    short = tmp_path / "short.tsv"
    short.write_text(HEADER + "0.3\t0:00:00\t5\t1\t1\t1\t0\t0\t50\t1\n")
    assert measure_success(str(short), None) is None


def test_failure_causes(tmp_path):
    log = tmp_path / "o.jsonl"
    assert failure_was_oom(str(log)) is None  # nothing recorded: cannot tell
    log.write_text(json.dumps({"kind": "heap_oom"}) + "\n")
    assert failure_was_oom(str(log)) is True
    log.write_text(json.dumps({"kind": "error"}) + "\n")
    assert failure_was_oom(str(log)) is False
    log.write_text(
        json.dumps({"kind": "killed", "attempt": 1}) + "\n" + json.dumps({"kind": "error", "attempt": 2}) + "\n"
    )
    assert failure_was_oom(str(log), attempt=1) is True and read_outcome(str(log), 2)["kind"] == "error"
