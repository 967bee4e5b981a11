"""Measure Beagle 5.4's minimum Java heap over a design of its eight memory features.

For the RAM prior (``chromosched prior fit``) each design point needs the *minimum* heap with which
Beagle succeeds: peak RSS follows ``-Xmx`` rather than the data (REFERENCE 4), so learning from the
RSS of a generous heap would only learn the heap we gave it.

Data
    One msprime chromosome (``simulate.simulate_chromosome``: out-of-Africa + admixed demography,
    hotspot map, HKY) is simulated once with the largest sample counts and every common SNP on the
    "array" (``array_density=1``). Each design point then cuts its own inputs with ``bcftools view``:
    ``ref_samples`` panel samples, ``target_samples`` target samples, ``ref_variants`` panel markers
    (thinned uniformly along the chromosome) of which ``target_variants`` common SNPs form the array.
    The array density ``target_variants / ref_variants`` is a design axis of its own, so target and
    reference marker counts are not confounded. Windows shorter than the chromosome's genetic length
    (``BaseData.length_bp`` at ~1.15 cM per Mb: 14.3 cM) split it; longer ones take it whole.

Design
    A scrambled Sobol sequence over the eight axes (space-filling in 8-D; every prefix of 2^k points is
    balanced, so a run cut short is still an even sample). Counts are log-uniform over demo-scale
    ranges (``DesignSpace``), small integers uniform. The held-out split is a second, independently
    scrambled Sobol sequence of the same space; the two are interleaved (3 fit : 1 held-out) so any
    prefix of the run contains both.

Minimum heap, by bracketed bisection on ``-Xmx`` (with ``-XX:+ExitOnOutOfMemoryError``)
    1. First probe: a running log-linear model fitted on the points already measured (after 12
       points; x1.3), else three times REFERENCE 4's rule ``25 MB + 3.6 B x ref markers per window x
       target samples`` (at least 64 MB; the rule misses thread and phasing-state memory). Doubled
       until Beagle succeeds.
    2. Every run logs GC (``-Xlog:gc``); the largest heap occupancy after a collection in the first,
       generous success is a live-set estimate ``g``; measured minimum heaps were 0.6-1.7x of it, and
       ``log(min heap) ~ log(g)`` fitted on the finished rows (``GcCalibration``) predicts the minimum.
       Two probes straddling that prediction (+-4 %) bracket it when it is good; otherwise galloping
       down (steps x1.09, x1.19, x1.41, x2, ...) until a failure brackets it.
    3. Geometric bisection between the largest failing and the smallest succeeding heap until they
       are within 9 % or 2 MB. ``min_heap_mb`` is the smallest heap that succeeded (an upper bound
       on the true minimum, within 9 %: conservative for a prior).
    A run that takes more than 4x (+60 s) the wall time of the first success is killed and counts as
    a failure: a heap that makes Beagle thrash in GC is not one a scheduler should hand out.

Afterwards, for held-out rows (both resumable, both rewrite the rows they touch):
    ``--refine SPLIT`` re-runs each row's succeeding heap and bisects its bracket to ``--refine-rtol``
    or ``--refine-atol`` (whole MB); ``--probe SPLIT --probe-prior P`` runs Beagle at each calibrated
    estimate of ``P`` that lies strictly inside a row's bracket (``-Xmx`` in KB, rounded down), so
    whether that estimate is enough is measured rather than left to the bracket's upper end. This
    JVM (G1) sizes the heap in 2 MB steps (``-Xmx36m`` gives 36 MB, ``-Xmx37m`` and ``-Xmx36865k``
    both 38 MB; ``java -Xmx37m -XX:+PrintFlagsFinal -version``), so a 1 MB bracket can still hold an
    estimate whose heap is the bracket's succeeding one.

Several chromosome lengths (docs/prior.md)
    ``--chrom/--length-bp/--n-ref/--n-target/--base-seed`` choose the base chromosome and
    ``--window-cm LO HI`` etc. the design ranges; every row records its base's genetic length
    (``chrom_cm``), and ``--merge A.tsv:PREFIX:SPLIT B.tsv ...`` joins tables of different bases into
    the one a prior is fitted on (older single-base tables take ``chrom_cm`` from their comment).
    ``--at-estimate SPLIT --design T.tsv`` (or ``--at-estimate corner``: the 16 corners of the ranges)
    runs Beagle at a prior's calibrated estimate and records whether it was enough.

Output: one TSV row per design point, appended atomically (the table is rewritten to a temporary
file and renamed), so a killed run resumes where it stopped and skips finished points.

    nice -n 10 python -m chromosched_pipeline.imputation.beagle_profile --out config/priors/beagle_runs.tsv \\
        --work resources/beagle_profile --n-fit 192 --n-heldout 64 --seed 11
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from chromosched.errors import ChromoschedError
from chromosched.progress import ProgressBar

from ..demo_data.simulate import simulate_chromosome
from ..vcfio import write_text_atomic
from .beagle import BeagleParams, beagle_command, find_beagle_jar, gc_peak_after_mb, run_beagle, xmx_option
from .beagle_design import (
    FEATURES,
    TINY_BASE,
    TINY_SPACE,
    BaseData,
    DesignPoint,
    DesignSpace,
    corner_design,
    interleave,
    make_design,
)
from .beagle_heap_search import (
    Attempt,
    GcCalibration,
    RunningModel,
    bracket_is_narrow,
    find_min_heap,
    probe_heaps,
    refine_bracket,
    rule_of_thumb_mb,
)
from .beagle_runs_table import (
    COLUMNS,
    ESTIMATE_COLUMNS,
    merge,
    read_table,
    table_points,
    table_value,
    write_table,
)


# -- base data -------------------------------------------------------------------------------------
@dataclass
class BaseFiles:
    panel: Path
    target: Path
    map: Path
    genetic_length_cm: float
    panel_ids: list[str]
    common_ids: list[str]
    ref_samples: list[str]
    target_samples: list[str]


def _bcftools(*args: str) -> str:
    try:
        return subprocess.run(["bcftools", *args], check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise ChromoschedError("bcftools not found on PATH (Debian package bcftools)") from None
    except subprocess.CalledProcessError as err:
        raise ChromoschedError(
            f"bcftools {' '.join(args[:3])} failed: {err.stderr.strip().splitlines()[-1] if err.stderr.strip() else err.returncode}"
        ) from None


def prepare_base(work: Path, base: BaseData, progress: Callable[[str], None]) -> BaseFiles:
    """Simulate the base chromosome once (reused when ``work/base/params.json`` matches)."""
    out = work / "base"
    stamp = out / "params.json"
    wanted = asdict(base)
    if not (stamp.is_file() and json.loads(stamp.read_text()) == wanted):
        progress(
            f"simulating the base chromosome {base.chrom} ({base.length_bp} bp, {base.n_ref} reference, "
            f"{base.n_target} target samples) under {out}"
        )
        simulate_chromosome(
            base.chrom,
            base.length_bp,
            out,
            n_ref=base.n_ref,
            n_target=base.n_target,
            array_density=1.0,
            missing_rate=0.0,
            seed=base.seed,
        )
        write_text_atomic(stamp, json.dumps(wanted))
    panel = out / "panel" / f"{base.chrom}.vcf.gz"
    target = out / "target" / f"{base.chrom}.vcf.gz"
    genetic_map = out / "map" / f"{base.chrom}.map"
    last = genetic_map.read_text().strip().splitlines()[-1].split()
    return BaseFiles(
        panel=panel,
        target=target,
        map=genetic_map,
        genetic_length_cm=float(last[2]),
        panel_ids=_bcftools("query", "-f", "%ID\n", str(panel)).split(),
        common_ids=_bcftools("query", "-f", "%ID\n", str(target)).split(),
        ref_samples=_bcftools("query", "-l", str(panel)).split(),
        target_samples=_bcftools("query", "-l", str(target)).split(),
    )


def cut_inputs(point: DesignPoint, base: BaseFiles, where: Path, seed: int) -> tuple[Path, Path]:
    """Write this point's target and reference VCFs (sample and marker subsets of the base)."""
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, int(hashlib.sha256(point.design_id.encode()).hexdigest()[:8], 16)])
    )
    if point.ref_variants > len(base.panel_ids) or point.target_variants > len(base.common_ids):
        raise ChromoschedError(f"{point.design_id}: asks for more markers than the base chromosome has")
    if point.ref_samples > len(base.ref_samples) or point.target_samples > len(base.target_samples):
        raise ChromoschedError(f"{point.design_id}: asks for more samples than the base chromosome has")
    target_ids = set(rng.choice(base.common_ids, size=point.target_variants, replace=False).tolist())
    others = [i for i in base.panel_ids if i not in target_ids]
    extra = rng.choice(len(others), size=point.ref_variants - len(target_ids), replace=False)
    ref_ids = target_ids | {others[i] for i in extra}
    where.mkdir(parents=True, exist_ok=True)
    (where / "ref_ids.txt").write_text("\n".join(sorted(ref_ids)) + "\n")
    (where / "target_ids.txt").write_text("\n".join(sorted(target_ids)) + "\n")
    ref_samples = sorted(rng.choice(base.ref_samples, size=point.ref_samples, replace=False).tolist())
    target_samples = sorted(rng.choice(base.target_samples, size=point.target_samples, replace=False).tolist())
    (where / "ref_samples.txt").write_text("\n".join(ref_samples) + "\n")
    (where / "target_samples.txt").write_text("\n".join(target_samples) + "\n")
    ref = where / "ref.vcf.gz"
    gt = where / "gt.vcf.gz"
    _bcftools(
        "view",
        "-S",
        str(where / "ref_samples.txt"),
        "-i",
        f"ID=@{where / 'ref_ids.txt'}",
        "-Oz",
        "-o",
        str(ref),
        str(base.panel),
    )
    _bcftools(
        "view",
        "-S",
        str(where / "target_samples.txt"),
        "-i",
        f"ID=@{where / 'target_ids.txt'}",
        "-Oz",
        "-o",
        str(gt),
        str(base.target),
    )
    return gt, ref


