"""Distillation: label many synthetic feature vectors with the teacher, fit one closed-form formula.

Synthetic vectors are either drawn uniformly over the measured range of each feature (``box``:
log-uniformly for size features, rounded for integer ones) or around the measured runs (``near-runs``:
each a measured vector with its size features moved by a random factor, ``exp(N(0, 0.15))``), so the
formula is fitted on a dense, noise-free version of the teacher's surface rather than on the few
hundred noisy measurements. Per-window features are strongly correlated (a long window holds many
markers), so most of the box is combinations no job has; fitted there, a formula that must stay
monotone spends its terms on them (measured: formula r on the fit runs 0.87 from the box, 0.94 near
the runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ChromoschedError
from .engines import SearchBudget, SymbolicEngine
from .expression import SafeExpression, simplified
from .features import FeatureSpec
from .teacher import RamTeacher, _pearson


def feature_ranges(X: np.ndarray) -> np.ndarray:
    """Per-feature [min, max] of the measured runs, shape (n_features, 2)."""
    X = np.asarray(X, float)
    return np.column_stack([X.min(axis=0), X.max(axis=0)])


def sample_synthetic(
    specs: Sequence[FeatureSpec],
    ranges: np.ndarray,
    n: int,
    seed: int,
    ratio_limits: Mapping[tuple[str, str], tuple[float, float]] | None = None,
) -> np.ndarray:
    """``n`` feature vectors drawn over ``ranges`` (scrambled Sobol points: even coverage).

    ``ratio_limits`` keeps only vectors whose ratio of two features lies in the measured range (e.g.
    array density ``target_variants / ref_variants``: a target can never have more markers than the
    reference), so the teacher is not asked about combinations it never saw.
    """
    import warnings

    from scipy.stats import qmc

    names = [s.name for s in specs]
    sampler = qmc.Sobol(d=len(specs), scramble=True, seed=seed)
    kept: list[np.ndarray] = []
    total = 0
    for _ in range(50):
        with warnings.catch_warnings():  # Sobol prefers powers of two; any n is fine for our use
            warnings.simplefilter("ignore")
            u = sampler.random(max(n, 256))
        block = _map_unit(specs, ranges, u)
        for (num, den), (lo, hi) in (ratio_limits or {}).items():
            r = block[:, names.index(num)] / np.maximum(block[:, names.index(den)], 1e-12)
            block = block[(r >= lo) & (r <= hi)]
        kept.append(block)
        total += len(block)
        if total >= n:
            break
    out = np.concatenate(kept)[:n]
    if len(out) < n:
        raise ChromoschedError(f"could not draw {n} synthetic vectors within the measured ratios {ratio_limits}")
    return out


def sample_near_runs(
    specs: Sequence[FeatureSpec], runs: np.ndarray, n: int, seed: int, jitter: float = 0.15
) -> np.ndarray:
    """``n`` vectors around measured ones: a random run each, its log-scale features multiplied by
    ``exp(N(0, jitter))`` (integers rounded, at least 1)."""
    rng = np.random.default_rng(seed)
    runs = np.asarray(runs, float)
    out = runs[rng.integers(0, len(runs), n)].copy()
    for i, spec in enumerate(specs):
        if spec.log_scale:
            out[:, i] *= np.exp(rng.normal(0.0, jitter, n))
        if spec.integer:
            out[:, i] = np.maximum(1.0, np.round(out[:, i]))
    return out


def _map_unit(specs: Sequence[FeatureSpec], ranges: np.ndarray, u: np.ndarray) -> np.ndarray:
    out = np.empty_like(u)
    for i, spec in enumerate(specs):
        lo, hi = float(ranges[i, 0]), float(ranges[i, 1])
        if spec.log_scale and lo > 0:
            v = np.exp(np.log(lo) + u[:, i] * (np.log(hi) - np.log(lo)))
        else:
            v = lo + u[:, i] * (hi - lo)
        if spec.integer:
            v = np.clip(np.round(v), np.ceil(lo), np.floor(hi))
        out[:, i] = v
    return out


@dataclass
class Distillation:
    expression: SafeExpression
    engine_text: str  # the engine's raw output, before simplification
    synthetic_pearson: float  # formula vs teacher on the synthetic set
    n_synthetic: int


def distill(
    teacher: RamTeacher,
    ranges: np.ndarray,
    engine: SymbolicEngine,
    budget: SearchBudget,
    n_synthetic: int = 4096,
    seed: int = 0,
    ratio_limits: Mapping[tuple[str, str], tuple[float, float]] | None = None,
    target_scale: str = "linear",
    near_runs: np.ndarray | None = None,
) -> Distillation:
    """Fit the engine to teacher labels on synthetic vectors; return the (checked, simplified) formula.

    ``target_scale="log"`` fits ``log(MB)`` (relative errors, always-positive ``exp(...)`` formula);
    ``"linear"`` fits MB directly (absolute errors: the large jobs, which matter most, dominate).
    """
    if target_scale not in ("linear", "log"):
        raise ChromoschedError(f"--sr-target must be linear or log, not {target_scale!r}")
    specs = teacher.features
    names = [s.name for s in specs]
    if near_runs is not None:
        X = sample_near_runs(specs, near_runs, n_synthetic, seed)
    else:
        X = sample_synthetic(specs, ranges, n_synthetic, seed, ratio_limits)
    y = teacher.predict(X)
    if target_scale == "log":
        text = engine.fit(X, np.log(y), names, budget, seed)
        text = f"exp({SafeExpression(text, names, source=f'{engine.name} output').text})"
    else:
        text = engine.fit(X, y, names, budget, seed)
    expression = SafeExpression(text, names, source=f"{engine.name} output")
    expression = simplified(expression, check=X)
    pred = expression.evaluate_matrix(X)
    # A memory estimate must stay positive (calibration works on ratios); where a formula dips
    # below half the smallest teacher label, bound it there: still one closed form.
    floor = 0.5 * float(np.min(y))
    if np.any(~(pred > floor)):
        expression = SafeExpression(f"max({expression.text}, {floor:.6g})", names, source=expression.source)
        pred = expression.evaluate_matrix(X)
    if not np.all(np.isfinite(pred)):
        raise ChromoschedError(
            f"engine {engine.name} returned a formula that is not finite over the measured range: {expression.text}"
        )
    return Distillation(
        expression=expression, engine_text=text, synthetic_pearson=_pearson(pred, y), n_synthetic=n_synthetic
    )
