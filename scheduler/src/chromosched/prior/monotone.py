"""Checking that a prior's estimates never decrease where physics says memory cannot.

Beagle's memory does not fall when a window holds more markers, when there are more samples or more
threads. A formula fitted to noisy runs can still dip somewhere between them; this check walks a
grid over the prior's whole stated model range (log-spaced for size features) and, along each axis
with every other feature held at each grid value, requires the raw formula, the calibrated estimate
at every level and the floored estimate to be non-decreasing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np

#: Model features along which a Beagle prior must never decrease.
MONOTONE_FEATURES = {
    "beagle": (
        "threads",
        "effective_window_cm",
        "ref_markers_per_window",
        "target_markers_per_window",
        "target_samples",
        "ref_samples",
    )
}


@dataclass
class MonotoneCheck:
    axes: list[str]
    grid_points: int
    violations: list[str] = field(default_factory=list)


def axis_values(lo: float, hi: float, n: int, log_scale: bool, integer: bool) -> np.ndarray:
    if hi <= lo:
        return np.array([float(lo)])
    values = np.geomspace(lo, hi, n) if log_scale and lo > 0 else np.linspace(lo, hi, n)
    if integer:
        values = np.unique(np.clip(np.round(values), np.ceil(lo), np.floor(hi)))
    return values


def check_monotone(prior, points_per_axis: int = 7, tolerance_mb: float = 1e-9) -> MonotoneCheck:
    """Non-decreasing estimates along each monotone feature, on a full grid over the stated range."""
    names = prior.model_feature_names
    axes = [n for n in MONOTONE_FEATURES.get(prior.tool, names) if n in names]
    specs = {f.name: f for f in prior.features}
    grids = []
    for name in names:
        lo, hi = prior.model_feature_ranges.get(name, [1.0, 1.0])
        grids.append(axis_values(lo, hi, points_per_axis, specs[name].log_scale, specs[name].integer))
    shape = [len(g) for g in grids]
    X = np.array(list(product(*grids)), dtype=float)
    raw = prior.raw_many(X)
    surfaces = {"raw": raw}
    for key in prior.calibrations:
        surfaces[f"calibrated {key}"] = prior.calibrated_many(raw, float(key))
    check = MonotoneCheck(axes=axes, grid_points=len(X))
    for name in axes:
        axis = names.index(name)
        for label, values in surfaces.items():
            cube = values.reshape(shape)
            steps = np.diff(cube, axis=axis)
            if np.any(~np.isfinite(steps)) or np.any(steps < -tolerance_mb):
                where = np.unravel_index(int(np.nanargmin(np.where(np.isfinite(steps), steps, -np.inf))), steps.shape)
                at = {n: float(grids[i][where[i]]) for i, n in enumerate(names)}
                check.violations.append(f"{name} ({label} estimate falls after {at})")
    return check