# A tiny launcher between us and java. Linux keeps the parent's RSS high-water mark in a child's
# ru_maxrss across (v)fork + exec, so wait4 on a child of this (large) Python process reports at
# least our own peak; java started by a small launcher reports its own. It also enforces the
# wall-clock limit (SIGKILL -> exit 137, which run_beagle classifies as killed), and takes java down
# with it when the profiler is killed.
_LAUNCHER = """
import json, os, signal, subprocess, sys, time
limit, report, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
parent = os.getppid()
child = subprocess.Popen(cmd)
deadline, killed = time.monotonic() + limit, False
while True:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() > deadline or os.getppid() != parent:  # over time, or the profiler died
        os.kill(child.pid, signal.SIGKILL)
        killed = True
        pid, status, usage = os.wait4(child.pid, 0)
        break
    time.sleep(0.05)
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as handle:
    json.dump({"maxrss_kb": usage.ru_maxrss, "timed_out": killed, "exit": code}, handle)
sys.exit(128 - code if code < 0 else code)
"""


def beagle_runner(
    gt: Path, ref: Path, genetic_map: Path, where: Path, point: DesignPoint, jar: Path, log: Callable[[str], None]
) -> Callable[[float, float], Attempt]:
    """``run_at(heap, timeout)`` for one design point, built on the pipeline's Beagle command."""
    params = BeagleParams(window=point.window_cm, burnin=point.burnin, iterations=point.iterations, seed=1)

    def run_at(heap: float, timeout: float) -> Attempt:
        gc_log = where / f"gc_{heap}.log"
        report = where / f"launch_{heap}.json"
        # profiling additions: a GC log (live-set estimate) and the launcher (own RSS, time limit)
        command = beagle_command(
            gt, ref, genetic_map, where / f"out_{heap}", heap, point.threads, params, jar, gc_log=gc_log
        )
        command = [sys.executable, "-c", _LAUNCHER, f"{timeout:.0f}", str(report)] + command
        result = run_beagle(command, stream=io.StringIO())
        timed_out = False
        with contextlib.suppress(FileNotFoundError, ValueError):
            launch = json.loads(report.read_text())
            result.peak_rss_mb = round(launch["maxrss_kb"] / 1024, 1)
            timed_out = bool(launch["timed_out"])
        attempt = Attempt(heap, result, gc_peak_after_mb(gc_log), timed_out)
        log(
            f"  {xmx_option(heap)}: {result.kind}{' (time limit)' if timed_out else ''}, {result.wall_s:.1f} s, "
            f"RSS {result.peak_rss_mb:.0f} MB, GC live-set estimate {attempt.gc_peak_mb} MB"
        )
        for path in (Path(f"{where / f'out_{heap}'}.vcf.gz"), Path(f"{where / f'out_{heap}'}.log"), gc_log, report):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return attempt

    return run_at


