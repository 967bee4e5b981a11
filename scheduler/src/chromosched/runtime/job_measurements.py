"""What a finished or failed job tells the scheduler: Snakemake benchmark files and outcome logs.

- Snakemake's ``benchmark:`` TSV (columns ``s``, ``max_rss`` in MB, ...): runtime and peak RSS.
  Failed attempts write none; ``max_rss`` is sampled, so short peaks can be missed.
- An outcome log (optional, JSON lines, one per attempt) that a job may append to: ``kind``
  (``ok``, ``heap_oom``, ``killed``, ``error``), and ``need_mb`` when the job knows its real
  memory need better than RSS does. Java is the case in point: RSS follows ``-Xmx``, not the
  data, so the pipeline's Beagle wrapper reports the live heap from the GC log, turned into
  ``mem_mb`` units, as ``need_mb``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..json_lines import read_json_lines

OOM_KINDS = ("heap_oom", "killed", "oom")
# Snakemake samples a benchmarked job's RSS every 0.5 s at first: a job shorter than two samples
# may report the shell that started it rather than its own peak, so it teaches nothing.
MIN_SAMPLED_RUNTIME_S = 1.0


@dataclass(frozen=True)
class Measurement:
    """What one successful attempt used."""

    need_mb: float  # memory to learn from (MB)
    runtime_s: float | None
    source: str  # "outcome" (the job's own need_mb) or "max_rss" (benchmark)


def read_benchmark(path: str | Path) -> tuple[float | None, float | None]:
    """(max_rss MB, runtime s) from a Snakemake benchmark TSV; (None, None) if absent/unreadable.

    With ``repeat()`` there are several rows: the largest RSS and the mean runtime.
    """
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None, None
    rss = [_number(r.get("max_rss")) for r in rows]
    secs = [_number(r.get("s")) for r in rows]
    rss = [v for v in rss if v is not None]
    secs = [v for v in secs if v is not None]
    return (max(rss) if rss else None), (sum(secs) / len(secs) if secs else None)


def read_outcome(path: str | Path | None, attempt: int | None = None) -> dict | None:
    """The outcome line for ``attempt`` (the last line if attempts are not recorded), or None."""
    if not path:
        return None
    try:
        records = read_json_lines(path)  # a line cut by a kill is skipped with a warning
    except (OSError, UnicodeDecodeError):
        return None
    if not records:
        return None
    if attempt is not None:
        tagged = [r for r in records if r.get("attempt") == attempt]
        if tagged:
            return tagged[-1]
    return records[-1]


def measure_success(benchmark: str | None, outcome_log: str | None, attempt: int | None = None) -> Measurement | None:
    """The measurement to learn from after a successful attempt (None when nothing was recorded)."""
    rss, runtime = read_benchmark(benchmark) if benchmark else (None, None)
    outcome = read_outcome(outcome_log, attempt)
    if outcome is not None and outcome.get("kind", "ok") == "ok":
        need = _number(outcome.get("need_mb"))
        if need is not None and need > 0:
            wall = _number(outcome.get("wall_s"))
            return Measurement(need, runtime if runtime is not None else wall, "outcome")
    if rss is not None and rss > 0:
        if runtime is not None and runtime < MIN_SAMPLED_RUNTIME_S:
            return None  # too short for Snakemake's RSS sampling to have seen its peak
        return Measurement(rss, runtime, "max_rss")
    return None


def failure_was_oom(outcome_log: str | None, attempt: int | None = None) -> bool | None:
    """True/False when the job's outcome log says why it failed; None when it cannot tell."""
    outcome = read_outcome(outcome_log, attempt)
    if outcome is None or "kind" not in outcome:
        return None
    return str(outcome["kind"]) in OOM_KINDS


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None
