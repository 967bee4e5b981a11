"""A finished run as the scheduler recorded it: job attempts and summary numbers from the event log.

The plugin's :class:`~chromosched.runtime.session.SchedulingSession` appends one JSON line per
event to ``.chromosched/events.jsonl`` in the main Snakemake process, whatever the executor (local
or Slurm): ``begin`` (mode, budget), ``ordering`` (static mode's chromosome order), ``start``
(rule, wildcards, attempt, reserved ``mem_mb``, ``predicted_mb``, source), ``finish`` (measured
``need_mb``, ``runtime_s``), ``fail`` (``oom``) and ``shrink`` (a running job's reservation lowered
to ``mem_mb`` once its measured memory had settled). This module pairs starts with their ends and
derives what ``chromosched report`` shows; it needs neither Snakemake nor the run's other files.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ChromoschedError
from ..json_lines import read_json_lines


@dataclass
class Attempt:
    """One job attempt: when it ran, what it was given and what it turned out to need."""

    uid: str
    rule: str
    wildcards: dict
    attempt: int
    start_s: float  # seconds since the run's first start
    end_s: float
    mem_mb: float  # reserved for it
    predicted_mb: float | None
    source: str  # prior | regressor | escalation | declared | static | unmanaged | whole-budget
    outcome: str  # ok | oom | failed | unfinished
    need_mb: float | None = None  # measured (finished attempts the scheduler could measure)
    shrinks: list[tuple[float, float]] = field(default_factory=list)  # (time s, reserved MB from then)

    def reservation(self) -> list[tuple[float, float, float]]:
        """(from s, to s, MB reserved) over the run: ``mem_mb`` from the start, then each shrink's."""
        times = [self.start_s] + [t for t, _ in self.shrinks] + [self.end_s]
        amounts = [self.mem_mb] + [mb for _, mb in self.shrinks]
        return [(times[i], times[i + 1], amounts[i]) for i in range(len(amounts))]

    @property
    def label(self) -> str:
        wc = ",".join(str(v) for v in self.wildcards.values())
        return f"{self.rule} {wc}".strip()


@dataclass
class RunEvents:
    mode: str | None
    budget_mb: float | None
    attempts: list[Attempt]
    ordering: dict | None = None  # static mode: {"table", "workers", "order"}
    path: str = ""
    unfinished: int = 0  # start events without a readable end (run killed, or lines lost)


def load_run_events(path: str | Path) -> RunEvents:
    """Read an event log (torn lines skipped with a warning) into job attempts."""
    path = Path(path)
    if not path.is_file():
        raise ChromoschedError(f"{path}: event log not found (was the run made with --scheduler chromosched?)")
    events = [e for e in read_json_lines(path) if isinstance(e.get("time"), (int, float)) and "event" in e]
    begin = next((e for e in events if e["event"] == "begin"), {})
    ordering = next((e for e in events if e["event"] == "ordering"), None)
    starts = [e for e in events if e["event"] == "start" and "uid" in e]
    if not starts:
        raise ChromoschedError(f"{path}: no job was started in this event log")
    ends: dict[str, list[dict]] = {}
    for e in events:
        if e["event"] in ("finish", "fail") and "uid" in e:
            ends.setdefault(e["uid"], []).append(e)
    t0 = min(e["time"] for e in starts)
    last = max(e["time"] for e in events)
    attempts, unfinished = [], 0
    for e in sorted(starts, key=lambda e: e["time"]):
        done = ends.get(e["uid"], [])
        end = done.pop(0) if done else None  # a job's attempts end in the order they started
        if end is None:
            outcome, end_time = "unfinished", last
            unfinished += 1
        elif end["event"] == "finish":
            outcome, end_time = "ok", end["time"]
        else:
            outcome, end_time = ("oom" if end.get("oom") is not False else "failed"), end["time"]
        attempts.append(
            Attempt(
                uid=e["uid"],
                rule=str(e.get("rule", "job")),
                wildcards=dict(e.get("wildcards") or {}),
                attempt=int(e.get("attempt") or 1),
                start_s=e["time"] - t0,
                end_s=end_time - t0,
                mem_mb=float(e.get("mem_mb") or 0),
                predicted_mb=_number(e.get("predicted_mb")),
                source=str(e.get("source", "")),
                outcome=outcome,
                need_mb=_number((end or {}).get("need_mb")) if outcome == "ok" else None,
            )
        )
    by_uid: dict[str, list[Attempt]] = {}
    for a in attempts:
        by_uid.setdefault(a.uid, []).append(a)
    for e in events:
        if e["event"] == "shrink" and "uid" in e and e.get("mem_mb") is not None:
            t = e["time"] - t0
            running = [a for a in by_uid.get(e["uid"], []) if a.start_s <= t <= a.end_s]
            if running:
                running[-1].shrinks.append((t, float(e["mem_mb"])))
    return RunEvents(
        mode=begin.get("mode"),
        budget_mb=_number(begin.get("budget_mb")),
        attempts=attempts,
        ordering=ordering,
        path=str(path),
        unfinished=unfinished,
    )


