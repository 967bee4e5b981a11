"""One-sided split conformal calibration of a point prediction into a conservative estimate.

Scores are ratios ``true / predicted`` on a calibration set the formula never saw. Memory errors are
multiplicative and grow with the prediction (heteroscedastic), so the ratios are grouped into bins of
the prediction (Mondrian conformal: bins depend only on the prediction, so the guarantee holds within
each bin) and each bin gets its finite-sample conformal quantile: the ``ceil((n_b + 1) * level)``-th
smallest ratio. The map is piecewise linear in the prediction with knots at the bin edges; a knot takes
the larger of its two neighbouring bins' ratios (so inside a bin the map is never below that bin's
ratio times the prediction), then a running maximum makes it monotone (it only ever raises values).
Beyond the outer knots the map continues with the end knots' ratio (a line through the origin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ChromoschedError

LEVELS = (0.8, 0.9, 0.95)


def conformal_rank(n: int, level: float) -> int:
    """1-based rank of the finite-sample one-sided conformal quantile among ``n`` scores."""
    return math.ceil((n + 1) * level - 1e-12)


def min_bin_size(level: float) -> int:
    """Smallest bin whose conformal quantile is finite (rank <= n), with a floor for stability."""
    n = 1
    while conformal_rank(n, level) > n:
        n += 1
    return max(n, 12)


@dataclass
class ConformalCalibrator:
    """Monotone piecewise-linear map prediction -> conservative estimate at ``level``."""

    level: float = 0.9
    max_bins: int = 6
    knots_x: list[float] = field(default_factory=list)
    knots_y: list[float] = field(default_factory=list)
    n_calibration: int = 0

    def __post_init__(self):
        if not 0.5 <= float(self.level) < 1.0:
            raise ChromoschedError(f"calibration level must be in [0.5, 1), got {self.level}")
        self.level = float(self.level)

    def fit(self, predicted: Sequence[float], true: Sequence[float]) -> ConformalCalibrator:
        predicted = np.asarray(predicted, float)
        true = np.asarray(true, float)
        if predicted.shape != true.shape or predicted.ndim != 1:
            raise ChromoschedError("calibration: predictions and true values must be equally long 1-D arrays")
        ok = np.isfinite(predicted) & np.isfinite(true) & (predicted > 0) & (true > 0)
        if not ok.all():
            raise ChromoschedError(
                f"calibration: {int((~ok).sum())} prediction(s) are not positive finite numbers; the formula is unusable on the calibration runs"
            )
        n = len(predicted)
        need = min_bin_size(self.level)
        if n < need:
            raise ChromoschedError(f"calibration at level {self.level} needs at least {need} calibration runs, got {n}")
        n_bins = max(1, min(self.max_bins, n // need))
        order = np.argsort(predicted, kind="stable")
        groups = np.array_split(order, n_bins)  # equal-count bins along the prediction
        ratios = []
        edges = [float(predicted[groups[0]].min())]
        for g in groups:
            scores = np.sort(true[g] / predicted[g])
            ratios.append(float(scores[conformal_rank(len(g), self.level) - 1]))
            edges.append(float(predicted[g].max()))
        # inner edge between bins: midpoint of the neighbouring predictions
        for i in range(1, n_bins):
            edges[i] = 0.5 * (float(predicted[groups[i - 1]].max()) + float(predicted[groups[i]].min()))
        knot_ratio = [ratios[0]] + [max(ratios[i - 1], ratios[i]) for i in range(1, n_bins)] + [ratios[-1]]
        xs, ys = [], []
        for x, r in zip(edges, knot_ratio):
            if xs and x <= xs[-1]:  # ties in predictions: keep the more conservative knot
                ys[-1] = max(ys[-1], x * r)
                continue
            xs.append(x)
            ys.append(x * r)
        self.knots_x = xs
        self.knots_y = list(np.maximum.accumulate(ys))
        self.n_calibration = n
        return self

    def apply(self, predicted) -> np.ndarray:
        """Conservative estimate for each prediction (same shape)."""
        if not self.knots_x:
            raise ChromoschedError("calibration map is empty (not fitted)")
        p = np.asarray(predicted, float)
        xs = np.asarray(self.knots_x)
        ys = np.asarray(self.knots_y)
        p_pos = np.maximum(p, 1e-9)  # a non-positive prediction maps to the smallest estimate
        inside = np.interp(p_pos, xs, ys)
        below = p_pos * (ys[0] / xs[0])
        above = p_pos * (ys[-1] / xs[-1])
        out = np.where(p_pos < xs[0], below, np.where(p_pos > xs[-1], above, inside))
        out = np.where(np.isfinite(p), out, np.nan)
        return out

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "n_calibration": self.n_calibration,
            "knots": [[round(x, 6), round(y, 6)] for x, y in zip(self.knots_x, self.knots_y)],
        }

    @classmethod
    def from_dict(cls, data, source: str) -> ConformalCalibrator:
        try:
            level = float(data["level"])
            knots = data["knots"]
            xs = [float(k[0]) for k in knots]
            ys = [float(k[1]) for k in knots]
        except (KeyError, TypeError, ValueError, IndexError):
            raise ChromoschedError(
                f"{source}: calibration map must have a numeric level and knots [[x, y], ...]"
            ) from None
        if not xs:
            raise ChromoschedError(f"{source}: calibration map has no knots")
        if not all(math.isfinite(v) and v > 0 for v in xs + ys):
            raise ChromoschedError(f"{source}: calibration knots must be positive finite numbers")
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise ChromoschedError(f"{source}: calibration knots must have strictly increasing predictions")
        if any(b < a for a, b in zip(ys, ys[1:])):
            raise ChromoschedError(f"{source}: calibration map is not monotone (knot values decrease)")
        cal = cls(level=level, knots_x=xs, knots_y=ys, n_calibration=int(data.get("n_calibration", 0)))
        return cal
