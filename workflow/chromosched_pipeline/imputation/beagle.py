"""Beagle 5.4 invocation with an explicit Java heap, OOM classification and ``##contig`` restoration.

Why this wrapper exists:

* The Debian ``beagle`` launcher passes no Java options, so the heap would be the JVM default
  (a quarter of the machine's RAM) regardless of what the scheduler granted. We run
  ``java -Xmx<heap>m -XX:+ExitOnOutOfMemoryError -jar beagle.jar ...`` with the heap derived from
  the job's ``mem_mb`` resource (:func:`heap_mb_for`), so a retry with more ``mem_mb`` really
  gets a bigger heap (Snakemake re-evaluates resources on retry, not params).
* With ``-XX:+ExitOnOutOfMemoryError`` a too-small heap exits 3 with
  ``Terminating due to java.lang.OutOfMemoryError``; without it Beagle may limp on and fail later
  with an unrelated exception. :class:`BeagleResult` says which failure it was (heap OOM, killed
  by a signal such as the kernel OOM killer or Slurm, or another error), with wall time and the
  child's peak RSS from ``os.wait4``.
* Beagle writes no ``##contig`` lines; downstream tools (bcftools, plink2, tabix consumers) want
  them, so :func:`restore_contigs` puts them back (lengths from the reference panel's header).

CLI (used by the ``impute`` rule)::

    python -m chromosched_pipeline.imputation.beagle --gt T.vcf.gz --ref P.vcf.gz --map M.map \\
        --out imputed.vcf.gz --mem-mb 1024 --threads 2 [--window 40 --overlap 2 --burnin 3 \\
        --iterations 12 --ne 1000000 --seed -99999] [--jar beagle.jar] [--attempts log.jsonl]

Exit status: 0 on success, 3 on a Java heap OOM, 137 when Beagle was killed, otherwise Beagle's
(or 2 for a bad input, with a one-line ``beagle: error:`` message).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from chromosched.errors import ChromoschedError
from chromosched.java_memory import HEAP_FLOOR_MB, JVM_OVERHEAD_FRACTION, JVM_OVERHEAD_MB, heap_mb_for, mem_mb_for_heap  # noqa: F401 - re-exported
from chromosched.json_lines import append_json_line

from ..vcfio import (
    check_bgzf_complete,
    exit_on_sigterm,
    header_contig_lengths,
    read_header_lines,
    remove_stale_temporaries,
    temporary_path,
    write_bgzipped_vcf,
)

DEFAULT_JAR = Path("/usr/share/beagle/beagle.jar")
OOM_MARKER = "Terminating due to java.lang.OutOfMemoryError"
OOM_EXIT_CODE = 3  # what -XX:+ExitOnOutOfMemoryError exits with
KILLED_EXIT_CODE = 137  # 128 + SIGKILL, as shells and Slurm report a killed job
# RSS follows -Xmx, not the data, so a job's real need is read from its GC log instead: the largest
# heap occupancy after a collection (a live-set estimate). Over the measured minimum-heap profile
# (config/priors/beagle_runs.tsv) the minimum heap was 0.75-1.3x of it; the upper end is used.
GC_LIVE_SAFETY = 1.3
_GC_PAUSE = re.compile(r"Pause.*?(\d+)M->(\d+)M\((\d+)M\)")


def find_beagle_jar(explicit: str | os.PathLike | None = None) -> Path:
    """Locate beagle.jar: ``explicit``, else ``$BEAGLE_JAR``, else ``dpkg -L beagle``, else the Debian path."""
    candidates: list[Path] = []
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ChromoschedError(f"beagle jar {path}: file not found")
        return path
    if os.environ.get("BEAGLE_JAR"):
        path = Path(os.environ["BEAGLE_JAR"])
        if not path.is_file():
            raise ChromoschedError(f"beagle jar {path} (from $BEAGLE_JAR): file not found")
        return path
    if shutil.which("dpkg"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            listing = subprocess.run(["dpkg", "-L", "beagle"], capture_output=True, text=True, timeout=30).stdout
            candidates += [Path(line) for line in listing.splitlines() if line.endswith("/beagle.jar")]
    # Conda's bioconda beagle puts the jar under $CONDA_PREFIX/share/beagle-*/.
    prefix = os.environ.get("CONDA_PREFIX")
    if prefix:
        candidates += sorted(Path(prefix, "share").glob("beagle*/beagle*.jar"))
    candidates.append(DEFAULT_JAR)
    for path in candidates:
        if path.is_file():
            return path
    raise ChromoschedError(
        "beagle.jar not found (install the Debian package 'beagle', or set beagle.jar in the config or $BEAGLE_JAR)"
    )


@dataclass(frozen=True)
class BeagleParams:
    """Optional Beagle arguments; None means Beagle's own default."""

    window: float | None = None  # cM
    overlap: float | None = None  # cM
    burnin: int | None = None
    iterations: int | None = None
    ne: int | None = None
    seed: int | None = None

    def arguments(self) -> list[str]:
        return [f"{k}={_fmt(v)}" for k, v in asdict(self).items() if v is not None]


