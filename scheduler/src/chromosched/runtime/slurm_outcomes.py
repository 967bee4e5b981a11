"""Why a Slurm job failed: was it killed for passing its ``--mem``?

Snakemake's Slurm executor reads ``sacct -X`` (the job line only) and reports every failure the same
way, so a job the cgroup OOM-killed looks like any crash. The evidence is elsewhere:

- ``sacct`` step lines (``<id>.batch``, ``<id>.0``...) say ``OUT_OF_MEMORY`` for the killed step;
- the job's log (``.snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log``, kept for failed jobs)
  holds slurmstepd's line "Detected 1 oom-kill event(s) in StepId=..." (older Slurm: "Exceeded job
  memory limit").

The parsers take plain text (what ``sacct -P -n -o JobID,State,ExitCode,ReqMem`` prints, a log's
contents); :func:`failure_was_oom` finds a failed job's latest log and asks both. No Snakemake here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The columns :func:`parse_sacct` reads, in this order (``sacct -P -n -o`` + this).
SACCT_FORMAT = "JobID,State,ExitCode,ReqMem"
DEFAULT_LOG_DIR = ".snakemake/slurm_logs"
OOM_STATE = "OUT_OF_MEMORY"
# slurmstepd's words for a cgroup OOM kill (22.05+: "oom-kill event"; older: "Exceeded ... memory limit").
_LOG_OOM = re.compile(r"oom-kill event|exceeded (job|step) memory limit", re.IGNORECASE)
_FINAL_STATES = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    OOM_STATE,
)


@dataclass(frozen=True)
class SacctLine:
    """One line of ``sacct -P``: a job (``step`` None) or one of its steps."""

    job_id: str
    step: str | None
    state: str  # first word: "CANCELLED by 0" -> CANCELLED
    exit_code: str
    req_mem_mb: int | None


def parse_sacct(text: str) -> list[SacctLine]:
    """Lines of ``sacct -P -n -o JobID,State,ExitCode,ReqMem`` (header lines are skipped)."""
    lines = []
    for raw in text.splitlines():
        parts = raw.strip().split("|")
        if len(parts) < 3 or parts[0] in ("", "JobID"):
            continue
        job_id, _, step = parts[0].partition(".")
        state = parts[1].split()[0] if parts[1].strip() else ""
        lines.append(
            SacctLine(job_id, step or None, state, parts[2], parse_mem_mb(parts[3]) if len(parts) > 3 else None)
        )
    return lines


def parse_mem_mb(text: str) -> int | None:
    """Slurm's memory spelling (``200M``, ``1.5G``, ``512Mn``/``512Mc`` before 21.08) in MB."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)[nc]?\s*", text or "")
    if not match:
        return None
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[match.group(2)]
    return round(float(match.group(1)) * scale)


def sacct_says_oom(text: str, job_id: str) -> bool | None:
    """True when the job or any of its steps ended ``OUT_OF_MEMORY``; False when it has ended
    otherwise; None when sacct does not know the job (or it has not ended)."""
    lines = [line for line in parse_sacct(text) if line.job_id == str(job_id)]
    if not lines:
        return None
    if any(line.state == OOM_STATE for line in lines):
        return True
    job = next((line for line in lines if line.step is None), None)
    return False if job is not None and job.state in _FINAL_STATES else None


def log_says_oom(text: str) -> bool:
    """True when a Slurm job log holds slurmstepd's OOM-kill message."""
    return _LOG_OOM.search(text) is not None


def wildcards_folder(wildcard_values: Iterable[str]) -> str:
    """The log sub-folder Snakemake's Slurm executor names after a job's wildcards."""
    return "_".join(str(v) for v in wildcard_values).replace("/", "_")


def job_logs(log_dir: str | Path, rule: str, wildcard_values: Sequence[str]) -> list[tuple[str, Path]]:
    """(Slurm job ID, log path) of a rule's job with these wildcards, oldest job first."""
    folder = Path(log_dir) / f"rule_{rule}"
    sub = wildcards_folder(wildcard_values)
    if sub:
        folder = folder / sub
    found = [(p.stem, p) for p in folder.glob("*.log") if p.stem.isdigit()] if folder.is_dir() else []
    return sorted(found, key=lambda item: int(item[0]))


def query_sacct(job_ids: Sequence[str], timeout: float = 20) -> str | None:
    """``sacct`` text for these jobs, or None when sacct is missing or fails (no slurmdbd)."""
    sacct = shutil.which("sacct")
    if not sacct or not job_ids:
        return None
    try:
        proc = subprocess.run(
            [sacct, "-P", "-n", "-o", SACCT_FORMAT, "-j", ",".join(job_ids)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


@dataclass(frozen=True)
class SlurmVerdict:
    """What Slurm says about a failed job: ``oom`` True/False/None (unknown) and why."""

    job_id: str | None
    oom: bool | None
    evidence: str


def failure_was_oom(
    log_dir: str | Path,
    rule: str,
    wildcard_values: Sequence[str],
    sacct: Callable[[Sequence[str]], str | None] = query_sacct,
) -> SlurmVerdict | None:
    """The verdict on a rule job's latest Slurm job (the attempt that just failed), or None when
    the job left no Slurm log (it did not run through Slurm's executor)."""
    logs = job_logs(log_dir, rule, wildcard_values)
    if not logs:
        return None
    job_id, path = logs[-1]
    text = sacct([job_id])
    verdict = sacct_says_oom(text, job_id) if text else None
    if verdict is True:
        return SlurmVerdict(job_id, True, f"sacct {OOM_STATE}")
    try:
        log_text = path.read_text(errors="replace")
    except OSError:
        log_text = ""
    if log_says_oom(log_text):
        return SlurmVerdict(job_id, True, f"oom-kill in {path}")
    if verdict is False:
        return SlurmVerdict(job_id, False, "sacct: ended without OUT_OF_MEMORY")
    return SlurmVerdict(job_id, None, "no OOM evidence (sacct unavailable)")
