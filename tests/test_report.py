"""`chromosched report`: the summary numbers from a hand-built event log (known answers), the
static ordering event, and the command on a run directory (HTML, PNGs, summary.json)."""

from __future__ import annotations

import json

from chromosched.cli import main
from chromosched.runtime.run_events import load_run_events, memory_steps, summary
from chromosched.runtime.session import SchedulingSession, SessionSettings


def _events(path, lines):
    path.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"time": 99, "ev')  # torn last line
    return path


def _run(tmp_path):
    # two chromosomes: a (0-10 s, 300 MB reserved, needs 100) and b (OOM at 4 s with 100 MB,
    # retried 4-12 s with 200 MB, needs 150); then a merge job 12-13 s, 50 reserved, 50 needed
    start = lambda t, uid, rule, mem, attempt=1, pred=None, src="prior": {  # noqa: E731
        "time": t,
        "event": "start",
        "uid": uid,
        "rule": rule,
        "wildcards": {"chrom": uid[-2]} if rule == "impute" else {},
        "attempt": attempt,
        "mem_mb": mem,
        "source": src,
        "predicted_mb": pred,
    }
    return _events(
        tmp_path / "events.jsonl",
        [
            {"time": 100.0, "event": "begin", "mode": "dynamic", "budget_mb": 1000},
            start(100.0, "impute[a]", "impute", 300, pred=250),
            start(100.0, "impute[b]", "impute", 100, pred=90),
            {"time": 104.0, "event": "fail", "uid": "impute[b]", "mem_mb": 100, "oom": True},
            start(104.0, "impute[b]", "impute", 200, attempt=2, src="escalation"),
            {"time": 110.0, "event": "finish", "uid": "impute[a]", "need_mb": 100, "runtime_s": 10},
            {"time": 112.0, "event": "finish", "uid": "impute[b]", "need_mb": 150, "runtime_s": 8},
            start(112.0, "merge", "merge", 50, pred=40),
            {"time": 113.0, "event": "finish", "uid": "merge", "need_mb": 50, "runtime_s": 1},
        ],
    )


def test_summary_numbers_from_events(tmp_path, caplog):
    run = load_run_events(_run(tmp_path))
    numbers = summary(run)
    assert numbers["makespan_s"] == 13.0 and numbers["jobs"] == 3 and numbers["attempts"] == 4
    assert numbers["retries"] == 1 and numbers["oom_retries"] == 1 and numbers["unfinished"] == 0
    assert numbers["peak_reserved_mb"] == 500.0  # a (300) + b's retry (200), 4-10 s
    assert numbers["peak_measured_mb"] == 250.0  # a (100) + b (150)
    # reserved MB x s / measured MB x s over measured attempts: (3000+1600+50) / (1000+1200+50)
    assert numbers["over_reservation"] == round(4650 / 2250, 3)
    assert numbers["per_rule"]["impute"]["median_predicted_over_measured"] == 2.5  # only a has both
    assert [a["attempt"] for a in numbers["oom_attempts"]] == [1]
    times, levels = memory_steps(run.attempts, "reserved")
    assert max(levels) == 500 and levels[-1] == 0
    assert "skipped 1 unreadable line" in caplog.text


def test_static_session_records_its_ordering(tmp_path):
    events = tmp_path / "events.jsonl"
    session = SchedulingSession(
        SessionSettings(
            mode="static",
            ordering="GRCh37",
            workers=3,
            events=str(events),
            store=str(tmp_path / "store"),
            model=str(tmp_path / "m.json"),
        )
    )
    session.begin({"_cores": 4, "mem_mb": 1000})
    ordering = [json.loads(line) for line in events.read_text().splitlines() if '"ordering"' in line]
    assert ordering and ordering[0]["workers"] == 3 and len(ordering[0]["order"]) == 22


def test_report_command_writes_html_pngs_and_summary(tmp_path, capsys):
    (tmp_path / ".chromosched").mkdir()
    _run(tmp_path).rename(tmp_path / ".chromosched" / "events.jsonl")
    assert main(["report", str(tmp_path)]) == 0
    out = tmp_path / "chromosched_report"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    oom_table = page.split("<h2>Out-of-memory retries</h2>")[1].split("<h2>")[0]
    assert "<td>impute</td><td>b</td><td>1</td><td>100.0</td><td>prior</td>" in oom_table
    assert "None (dynamic mode)" in page
    for name in ("gantt", "memory", "predicted_vs_measured"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text())["oom_retries"] == 1
    assert "1 out-of-memory retries" in capsys.readouterr().out