def _fmt(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def xmx_option(heap_mb: int | float) -> str:
    """``-Xmx<n>m`` for a whole number of MB, else ``-Xmx<n>k`` rounded *down* to a KB: never a larger
    heap than asked (the profiler probes Beagle at calibrated estimates such as 36.84 MB)."""
    heap = float(heap_mb)
    if heap == int(heap):
        return f"-Xmx{int(heap)}m"
    return f"-Xmx{int(math.floor(heap * 1024))}k"


def heap_mb_of_option(arg: str) -> int | float | None:
    """MB of an ``-Xmx<n>m`` / ``-Xmx<n>k`` argument (None for any other argument)."""
    match = re.fullmatch(r"-Xmx(\d+)([mMkK])", arg)
    if not match:
        return None
    n = int(match.group(1))
    return n if match.group(2) in "mM" else n / 1024


def beagle_command(
    gt: str | os.PathLike,
    ref: str | os.PathLike,
    genetic_map: str | os.PathLike | None,
    out_prefix: str | os.PathLike,
    heap_mb: int,
    threads: int,
    params: BeagleParams = BeagleParams(),
    jar: str | os.PathLike | None = None,
    java: str = "java",
    gc_log: str | os.PathLike | None = None,
) -> list[str]:
    """``java -Xmx<heap>m -XX:+ExitOnOutOfMemoryError -jar <jar> gt= ref= map= out= nthreads= [...]``
    (with ``-Xlog:gc:file=<gc_log>`` first when ``gc_log`` is given)."""
    if int(threads) < 1:
        raise ChromoschedError(f"beagle: threads must be >= 1, not {threads}")
    logging = [f"-Xlog:gc:file={gc_log}"] if gc_log else []
    cmd = [
        java,
        *logging,
        xmx_option(heap_mb),
        "-XX:+ExitOnOutOfMemoryError",
        "-jar",
        str(jar or find_beagle_jar()),
        f"gt={gt}",
        f"ref={ref}",
    ]
    if genetic_map:
        cmd.append(f"map={genetic_map}")
    cmd += [f"out={out_prefix}", f"nthreads={int(threads)}"]
    return cmd + params.arguments()


@dataclass
class BeagleResult:
    """Outcome of one Beagle run."""

    command: list[str]
    exit_code: int  # shell convention: 128 + signal number when killed by a signal
    heap_oom: bool  # Java heap exhausted (-Xmx too small)
    killed: bool  # killed by a signal (kernel OOM killer, Slurm, user)
    wall_s: float
    peak_rss_mb: float  # maximum resident set size of the Java process
    heap_mb: float | None = None  # MB; whole unless -Xmx was given in KB
    mem_mb: int | None = None
    threads: int | None = None
    output_tail: list[str] = field(default_factory=list)
    gc_live_mb: float | None = None  # largest heap occupancy after a GC (live-set estimate)
    need_mb: float | None = None  # mem_mb this run really needed: live set x GC_LIVE_SAFETY + JVM

    def set_gc_live(self, live_mb: float | None) -> None:
        self.gc_live_mb = live_mb
        if live_mb is not None and self.ok:
            self.need_mb = float(mem_mb_for_heap(max(HEAP_FLOOR_MB, GC_LIVE_SAFETY * live_mb)))

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def kind(self) -> str:
        """``ok``, ``heap_oom``, ``killed`` or ``error``."""
        if self.ok:
            return "ok"
        if self.heap_oom:
            return "heap_oom"
        if self.killed:
            return "killed"
        return "error"

    def as_json(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind
        return data

    def describe(self) -> str:
        """One line for logs and error messages."""
        where = (xmx_option(self.heap_mb) if self.heap_mb is not None else "-Xmx?") + (
            f" from mem_mb={self.mem_mb}" if self.mem_mb else ""
        )
        base = f"wall {self.wall_s:.1f} s, peak RSS {self.peak_rss_mb:.0f} MB, {where}"
        if self.ok:
            return f"beagle finished ({base})"
        if self.heap_oom:
            return f"beagle ran out of Java heap ({base}); a retry with more mem_mb gets a larger heap"
        if self.killed:
            return (
                f"beagle was killed (exit {self.exit_code}; {base}); likely the kernel OOM killer or the batch system"
            )
        last = next((line for line in reversed(self.output_tail) if line.strip()), "")
        return f"beagle failed with exit {self.exit_code} ({base}): {last.strip()[:300]}"


def classify_exit(exit_code: int, output: str) -> tuple[bool, bool]:
    """(heap_oom, killed) from an exit status (shell convention) and the captured output."""
    heap_oom = OOM_MARKER in output or (exit_code == OOM_EXIT_CODE and "OutOfMemoryError" in output)
    if exit_code == OOM_EXIT_CODE and not output.strip():
        heap_oom = True  # -XX:+ExitOnOutOfMemoryError with its message lost (e.g. stdout closed)
    killed = exit_code == KILLED_EXIT_CODE or exit_code == 128 + signal.SIGKILL
    return heap_oom, killed


def run_beagle(
    command: Sequence[str],
    stream: IO[str] | None = None,
    tail_lines: int = 200,
) -> BeagleResult:
    """Run Beagle, echoing its output to ``stream`` (default stderr) as it comes.

    Peak RSS comes from ``os.wait4`` on the Java process (kernel-maintained, not sampled, so a
    short spike is not missed).
    """
    stream = stream or sys.stderr
    tail: deque[str] = deque(maxlen=tail_lines)
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    )

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            stream.write(line)
            stream.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=30)
    wall = time.perf_counter() - started
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    text = "\n".join(tail)
    heap_oom, killed = classify_exit(code, text)
    heap = next((h for h in map(heap_mb_of_option, command) if h is not None), None)
    threads = next((int(a[9:]) for a in command if a.startswith("nthreads=")), None)
    return BeagleResult(
        command=list(command),
        exit_code=code,
        heap_oom=heap_oom,
        killed=killed,
        wall_s=round(wall, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        heap_mb=heap,
        threads=threads,
        output_tail=list(tail)[-20:],
    )


def contig_header_lines(contigs: dict[str, int | None]) -> list[str]:
    return [f"##contig=<ID={c}" + (f",length={n}>" if n else ">") for c, n in contigs.items()]


def restore_contigs(vcf_in: str | os.PathLike, vcf_out: str | os.PathLike, contigs: dict[str, int | None]) -> int:
    """Copy ``vcf_in`` to ``vcf_out`` (bgzipped + .tbi, atomically) with ``##contig`` lines added.

    Existing ``##contig`` lines are replaced. Returns the number of records.
    """
    header = [line for line in read_header_lines(vcf_in) if not line.startswith("##contig")]
    insert_at = 1 if header and header[0].startswith("##fileformat") else 0
    header[insert_at:insert_at] = contig_header_lines(contigs)

    def records():
        with gzip.open(vcf_in, "rt") as fh:
            for line in fh:
                if not line.startswith("#"):
                    yield line.rstrip("\n")

    return write_bgzipped_vcf(vcf_out, header, records())


def panel_contigs(ref: str | os.PathLike, names: Sequence[str] | None = None) -> dict[str, int | None]:
    """``##contig`` entries of the reference panel (optionally only ``names``)."""
    contigs = header_contig_lengths(read_header_lines(ref))
    if names is not None:
        contigs = {n: contigs.get(n) for n in names}
    return contigs


def impute(
    gt: str | os.PathLike,
    ref: str | os.PathLike,
    genetic_map: str | os.PathLike | None,
    out_vcf: str | os.PathLike,
    mem_mb: int,
    threads: int,
    params: BeagleParams = BeagleParams(),
    jar: str | os.PathLike | None = None,
    attempts_log: str | os.PathLike | None = None,
    stream: IO[str] | None = None,
) -> BeagleResult:
    """Impute ``gt`` against ``ref`` into ``out_vcf`` (+ ``.tbi``) with contigs restored.

    Beagle writes into a hidden temporary prefix beside ``out_vcf``; the final files appear only
    when everything succeeded. Each run is appended as one JSON line to ``attempts_log`` (if
    given) whatever its outcome, because failed attempts leave no Snakemake benchmark file.
    """
    out_vcf = Path(out_vcf)
    if not str(out_vcf).endswith(".vcf.gz"):
        raise ChromoschedError(f"beagle: output {out_vcf} must end in .vcf.gz")
    for path, what in ((gt, "target VCF"), (ref, "reference panel")):
        check_bgzf_complete(path, what)
    if genetic_map and not Path(genetic_map).is_file():
        raise ChromoschedError(f"genetic map {genetic_map}: file not found")
    out_vcf.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_vcf)  # a killed attempt's Beagle files
    prefix = temporary_path(out_vcf, ".beagle")
    heap = heap_mb_for(mem_mb)
    gc_log = Path(f"{prefix}.gc.log")
    command = beagle_command(gt, ref, genetic_map, prefix, heap, threads, params, jar, gc_log=gc_log)
    produced = [Path(f"{prefix}.vcf.gz"), Path(f"{prefix}.log"), gc_log]
    try:
        result = run_beagle(command, stream=stream)
        result.mem_mb = int(mem_mb)
        result.set_gc_live(gc_peak_after_mb(gc_log))
        if attempts_log:
            append_json_line(
                attempts_log, {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "out": str(out_vcf), **result.as_json()}
            )
        if result.ok:
            if not produced[0].is_file():
                raise ChromoschedError(f"beagle exited 0 but wrote no {produced[0]}")
            target_contigs = list(header_contig_lengths(read_header_lines(produced[0]))) or _record_contigs(produced[0])
            restore_contigs(produced[0], out_vcf, panel_contigs(ref, target_contigs))
        return result
    finally:
        for path in produced:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def gc_peak_after_mb(log: str | os.PathLike) -> float | None:
    """Largest heap occupancy after any collection in a ``-Xlog:gc`` file (a live-set estimate)."""
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return None
    peaks = [int(m.group(2)) for m in _GC_PAUSE.finditer(text)]
    return float(max(peaks)) if peaks else None