def memory_steps(attempts: list[Attempt], what: str = "reserved") -> tuple[list[float], list[float]]:
    """Memory of the running attempts over time, as a step function (times, levels):
    ``reserved`` (what the scheduler gave them) or ``measured`` (each one's measured need, held for
    its whole run: an upper envelope of the real use, since a peak does not last the whole run)."""
    changes = []
    for a in attempts:
        if what == "reserved":
            for start, end, amount in a.reservation():
                changes += [(start, amount), (end, -amount)] if amount else []
        elif a.need_mb:
            changes += [(a.start_s, a.need_mb), (a.end_s, -a.need_mb)]
    changes.sort(key=lambda c: (c[0], c[1]))  # ends before starts at the same instant
    times, levels, level = [0.0], [0.0], 0.0
    for t, delta in changes:
        level += delta
        times.append(t)
        levels.append(max(level, 0.0))
    return times, levels


def summary(run: RunEvents) -> dict:
    """The report's numbers: makespan, peaks, over-reservation, retries, per-rule prediction error."""
    attempts = run.attempts
    measured = [a for a in attempts if a.need_mb]
    reserved_area = sum(mb * (end - start) for a in measured for start, end, mb in a.reservation())
    needed_area = sum(a.need_mb * (a.end_s - a.start_s) for a in measured)
    per_rule = {}
    for rule in sorted({a.rule for a in attempts}):
        mine = [a for a in attempts if a.rule == rule]
        known = [a for a in mine if a.need_mb and a.predicted_mb]
        per_rule[rule] = {
            "attempts": len(mine),
            "oom_retries": sum(a.outcome == "oom" for a in mine),
            "mean_reserved_mb": _round(statistics.fmean(a.mem_mb for a in mine)),
            "mean_measured_mb": _round(statistics.fmean(a.need_mb for a in mine if a.need_mb))
            if any(a.need_mb for a in mine)
            else None,
            "median_predicted_over_measured": _round(statistics.median(a.predicted_mb / a.need_mb for a in known), 3)
            if known
            else None,
        }
    jobs = {a.uid for a in attempts}
    return {
        "events": run.path,
        "mode": run.mode,
        "budget_mb": run.budget_mb,
        "makespan_s": _round(max(a.end_s for a in attempts), 2),
        "jobs": len(jobs),
        "attempts": len(attempts),
        "retries": len(attempts) - len(jobs),
        "oom_retries": sum(a.outcome == "oom" for a in attempts),
        "failed_not_oom": sum(a.outcome == "failed" for a in attempts),
        "unfinished": run.unfinished,
        "peak_reserved_mb": _round(max(memory_steps(attempts, "reserved")[1])),
        "peak_measured_mb": _round(max(memory_steps(attempts, "measured")[1])),
        # reserved MB x s over measured MB x s of the measured attempts: 1.0 = nothing wasted
        "over_reservation": _round(reserved_area / needed_area, 3) if needed_area else None,
        "static_order": (run.ordering or {}).get("order"),
        "per_rule": per_rule,
        "oom_attempts": [asdict(a) for a in attempts if a.outcome == "oom"],
    }


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _round(value, digits: int = 1):
    return None if value is None else round(float(value), digits)
