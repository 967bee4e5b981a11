"""A Python step's own memory peak, written as an outcome line the chromosched scheduler learns from.

Snakemake's benchmark samples a job's RSS every 0.5 s at first; the pipeline's Python steps often
finish in 0.1-0.3 s, so their benchmark TSV holds the shell that started them (~3 MB) and the
scheduler rightly ignores it (``chromosched.runtime.job_measurements.MIN_SAMPLED_RUNTIME_S``). The kernel
knows better: ``/proc/self/status`` keeps the process's high-water mark (``VmHWM``) and
``getrusage`` that of its largest waited-for child (``ru_maxrss``). A step appends one JSON line per attempt, the same format as the Beagle
wrapper's (``kind``, ``need_mb``, ``wall_s``), to the file its rule names in the
``chromosched_outcome`` param.

``need_mb`` = own peak + largest child's peak + ``SHELL_MB`` (the ``bash -c`` Snakemake runs the
step in). Adding the child's peak is an upper bound: it may not have run alongside our peak, and
Linux starts a forked child's high-water mark at its parent's RSS, so a child smaller than its
parent reports the parent's size (the wrapper's ~25 MB then counts twice).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from collections.abc import Iterator

from chromosched.json_lines import append_json_line

SHELL_MB = 4.0  # bash running the step (measured RSS 3-4 MB)


def own_peak_kib() -> float:
    """This process's own peak RSS (KiB): ``VmHWM`` of ``/proc/self/status``.

    Not ``getrusage(RUSAGE_SELF)``: Linux carries the RSS high-water mark of the process that
    spawned us across ``exec`` into ours (measured: a wrapper started from a 430 MB pytest process
    reported 430 MB), and a shell that ``exec``s its last command passes Snakemake's own peak on.
    ``VmHWM`` belongs to this program's address space only. Elsewhere: ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return own / 1024.0 if sys.platform == "darwin" else float(own)  # macOS reports bytes


def peak_rss_mb() -> float:
    """This process's peak RSS plus its largest waited-for child's (MB)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    children = children / 1024.0 if sys.platform == "darwin" else float(children)
    return (own_peak_kib() + children) / 1024.0


def record_outcome(path: str | os.PathLike | None, kind: str, started: float, **extra) -> None:
    """Append this attempt's outcome line to ``path`` (nothing when ``path`` is None).

    Best effort: an unwritable log must not turn a finished step into a failed one.
    """
    if not path:
        return
    peak = peak_rss_mb()
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "kind": kind,
        "wall_s": round(time.monotonic() - started, 3),
        "peak_rss_mb": round(peak, 1),
        **extra,
    }
    if kind == "ok":
        line["need_mb"] = round(peak + SHELL_MB, 1)
    try:
        append_json_line(path, line)
    except OSError as err:
        print(f"warning: could not append the outcome line to {path}: {err}", file=sys.stderr)


@contextlib.contextmanager
def outcome_recorded(path: str | os.PathLike | None, **extra) -> Iterator[None]:
    """Append the outcome of the enclosed step to ``path``: ``ok``, ``oom`` (MemoryError) or
    ``error`` (any other exception, which propagates)."""
    started = time.monotonic()
    try:
        yield
    except MemoryError:
        record_outcome(path, "oom", started, **extra)
        raise
    except BaseException:
        record_outcome(path, "error", started, **extra)
        raise
    record_outcome(path, "ok", started, **extra)


def main(argv: list[str] | None = None) -> int:
    """``python -m chromosched_pipeline.step_outcome --outcome LOG -- COMMAND ...``: run a command
    (a tool that is not Python, e.g. bcftools) and append its outcome line; exits with its code."""
    import argparse
    import subprocess

    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.step_outcome",
        description="Run a command and append its outcome and peak memory to a JSON-lines log.",
    )
    p.add_argument("--outcome", required=True, help="JSON-lines log to append to")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given (put it after --)")
    started = time.monotonic()
    try:
        code = subprocess.call(command)
    except OSError as err:
        print(f"step_outcome: cannot run {command[0]}: {err}", file=sys.stderr)
        record_outcome(args.outcome, "error", started, command=command[0])
        return 127
    kind = "ok" if code == 0 else ("killed" if code in (-9, 137) else "error")
    record_outcome(args.outcome, kind, started, command=command[0], exit=code)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