# -- the table -------------------------------------------------------------------------------------
def profile(
    out: Path,
    work: Path,
    n_fit: int,
    n_heldout: int,
    seed: int,
    space: DesignSpace = DesignSpace(),
    base: BaseData = BaseData(),
    limit: int | None = None,
    max_hours: float | None = None,
    jar: str | None = None,
    command_line: str = "",
    progress: Callable[[str], None] | None = None,
    id_prefix: str = "",
) -> list[dict]:
    """Run (or resume) the profiling design; returns all rows of the table. ``id_prefix`` keeps
    design ids unique when tables cut from different base chromosomes are merged."""
    with ProgressBar(None, "beagle profile", unit="point", enabled=progress is None) as bar:
        return _profile(
            out,
            work,
            n_fit,
            n_heldout,
            seed,
            space,
            base,
            limit,
            max_hours,
            jar,
            command_line,
            progress or (lambda m: bar.write(f"beagle_profile: {m}")),
            bar,
            id_prefix,
        )


def _profile(
    out,
    work,
    n_fit,
    n_heldout,
    seed,
    space,
    base,
    limit,
    max_hours,
    jar,
    command_line,
    progress,
    bar: ProgressBar,
    id_prefix: str = "",
) -> list[dict]:
    jar_path = find_beagle_jar(jar)
    base_files = prepare_base(work, base, progress)
    n_common, n_panel = len(base_files.common_ids), len(base_files.panel_ids)
    design = interleave(
        make_design(n_fit, seed, "fit", space, n_common, n_panel),
        make_design(n_heldout, seed + 1, "heldout", space, n_common, n_panel),
    )
    for point in design:
        point.design_id = id_prefix + point.design_id
    comments, rows = read_table(out)
    if not comments:
        comments = [
            f"# Beagle 5.4 minimum-heap profile (chromosched_pipeline.imputation.beagle_profile); base: {json.dumps(asdict(base))}",
            f"# design space: {json.dumps(asdict(space))}; seed {seed}; genetic length {base_files.genetic_length_cm:.2f} cM",
            f"# regenerate: {command_line or 'python -m chromosched_pipeline.imputation.beagle_profile --out ' + str(out)}",
        ]
    done = {r["design_id"] for r in rows}
    todo = [p for p in design if p.design_id not in done]
    progress(f"{len(design)} design points, {len(done)} done, {len(todo)} to go; table {out}")
    bar.reset(min(len(todo), limit) if limit is not None else len(todo))
    started = time.time()
    measured = 0
    for index, point in enumerate(todo, start=1):
        if limit is not None and measured >= limit:
            break
        if max_hours is not None and time.time() - started > max_hours * 3600:
            progress(f"stopping after {max_hours} h; rerun the same command to resume")
            break
        t0 = time.perf_counter()
        where = work / "runs" / point.design_id
        shutil.rmtree(where, ignore_errors=True)
        try:
            gt, ref = cut_inputs(point, base_files, where, seed)
            model = RunningModel(rows, base_files.genetic_length_cm)
            guess = model.guess(point)
            # the rule of thumb under-predicts many points (threads, phasing states): start high
            probe = guess * 1.3 if guess else max(64.0, 3.0 * rule_of_thumb_mb(point, base_files.genetic_length_cm))
            progress(
                f"[{len(done) + index}/{len(design)}] {point.design_id} {point.features()} first probe {probe:.0f} MB"
            )
            outcome = find_min_heap(
                beagle_runner(gt, ref, base_files.map, where, point, jar_path, progress),
                probe,
                predict_from_gc=GcCalibration(rows),
            )
        finally:
            shutil.rmtree(where, ignore_errors=True)
        row = {
            "design_id": point.design_id,
            "split": point.split,
            **point.features(),
            "chrom_cm": round(base_files.genetic_length_cm, 3),
            "min_heap_mb": outcome.min_heap_mb,
            "max_fail_mb": outcome.max_fail_mb,
            "gc_live_mb": outcome.gc_live_mb,
            "wall_s": outcome.wall_s,
            "wall_at_min_s": outcome.wall_at_min_s,
            "peak_rss_mb": outcome.peak_rss_mb,
            "attempts": len(outcome.attempts),
            "profile_s": round(time.perf_counter() - t0, 1),
            "status": outcome.status,
        }
        rows.append({k: table_value(v) for k, v in row.items()})
        write_table(out, comments, rows)
        measured += 1
        progress(
            f"  -> {point.design_id}: min heap {outcome.min_heap_mb} MB (fails at {outcome.max_fail_mb}), "
            f"{len(outcome.attempts)} runs, {row['profile_s']} s, status {outcome.status}"
        )
        bar.update(1, note=f"{point.design_id}: {outcome.min_heap_mb} MB")
    return rows


