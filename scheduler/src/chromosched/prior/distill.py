"""Distillation: label many synthetic feature vectors with the teacher, fit one closed-form formula.

Synthetic vectors are drawn uniformly over the measured range of each feature (log-uniformly for
size features, rounded for integer ones) so the formula is fitted on a dense, noise-free version of
the teacher's surface rather than on the few hundred noisy measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


def sample_synthetic(specs: Sequence[FeatureSpec], ranges: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` feature vectors drawn over ``ranges`` (a scrambled Sobol sample: even coverage)."""
    import warnings

    from scipy.stats import qmc

    with warnings.catch_warnings():  # Sobol prefers powers of two; any n is fine for our use
        warnings.simplefilter("ignore")
        u = qmc.Sobol(d=len(specs), scramble=True, seed=seed).random(n)
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


def distill(teacher: RamTeacher, ranges: np.ndarray, engine: SymbolicEngine, budget: SearchBudget,
            n_synthetic: int = 4096, seed: int = 0) -> Distillation:
    """Fit the engine to teacher labels on synthetic vectors; return the (checked, simplified) formula."""
    specs = teacher.features
    names = [s.name for s in specs]
    X = sample_synthetic(specs, ranges, n_synthetic, seed)
    y = teacher.predict(X)
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
        raise ChromoschedError(f"engine {engine.name} returned a formula that is not finite over the measured range: {expression.text}")
    return Distillation(expression=expression, engine_text=text, synthetic_pearson=_pearson(pred, y),
                        n_synthetic=n_synthetic)