def test_report_without_events_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "events.jsonl: event log not found" in err[0]


def test_report_of_a_real_static_run_shows_its_ordering(tmp_path):
    """A real Snakemake run in static mode (tests/data/memory_workflow), then the report from its events."""
    from test_plugin_snakemake import CHROMS, config, run

    from chromosched.static.ordering_table import load_builtin_table

    result = run(
        tmp_path, config(chroms=CHROMS[:3], hold=0.3), "--scheduler-chromosched-mode", "static", budget=1000, cores=2
    )
    assert result.returncode == 0, result.stderr
    assert main(["report", str(tmp_path)]) == 0
    numbers = json.loads((tmp_path / "chromosched_report" / "summary.json").read_text())
    assert numbers["mode"] == "static" and numbers["static_order"] == load_builtin_table("GRCh37").order_for(2)
    assert numbers["per_rule"]["work"]["attempts"] == 3 and numbers["retries"] == 0
    assert " ".join(numbers["static_order"]) in (tmp_path / "chromosched_report" / "report.html").read_text()


def test_pipeline_report_rule_draws_the_same_figures(tmp_path, capsys):
    """The pipeline's scheduler figures (rules/report.smk) come from chromosched.runtime.report_figures; without an
    event log they still write both PNGs, saying why they are empty."""
    from chromosched_pipeline.report.plots import main as plots_main

    events = _run(tmp_path)
    out = [tmp_path / "schedule.png", tmp_path / "prediction.png"]
    assert (
        plots_main(
            ["scheduler", "--events", str(events), "--out-schedule", str(out[0]), "--out-prediction", str(out[1])]
        )
        == 0
    )
    assert "4 scheduled job attempts" in capsys.readouterr().err
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out)
    for p in out:
        p.unlink()
    assert (
        plots_main(
            [
                "scheduler",
                "--events",
                str(tmp_path / "missing.jsonl"),
                "--out-schedule",
                str(out[0]),
                "--out-prediction",
                str(out[1]),
            ]
        )
        == 0
    )
    assert "0 scheduled job attempts" in capsys.readouterr().err and all(p.exists() for p in out)


def test_a_shrink_lowers_the_reserved_memory_from_its_time(tmp_path):
    """A probe given 1000 MB shrinks to 120 MB at 2 s (its memory settled) and a second job starts
    beside it: the reserved curve follows the shrink, so it never shows the two above the budget."""
    events = _events(
        tmp_path / "events.jsonl",
        [
            {"time": 0.0, "event": "begin", "mode": "dynamic", "budget_mb": 1000},
            {"time": 0.0, "event": "start", "uid": "p", "rule": "r", "mem_mb": 1000, "source": "whole-budget"},
            {"time": 2.0, "event": "shrink", "uid": "p", "rule": "r", "mem_mb": 120, "was_mb": 1000, "plateau_mb": 90},
            {"time": 2.5, "event": "start", "uid": "q", "rule": "r", "mem_mb": 800, "source": "regressor"},
            {"time": 4.0, "event": "finish", "uid": "p", "need_mb": 90},
            {"time": 5.0, "event": "finish", "uid": "q", "need_mb": 700},
        ],
    )
    run = load_run_events(events)
    probe = next(a for a in run.attempts if a.uid == "p")
    assert probe.mem_mb == 1000 and probe.reservation() == [(0.0, 2.0, 1000.0), (2.0, 4.0, 120.0)]
    times, levels = memory_steps(run.attempts, "reserved")
    assert max(levels) == 1000 and levels[-1] == 0
    assert dict(zip(times, levels))[2.5] == 920  # 120 + 800 once q starts
    numbers = summary(run)
    assert numbers["peak_reserved_mb"] == 1000.0
    # reserved MB x s (2000 + 240 + 2000) over measured (360 + 1750)
    assert numbers["over_reservation"] == round(4240 / 2110, 3)