def refine(
    out: Path,
    work: Path,
    split: str,
    seed: int,
    rtol: float = 0.02,
    atol: float = 1.0,
    base: BaseData = BaseData(),
    jar: str | None = None,
    command_line: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Narrow the measured brackets of one split's rows (resumable: rows already narrow are skipped).

    ``min_heap_mb`` becomes the smallest heap that succeeded in this pass (the old succeeding heap is
    re-run first; if it now fails, the value goes up), ``max_fail_mb`` the largest that failed in
    either pass; ``attempts`` and ``profile_s`` accumulate. The design features come from the
    table, the inputs are cut again from the same base simulation with the same seed.
    """
    progress = progress or (lambda m: print(f"beagle_profile: {m}", file=sys.stderr, flush=True))
    if atol < 1:
        raise ChromoschedError(
            f"refine: --refine-atol {atol:g} is below 1 MB, but refine bisects in whole MB; "
            "use --probe to run Beagle at heaps inside a bracket"
        )
    comments, rows = read_table(out)
    if not rows:
        raise ChromoschedError(f"{out}: no runs to refine")
    jar_path = find_beagle_jar(jar)
    base_files = prepare_base(work, base, progress)

    def wide(r: dict) -> bool:
        if r["split"] != split or r["status"] != "ok" or r["max_fail_mb"] in ("", "NA"):
            return False
        return not bracket_is_narrow(*_bracket(r), rtol, atol)

    todo = [r for r in rows if wide(r)]
    note = f"# refined: {split} rows narrowed to {rtol:g} relative or {atol:g} MB: {command_line or 'refine'}"
    if todo and note not in comments:
        comments.append(note)
    progress(
        f"{sum(r['split'] == split for r in rows)} {split} rows, {len(todo)} with a bracket wider than "
        f"{rtol:g} / {atol:g} MB; table {out}"
    )
    for index, row in enumerate(todo, start=1):
        t0 = time.perf_counter()
        progress(f"[{index}/{len(todo)}] {row['design_id']}: bracket ({row['max_fail_mb']}, {row['min_heap_mb']}] MB")
        with _rerun_row(row, work, base_files, seed, jar_path, progress) as (run_at, timeout):
            new_lo, new_hi, best, attempts, status = refine_bracket(run_at, *_bracket(row), timeout, rtol, atol)
        if new_hi is None or status == "error":
            progress(f"  -> {row['design_id']}: {status}; row left as it was")
            continue
        _record_bracket(row, new_lo, new_hi, best, attempts, t0)
        row["status"] = "ok"  # a wider-than-asked bracket is still a valid one
        write_table(out, comments, rows)
        progress(
            f"  -> {row['design_id']}: ({row['max_fail_mb']}, {row['min_heap_mb']}] MB, {len(attempts)} runs"
            f"{'; the old succeeding heap failed on the re-run' if status == 'moved' else ''}"
        )
    return rows


@contextlib.contextmanager
def _rerun_row(row: dict, work: Path, base_files: BaseFiles, seed: int, jar: Path, progress: Callable[[str], None]):
    """Beagle again for a row of the table: its design point from the row's features, its inputs cut
    again from the same base simulation with the same seed into a scratch directory that is removed
    afterwards. Yields ``(run_at, time limit)``; the limit is 4x the row's first success + 60 s."""
    point = DesignPoint(
        design_id=row["design_id"],
        split=row["split"],
        **{k: (float(row[k]) if k == "window_cm" else int(row[k])) for k in FEATURES},
    )
    where = work / "runs" / point.design_id
    shutil.rmtree(where, ignore_errors=True)
    timeout = 4.0 * float(row["wall_s"]) + 60.0 if row["wall_s"] not in ("", "NA") else 900.0
    try:
        gt, ref = cut_inputs(point, base_files, where, seed)
        yield beagle_runner(gt, ref, base_files.map, where, point, jar, progress), timeout
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _bracket(row: dict) -> tuple[float, float]:
    """A measured row's bracket: (largest failing heap, smallest succeeding heap), MB."""
    return float(row["max_fail_mb"]), float(row["min_heap_mb"])


def _record_bracket(
    row: dict, lo: float, hi: float, best: Attempt | None, attempts: Sequence[Attempt], started: float
) -> None:
    """Write a re-measured bracket into ``row``, adding the runs and the time it took; the wall time
    and peak RSS at the minimum come from ``best``, the run at ``hi``, when this pass made one."""
    row.update(
        {
            "min_heap_mb": _heap_text(hi),
            "max_fail_mb": _heap_text(lo),
            "attempts": table_value(int(row["attempts"]) + len(attempts)),
            "profile_s": table_value(round(float(row["profile_s"]) + time.perf_counter() - started, 1)),
        }
    )
    if best is not None:
        row.update(
            {"wall_at_min_s": table_value(best.result.wall_s), "peak_rss_mb": table_value(best.result.peak_rss_mb)}
        )


def probe_heap_mb(estimate: float) -> float:
    """The heap a probe runs at for a calibrated estimate: rounded down to a whole KB, so the heap
    Beagle gets is never above the estimate (``-Xmx<n>k``, :func:`chromosched_pipeline.imputation.beagle.xmx_option`)."""
    return math.floor(float(estimate) * 1024) / 1024


def probe(
    out: Path,
    work: Path,
    split: str,
    seed: int,
    prior_path: Path,
    levels: Sequence[float] = (0.8, 0.9, 0.95),
    repeats: int = 3,
    base: BaseData = BaseData(),
    jar: str | None = None,
    command_line: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Decide the rows whose measured bracket holds a calibrated estimate of ``prior_path``.

    A row with ``max_fail_mb < estimate < min_heap_mb`` at one of ``levels`` cannot say whether the
    estimate is enough: its real minimum heap lies somewhere in the bracket. Beagle is run at the
    estimate itself (rounded down to a KB), ``repeats`` times, and the bracket narrowed by
    :func:`probe_heaps`: ``min_heap_mb`` becomes the estimate if every repeat succeeded,
    ``max_fail_mb`` becomes it if one ran out of heap. Rows without such an estimate are not run.
    Resumable: a decided row no longer holds the estimate inside its bracket.
    """
    from chromosched.prior import load_prior

    progress = progress or (lambda m: print(f"beagle_profile: {m}", file=sys.stderr, flush=True))
    comments, rows = read_table(out)
    if not rows:
        raise ChromoschedError(f"{out}: no runs to probe")
    prior = load_prior(prior_path)
    missing = [f for f in prior.feature_names if f not in COLUMNS]
    if missing:
        raise ChromoschedError(f"{prior_path}: features {missing} are not columns of {out}")
    candidates = [r for r in rows if r["split"] == split and r["status"] == "ok" and r["max_fail_mb"] not in ("", "NA")]
    todo: list[tuple[dict, list[float]]] = []
    for row in candidates:
        inputs = {f: float(row[f]) for f in prior.feature_names}
        if row.get("chrom_cm") not in (None, "", "NA", "None"):
            inputs["chrom_cm"] = float(row["chrom_cm"])
        lo, hi = _bracket(row)
        heaps = sorted({probe_heap_mb(prior.calibrated_mb(inputs, level)) for level in levels})
        heaps = [h for h in heaps if lo < h < hi]
        if heaps:
            todo.append((row, heaps))
    note = (
        f"# probed: {split} rows whose bracket holds a calibrated estimate of {Path(prior_path).name} "
        f"(levels {', '.join(f'{lv:g}' for lv in levels)}) re-run {repeats}x at that -Xmx: {command_line or 'probe'}"
    )
    if todo and note not in comments:
        comments.append(note)
    progress(f"{len(candidates)} {split} rows, {len(todo)} with a calibrated estimate inside the bracket; table {out}")
    if not todo:
        return rows
    jar_path = find_beagle_jar(jar)
    base_files = prepare_base(work, base, progress)
    for index, (row, heaps) in enumerate(todo, start=1):
        t0 = time.perf_counter()
        progress(
            f"[{index}/{len(todo)}] {row['design_id']}: bracket ({row['max_fail_mb']}, {row['min_heap_mb']}] MB, "
            f"estimates {', '.join(f'{h:.3f}' for h in heaps)} MB"
        )
        with _rerun_row(row, work, base_files, seed, jar_path, progress) as (run_at, timeout):
            new_lo, new_hi, best, attempts = probe_heaps(run_at, *_bracket(row), heaps, timeout, repeats)
        if any(not (a.result.ok or a.result.heap_oom or a.timed_out) for a in attempts):
            progress(f"  -> {row['design_id']}: Beagle failed for another reason; row left as it was")
            continue
        _record_bracket(row, new_lo, new_hi, best, attempts, t0)
        write_table(out, comments, rows)
        progress(f"  -> {row['design_id']}: ({row['max_fail_mb']}, {row['min_heap_mb']}] MB, {len(attempts)} runs")
    return rows


def at_estimates(
    out: Path,
    work: Path,
    points: Sequence[DesignPoint],
    prior_path: Path,
    levels: Sequence[float],
    repeats: int,
    seed: int,
    base: BaseData = BaseData(),
    jar: str | None = None,
    command_line: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run Beagle at each point's calibrated estimate (per level) and record whether it was enough.

    The heap is the estimate rounded down to a KB (never above it); ``outcome`` is ``ok`` only when all
    ``repeats`` runs succeeded, ``oom`` when one ran out of heap (or hit the time limit). A run that
    failed otherwise is repeated with a generous heap (4x, at least 256 MB): ``invalid`` when Beagle
    fails there too (a job Beagle cannot run at any heap, e.g. a window with a single target marker),
    else ``error``. Resumable: (design id, level) pairs already in ``out`` are skipped, except
    ``error`` ones; the table is rewritten atomically.
    """
    from chromosched.prior import load_prior

    progress = progress or (lambda m: print(f"beagle_profile: {m}", file=sys.stderr, flush=True))
    prior = load_prior(prior_path)
    jar_path = find_beagle_jar(jar)
    base_files = prepare_base(work, base, progress)
    rows: list[dict] = []
    if out.is_file():
        lines = [line for line in out.read_text().splitlines() if line and not line.startswith("#")]
        if lines and tuple(lines[0].split("\t")) != ESTIMATE_COLUMNS:
            raise ChromoschedError(f"{out}: header differs from the at-estimate columns; use a new --out")
        rows = [dict(zip(ESTIMATE_COLUMNS, line.split("\t"))) for line in lines[1:]]
        rows = [r for r in rows if r["outcome"] != "error"]  # an unexplained failure is run again
    comments = [
        f"# Beagle run at calibrated estimates of {prior_path} (heap rounded down to a KB; {repeats} run(s), all must succeed)",
        f"# base: {json.dumps(asdict(base))}; genetic length {base_files.genetic_length_cm:.2f} cM",
        f"# regenerate: {command_line or 'at_estimates'}",
    ]
    done = {(r["design_id"], r["level"]) for r in rows}
    length = round(base_files.genetic_length_cm, 3)
    for index, point in enumerate(points, start=1):
        todo = [lv for lv in levels if (point.design_id, f"{lv:g}") not in done]
        if not todo:
            continue
        where = work / "runs" / point.design_id
        shutil.rmtree(where, ignore_errors=True)
        try:
            gt, ref = cut_inputs(point, base_files, where, seed)
            run_at = beagle_runner(gt, ref, base_files.map, where, point, jar_path, progress)
            for level in todo:
                estimate = prior.calibrated_mb(
                    {**point.features(), "chrom_cm": base_files.genetic_length_cm, "overlap_cm": 2.0}, level
                )
                heap = probe_heap_mb(estimate)
                progress(
                    f"[{index}/{len(points)}] {point.design_id} {point.features()} level {level:g}: estimate {estimate:.3f} MB"
                )
                attempts = []
                for _ in range(repeats):
                    attempts.append(run_at(heap, 900.0))
                    if not attempts[-1].result.ok:
                        break
                last = attempts[-1]
                outcome = (
                    "ok"
                    if all(a.result.ok for a in attempts)
                    else "oom"
                    if (last.result.heap_oom or last.timed_out)
                    else "error"
                )
                if outcome == "error":  # not memory: does Beagle fail with a generous heap too?
                    generous = run_at(max(256.0, 4.0 * heap), 900.0)
                    outcome = "invalid" if not (generous.result.ok or generous.result.heap_oom) else "error"
                rows.append(
                    {
                        "design_id": point.design_id,
                        "split": point.split,
                        **{k: table_value(v) for k, v in point.features().items()},
                        "chrom_cm": table_value(length),
                        "level": f"{level:g}",
                        "estimate_mb": table_value(round(estimate, 3)),
                        "xmx": xmx_option(heap),
                        "runs": str(len(attempts)),
                        "outcome": outcome,
                        "wall_s": table_value(round(max(a.result.wall_s for a in attempts), 2)),
                    }
                )
                lines = (
                    comments + ["\t".join(ESTIMATE_COLUMNS)] + ["\t".join(r[c] for c in ESTIMATE_COLUMNS) for r in rows]
                )
                write_text_atomic(out, "\n".join(lines) + "\n")
                progress(f"  -> {point.design_id} at {xmx_option(heap)}: {outcome}")
        finally:
            shutil.rmtree(where, ignore_errors=True)
    return rows


def _heap_text(heap_mb: float) -> str:
    """A heap as the table writes it: whole MB as an integer, a probe's KB-exact heap in full."""
    return str(int(heap_mb)) if float(heap_mb).is_integer() else repr(float(heap_mb))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.imputation.beagle_profile",
        description="Measure Beagle's minimum Java heap over a Sobol design of its eight features.",
    )
    p.add_argument("--out", required=True, type=Path, help="runs TSV (appended to; finished design points are skipped)")
    p.add_argument(
        "--work",
        type=Path,
        default=Path("resources/beagle_profile"),
        help="scratch directory (base simulation, per-run inputs)",
    )
    p.add_argument("--n-fit", type=int, default=192, help="design points for fitting (default 192)")
    p.add_argument("--n-heldout", type=int, default=64, help="held-out design points (default 64)")
    p.add_argument("--seed", type=int, default=11, help="design seed (held-out uses seed + 1)")
    p.add_argument("--limit", type=int, default=None, help="measure at most this many new points, then stop")
    p.add_argument("--max-hours", type=float, default=None, help="stop starting new points after this long")
    p.add_argument("--jar", default=None, help="beagle.jar (default: $BEAGLE_JAR, then dpkg -L beagle)")
    p.add_argument("--tiny", action="store_true", help="a tiny base chromosome and ranges (tests)")
    p.add_argument(
        "--id-prefix",
        default="",
        help="prefix of the design ids (unique ids when tables of several base chromosomes are merged)",
    )
    base = p.add_argument_group("base chromosome (default: the 14.3 cM one of config/priors/beagle_runs.tsv)")
    base.add_argument("--chrom", default=None, help="contig name of the base chromosome")
    base.add_argument("--length-bp", type=int, default=None, help="simulated length in bp (~1.15 cM per Mb)")
    base.add_argument("--n-ref", type=int, default=None, help="reference samples simulated")
    base.add_argument("--n-target", type=int, default=None, help="target samples simulated")
    base.add_argument("--base-seed", type=int, default=None, help="simulation seed")
    space = p.add_argument_group("design ranges (inclusive; default: DesignSpace)")
    for name, kind in (
        ("threads", int),
        ("burnin", int),
        ("iterations", int),
        ("window_cm", float),
        ("array_density", float),
        ("target_samples", int),
        ("ref_variants", int),
        ("ref_samples", int),
    ):
        space.add_argument(
            f"--{name.replace('_', '-')}", dest=f"space_{name}", type=kind, nargs=2, metavar=("LO", "HI"), default=None
        )
    p.add_argument(
        "--refine",
        metavar="SPLIT",
        default=None,
        help="instead of measuring new points, narrow the brackets of this split's rows (fit|heldout)",
    )
    p.add_argument("--refine-rtol", type=float, default=0.02, help="--refine: relative bracket width (default 0.02)")
    p.add_argument("--refine-atol", type=float, default=1.0, help="--refine: absolute bracket width, MB (default 1)")
    p.add_argument(
        "--probe",
        metavar="SPLIT",
        default=None,
        help="instead of measuring new points, run Beagle at the calibrated estimates of --probe-prior "
        "that fall inside this split's brackets, and narrow those brackets",
    )
    p.add_argument(
        "--at-estimate",
        metavar="SPLIT",
        default=None,
        help="instead of measuring minimum heaps, run Beagle at the calibrated estimates of --probe-prior "
        "(levels --probe-levels, --probe-repeats runs) for this split's rows of --design, or for the "
        "16 corners of the design ranges (SPLIT corner); results go to --out",
    )
    p.add_argument("--design", type=Path, default=None, help="--at-estimate: the runs table whose rows to run")
    p.add_argument(
        "--merge",
        metavar="PATH[:PREFIX[:SPLIT]]",
        nargs="+",
        default=None,
        help="instead of measuring, merge these runs tables into --out (ids prefixed, split optionally set)",
    )
    p.add_argument(
        "--probe-prior", type=Path, default=Path("config/priors/beagle.json"), help="--probe: the prior (JSON)"
    )
    p.add_argument(
        "--probe-levels", type=float, nargs="+", default=[0.8, 0.9, 0.95], help="--probe: calibration levels"
    )
    p.add_argument(
        "--probe-repeats", type=int, default=3, help="--probe: runs per estimate; all must succeed (default 3)"
    )
    return p


def base_and_space(args) -> tuple[BaseData, DesignSpace]:
    """The base chromosome and design ranges the command line asks for (defaults, or the tiny ones)."""
    from dataclasses import replace

    base = TINY_BASE if args.tiny else BaseData()
    chosen = {
        k: v
        for k, v in (
            ("chrom", args.chrom),
            ("length_bp", args.length_bp),
            ("n_ref", args.n_ref),
            ("n_target", args.n_target),
            ("seed", args.base_seed),
        )
        if v is not None
    }
    space = TINY_SPACE if args.tiny else DesignSpace()
    ranges = {k[len("space_") :]: tuple(v) for k, v in vars(args).items() if k.startswith("space_") and v is not None}
    for name, (lo, hi) in ranges.items():
        if not 0 < lo <= hi:
            raise ChromoschedError(f"--{name.replace('_', '-')}: need 0 < LO <= HI, got {lo} {hi}")
    return replace(base, **chosen), replace(space, **ranges)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command_line = "python -m chromosched_pipeline.imputation.beagle_profile " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    try:
        base, space = base_and_space(args)
        if args.merge:
            merge(args.out, args.merge, command_line=command_line)
            return 0
        if args.at_estimate:
            if args.at_estimate == "corner":
                files = prepare_base(
                    args.work, base, lambda m: print(f"beagle_profile: {m}", file=sys.stderr, flush=True)
                )
                points = corner_design(space, len(files.common_ids), len(files.panel_ids), args.id_prefix)
            elif args.design is None:
                raise ChromoschedError("--at-estimate SPLIT needs --design RUNS.tsv (or SPLIT corner)")
            else:
                points = table_points(args.design, args.at_estimate)
            at_estimates(
                args.out,
                args.work,
                points,
                args.probe_prior,
                args.probe_levels,
                args.probe_repeats,
                args.seed,
                base=base,
                jar=args.jar,
                command_line=command_line,
            )
            return 0
        if args.probe:
            probe(
                args.out,
                args.work,
                args.probe,
                args.seed,
                args.probe_prior,
                args.probe_levels,
                args.probe_repeats,
                base=base,
                jar=args.jar,
                command_line=command_line,
            )
            return 0
        if args.refine:
            refine(
                args.out,
                args.work,
                args.refine,
                args.seed,
                args.refine_rtol,
                args.refine_atol,
                base=base,
                jar=args.jar,
                command_line=command_line,
            )
            return 0
        profile(
            args.out,
            args.work,
            args.n_fit,
            args.n_heldout,
            args.seed,
            space=space,
            base=base,
            limit=args.limit,
            max_hours=args.max_hours,
            jar=args.jar,
            command_line=command_line,
            id_prefix=args.id_prefix,
        )
    except ChromoschedError as exc:
        print(f"beagle_profile: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