def _record_contigs(vcf: Path) -> list[str]:
    """Contig names in record order (Beagle's output has no ##contig lines to read them from)."""
    seen: dict[str, None] = {}
    with gzip.open(vcf, "rt") as fh:
        for line in fh:
            if not line.startswith("#"):
                seen.setdefault(line.split("\t", 1)[0], None)
    return list(seen)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.imputation.beagle", description="Run Beagle 5.4 with a heap from mem_mb."
    )
    p.add_argument("--gt", required=True, help="target VCF (bgzipped)")
    p.add_argument("--ref", required=True, help="phased reference panel VCF (bgzipped) or bref3")
    p.add_argument("--map", default=None, help="PLINK-format genetic map (cM); optional")
    p.add_argument(
        "--out", required=True, type=Path, help="output VCF path, ending in .vcf.gz (a .tbi is written beside it)"
    )
    p.add_argument(
        "--mem-mb", required=True, type=int, help="memory granted to the job (MB); the heap is derived from it"
    )
    p.add_argument("--threads", required=True, type=int, help="Beagle nthreads")
    p.add_argument("--window", type=float, default=None, help="Beagle window (cM)")
    p.add_argument("--overlap", type=float, default=None, help="Beagle overlap (cM)")
    p.add_argument("--burnin", type=int, default=None, help="Beagle burn-in iterations")
    p.add_argument("--iterations", type=int, default=None, help="Beagle phasing iterations")
    p.add_argument("--ne", type=int, default=None, help="Beagle effective population size")
    p.add_argument("--seed", type=int, default=None, help="Beagle random seed")
    p.add_argument("--jar", default=None, help="beagle.jar (default: $BEAGLE_JAR, then dpkg -L beagle)")
    p.add_argument(
        "--attempts", default=None, help="append one JSON line per run (outcome, heap, peak RSS) to this file"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    args = build_parser().parse_args(argv)
    params = BeagleParams(args.window, args.overlap, args.burnin, args.iterations, args.ne, args.seed)
    try:
        result = impute(
            args.gt, args.ref, args.map, args.out, args.mem_mb, args.threads, params, args.jar, args.attempts
        )
    except ChromoschedError as exc:
        print(f"beagle: error: {exc}", file=sys.stderr)
        return 2
    print(f"beagle: {result.describe()}", file=sys.stderr)
    if result.ok:
        return 0
    if result.heap_oom:
        return OOM_EXIT_CODE
    if result.killed:
        return KILLED_EXIT_CODE
    return result.exit_code or 1


if __name__ == "__main__":
    sys.exit(main())
