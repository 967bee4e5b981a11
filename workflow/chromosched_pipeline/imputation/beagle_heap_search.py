"""The minimum Java heap of one design point: bracketed bisection on ``-Xmx``, its first probe (a running
log-linear model or REFERENCE 4's rule) and the GC live-set calibration that predicts the minimum.

The procedure is described in :mod:`chromosched_pipeline.imputation.beagle_profile`; ``run_at`` runs Beagle at a heap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .beagle import BeagleResult
from .beagle_design import DesignPoint


def rule_of_thumb_mb(point: DesignPoint, genetic_length_cm: float) -> float:
    """REFERENCE 4: ~25 MB + 3.6 bytes x reference markers per window x target samples."""
    per_window = point.ref_variants * min(1.0, (point.window_cm + 2.0) / genetic_length_cm)
    return 25.0 + 3.6e-6 * per_window * point.target_samples


class RunningModel:
    """log(min heap) ~ log features, refitted on the finished rows: the first probe's guess."""

    def __init__(self, rows: Sequence[dict], genetic_length_cm: float):
        self.coef = None
        self.length = genetic_length_cm
        ok = [r for r in rows if r.get("status") == "ok"]
        if len(ok) >= 12:
            X = np.array([self._x(r) for r in ok])
            y = np.log([float(r["min_heap_mb"]) for r in ok])
            self.coef, *_ = np.linalg.lstsq(X, y, rcond=None)
            self.resid_sd = float(np.std(y - X @ self.coef))

    def _x(self, r) -> list[float]:
        w = min(1.0, (float(r["window_cm"]) + 2.0) / self.length)
        rw_t = float(r["ref_variants"]) * w * float(r["target_samples"])
        return [
            1.0,
            math.log(rw_t),
            math.log(float(r["ref_variants"])),
            math.log(float(r["target_samples"])),
            math.log(float(r["ref_samples"])),
            math.log(float(r["target_variants"])),
            float(r["threads"]),
        ]

    def guess(self, point: DesignPoint) -> float | None:
        if self.coef is None:
            return None
        return float(math.exp(np.dot(self._x(point.features()), self.coef)))


@dataclass
class Attempt:
    heap_mb: int | float  # whole MB, except a probe's KB-exact heap
    result: BeagleResult
    gc_peak_mb: float | None
    timed_out: bool


@dataclass
class SearchOutcome:
    min_heap_mb: int | None
    max_fail_mb: int | None
    gc_live_mb: float | None
    wall_s: float | None
    wall_at_min_s: float | None
    peak_rss_mb: float | None
    attempts: list[Attempt] = field(default_factory=list)
    status: str = "ok"


def bracket_is_narrow(lo: float, hi: float, rtol: float, atol: float) -> bool:
    """True when a (failing ``lo``, succeeding ``hi``] heap bracket is within ``rtol`` or ``atol`` MB."""
    return hi / lo <= 1 + rtol or hi - lo <= atol


def find_min_heap(
    run_at: Callable[[int, float], Attempt],
    first_probe: float,
    predict_from_gc: Callable[[float], float] | None = None,
    rtol: float = 0.09,
    atol: float = 2.0,
    floor_mb: int = 8,
    ceiling_mb: int = 16000,
    default_timeout_s: float = 900.0,
    max_runs: int = 10,
) -> SearchOutcome:
    """Bracketed bisection for the smallest ``-Xmx`` (MB) at which ``run_at(heap, timeout)`` succeeds.

    1. ``first_probe``, doubled until Beagle succeeds (the first success is the "generous" run).
    2. From that run's GC live-set estimate ``g``, a predicted minimum ``p = predict_from_gc(g)``;
       probes at ``p * (1 + rtol/2)`` and ``p / (1 + rtol/2)`` bracket it in two runs when the
       prediction is good; otherwise galloping down (steps of ``(1 + rtol)^(2^k)``) to a failure.
    3. Geometric bisection until the bracket is within ``rtol`` (relative) or ``atol`` MB.
    """
    attempts: list[Attempt] = []
    lo: int | None = None  # largest failing heap
    hi: int | None = None  # smallest succeeding heap
    best: Attempt | None = None
    generous: Attempt | None = None  # first success: least GC pressure
    predicted: float | None = None
    heap = int(max(floor_mb, math.ceil(first_probe)))
    timeout = default_timeout_s
    status = "ok"
    down_steps = 0
    while True:
        attempt = run_at(heap, timeout)
        attempts.append(attempt)
        result = attempt.result
        if result.ok:
            if hi is None or heap < hi:
                hi, best = heap, attempt
            if generous is None:
                generous = attempt
                timeout = 4.0 * result.wall_s + 60.0
                g = attempt.gc_peak_mb
                if g:
                    predicted = predict_from_gc(g) if predict_from_gc else g + 2.0
        elif result.heap_oom or attempt.timed_out:
            lo = heap if lo is None else max(lo, heap)
        else:
            return SearchOutcome(None, lo, None, None, None, None, attempts, status="error")
        if hi is None:
            if heap >= ceiling_mb:
                return SearchOutcome(None, lo, None, None, None, None, attempts, status="too_big")
            heap = min(ceiling_mb, heap * 2)
            continue
        if lo is not None and bracket_is_narrow(lo, hi, rtol, atol):
            break
        if lo is None and hi <= floor_mb:
            break  # succeeds at the smallest heap we try (censored; max_fail_mb stays empty)
        if len(attempts) >= max_runs:
            status = "imprecise"
            break
        half = (1 + rtol) ** 0.45  # a little inside sqrt: the integer rounding widens the pair
        straddle = []
        if predicted is not None:  # two probes straddling the prediction, the upper one first
            straddle = [
                h
                for h in (int(math.ceil(predicted * half)), int(math.floor(predicted / half)))
                if h < hi and (lo is None or h > lo) and not any(a.heap_mb == h for a in attempts)
            ]
        if straddle:
            heap = straddle[0]
        elif lo is None:  # galloping down: steps of 1.09, 1.19, 1.41, 2, ... until a failure
            down_steps += 1
            heap = int(math.floor(hi / (1 + rtol) ** (2 ** (down_steps - 1))))
        else:
            heap = int(round(math.sqrt(lo * hi)))
        heap = max(floor_mb, heap, (lo or 0) + 1)
        heap = min(heap, hi - 1)
    return SearchOutcome(
        min_heap_mb=hi,
        max_fail_mb=lo,
        gc_live_mb=generous.gc_peak_mb if generous else None,
        wall_s=generous.result.wall_s if generous else None,
        wall_at_min_s=best.result.wall_s if best else None,
        peak_rss_mb=best.result.peak_rss_mb if best else None,
        attempts=attempts,
        status=status,
    )


def refine_bracket(
    run_at: Callable[[float, float], Attempt],
    lo: float,
    hi: float,
    timeout_s: float,
    rtol: float = 0.02,
    atol: float = 1.0,
    max_runs: int = 8,
) -> tuple[float, float | None, Attempt | None, list[Attempt], str]:
    """Tighten a measured bracket (``lo`` failed, ``hi`` succeeded) to ``rtol`` or ``atol`` MB.

    The succeeding end is re-run first, so a bracket that no longer reproduces (a different base
    simulation, a different JVM) is caught instead of silently narrowed: if ``hi`` now fails, the search
    gallops up by ``1 + 4 rtol`` until a success. Then geometric bisection. Returns
    ``(lo, hi, attempt at hi, attempts, status)`` with status ``ok``, ``moved`` (``hi`` failed on the
    re-run) or ``imprecise`` (``max_runs`` spent first).
    """
    attempts: list[Attempt] = []
    status = "ok"
    best: Attempt | None = None
    heap = hi
    hi_now: float | None = None
    while True:
        attempt = run_at(heap, timeout_s)
        attempts.append(attempt)
        if attempt.result.ok:
            if hi_now is None or heap < hi_now:
                hi_now, best = heap, attempt
        elif attempt.result.heap_oom or attempt.timed_out:
            lo = max(lo, heap)
            if hi_now is None:
                status = "moved"
        else:
            return lo, hi_now, best, attempts, "error"
        if hi_now is not None and bracket_is_narrow(lo, hi_now, rtol, atol):
            break
        if len(attempts) >= max_runs:
            status = "imprecise" if status == "ok" else status
            break
        if hi_now is None:
            heap = int(math.ceil(heap * (1 + 4 * rtol))) + 1
        else:
            heap = min(hi_now - 1, max(lo + 1, int(round(math.sqrt(lo * hi_now)))))
    return lo, hi_now, best, attempts, status


def probe_heaps(
    run_at: Callable[[float, float], Attempt],
    lo: float,
    hi: float,
    heaps: Sequence[float],
    timeout_s: float,
    repeats: int = 3,
) -> tuple[float, float, Attempt | None, list[Attempt]]:
    """Run Beagle ``repeats`` times at each heap strictly inside the bracket (``lo`` failed, ``hi``
    succeeded) and narrow it conservatively: a heap counts as succeeding only if every repeat
    succeeded; one heap OOM (or time limit) makes it a failing heap. Returns
    ``(lo, hi, attempt at hi or None if hi is unchanged, attempts)``; a success at or below a failing
    heap (the minimum varies a little between runs) is not used.
    """
    attempts: list[Attempt] = []
    succeeded: dict[float, Attempt] = {}
    failed: list[float] = []
    for heap in sorted(h for h in set(heaps) if lo < h < hi):
        runs = []
        for _ in range(repeats):
            runs.append(run_at(heap, timeout_s))
            if not runs[-1].result.ok:
                break
        attempts += runs
        if all(a.result.ok for a in runs):
            succeeded[heap] = runs[-1]
        elif any(a.result.heap_oom or a.timed_out for a in runs):
            failed.append(heap)
    new_lo = max([lo, *failed])
    usable = [h for h in succeeded if h > new_lo]
    new_hi = min(usable) if usable else hi
    return new_lo, new_hi, succeeded.get(new_hi), attempts


class GcCalibration:
    """Minimum heap from the generous run's GC live-set estimate, learned on finished rows.

    ``log(min_heap) = a + b log(g)`` (least squares) once 8 rows have both; before that ``g + 2``.
    Measured: small heaps need a few MB above the estimate, large ones ~0.8x of it.
    """

    def __init__(self, rows: Sequence[dict]):
        pairs = [
            (float(r["gc_live_mb"]), float(r["min_heap_mb"]))
            for r in rows
            if r.get("status") == "ok"
            and r.get("gc_live_mb") not in (None, "", "NA")
            and r.get("max_fail_mb") not in (None, "", "NA")
        ]
        self.coef = None
        if len(pairs) >= 8:
            g, m = np.log(np.array(pairs)).T
            self.coef = np.polyfit(g, m, 1)

    def __call__(self, g: float) -> float:
        if self.coef is None:
            return g + 2.0
        return float(math.exp(np.polyval(self.coef, math.log(max(g, 1.0)))))
