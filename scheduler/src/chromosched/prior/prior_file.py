"""The prior file: a closed-form formula, its features, calibration maps and provenance, as JSON.

Layout (``format: chromosched-prior/1``)::

    {"format": "chromosched-prior/1", "tool": "beagle",
     "target": {"name": "min_heap_mb", "unit": "MB", "description": ...},
     "features": [{"name", "unit", "description", "log_scale", "integer"}, ...],
     "feature_ranges": {"<name>": [min, max], ...},          # measured range (fit runs)
     "expression": "<formula over the feature names, in MB>",
     "level": 0.9,                                          # default calibration level
     "calibration": {"0.8": {"level", "n_calibration", "knots": [[pred, estimate], ...]}, ...},
     "jvm_overhead_mb": {...},                              # peak RSS above the heap (measured)
     "teacher": {"file", "sha256", "cv_pearson", ...},      # tree-ensemble artefact next to the file
     "quality": {...}, "provenance": {...}}

Loading validates everything and parses the expression with ``SafeExpression`` (no ``eval``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..atomic_files import write_bytes_atomic
from ..errors import ChromoschedError
from .calibration import ConformalCalibrator
from .expression import FUNCTIONS, SafeExpression
from .features import FeatureSpec

FORMAT = "chromosched-prior/1"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def level_key(level: float) -> str:
    return f"{float(level):g}"


@dataclass
class Prior:
    """A loaded, validated prior; ``raw_mb``/``calibrated_mb`` evaluate it on one feature mapping."""

    tool: str
    target: dict
    features: tuple[FeatureSpec, ...]
    expression: SafeExpression
    calibrations: dict[str, ConformalCalibrator]
    level: float
    feature_ranges: dict[str, list[float]] = field(default_factory=dict)
    jvm_overhead_mb: dict = field(default_factory=dict)
    teacher: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    source: str = "prior"

    # -- prediction ----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def _check_features(self, values: Mapping[str, float]) -> dict[str, float]:
        missing = [n for n in self.feature_names if n not in values]
        if missing:
            raise ChromoschedError(f"{self.source}: missing feature(s) {', '.join(missing)} for the {self.tool} prior")
        return {n: float(values[n]) for n in self.feature_names}

    def raw_mb(self, values: Mapping[str, float]) -> float:
        """The formula's point prediction (MB) for one job's features."""
        value = float(self.expression.evaluate(self._check_features(values)))
        if not math.isfinite(value):
            raise ChromoschedError(f"{self.source}: the formula is not finite at {dict(values)}")
        return value

    def calibrated_mb(self, values: Mapping[str, float], level: float | None = None) -> float:
        """Conservative estimate (MB) at ``level`` (default: the prior's level)."""
        return float(self.calibrator(level).apply(self.raw_mb(values)))

    def calibrator(self, level: float | None = None) -> ConformalCalibrator:
        key = level_key(self.level if level is None else level)
        if key not in self.calibrations:
            raise ChromoschedError(f"{self.source}: no calibration map for level {key} (have {', '.join(sorted(self.calibrations))})")
        return self.calibrations[key]

    def predict(self, values: Mapping[str, float], level: float | None = None) -> dict:
        level = self.level if level is None else float(level)
        raw = self.raw_mb(values)
        return {"raw_mb": raw, "calibrated_mb": float(self.calibrator(level).apply(raw)), "level": level}

    def raw_many(self, X: np.ndarray) -> np.ndarray:
        """Formula on a matrix whose columns are ``feature_names``."""
        return self.expression.evaluate_matrix(X)

    def in_range(self, values: Mapping[str, float]) -> list[str]:
        """Names of features outside the measured range (extrapolation warning for callers)."""
        out = []
        for name, (lo, hi) in self.feature_ranges.items():
            if name in values and not lo <= float(values[name]) <= hi:
                out.append(name)
        return out

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "tool": self.tool,
            "target": self.target,
            "features": [f.to_dict() for f in self.features],
            "feature_ranges": self.feature_ranges,
            "expression": self.expression.text,
            "level": self.level,
            "calibration": {k: c.to_dict() for k, c in sorted(self.calibrations.items())},
            "jvm_overhead_mb": self.jvm_overhead_mb,
            "teacher": self.teacher,
            "quality": self.quality,
            "provenance": self.provenance,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def save(self, path: str | Path) -> None:
        write_bytes_atomic(path, self.dumps().encode())

    @classmethod
    def from_dict(cls, data, source: str = "prior") -> "Prior":
        if not isinstance(data, dict):
            raise ChromoschedError(f"{source}: a prior file must hold a JSON object")
        if data.get("format") != FORMAT:
            raise ChromoschedError(f"{source}: unknown prior format {data.get('format')!r} (expected {FORMAT!r})")
        for key in ("tool", "target", "features", "expression", "level", "calibration"):
            if key not in data:
                raise ChromoschedError(f"{source}: missing key {key!r}")
        if not isinstance(data["features"], list) or not data["features"]:
            raise ChromoschedError(f"{source}: 'features' must be a non-empty list")
        features = tuple(FeatureSpec.from_dict(f, source) if isinstance(f, dict) else _bad_feature(f, source)
                         for f in data["features"])
        names = [f.name for f in features]
        for name in names:
            if not _NAME.match(name) or name in FUNCTIONS:
                raise ChromoschedError(f"{source}: feature name {name!r} is not allowed (lower-case identifier, not a function name)")
        if len(set(names)) != len(names):
            raise ChromoschedError(f"{source}: feature names repeat")
        expression = SafeExpression(data["expression"], names, source=f"{source}: expression")
        try:
            level = float(data["level"])
        except (TypeError, ValueError):
            raise ChromoschedError(f"{source}: level must be a number, got {data['level']!r}") from None
        if not isinstance(data["calibration"], dict) or not data["calibration"]:
            raise ChromoschedError(f"{source}: 'calibration' must map levels to calibration maps")
        calibrations = {}
        for key, value in data["calibration"].items():
            cal = ConformalCalibrator.from_dict(value, f"{source}: calibration {key}")
            calibrations[level_key(cal.level)] = cal
        if level_key(level) not in calibrations:
            raise ChromoschedError(f"{source}: level {level} has no calibration map")
        ranges = data.get("feature_ranges", {}) or {}
        if not isinstance(ranges, dict) or any(k not in names for k in ranges):
            raise ChromoschedError(f"{source}: 'feature_ranges' must map feature names to [min, max]")
        try:
            ranges = {k: [float(v[0]), float(v[1])] for k, v in ranges.items()}
        except (TypeError, ValueError, IndexError):
            raise ChromoschedError(f"{source}: 'feature_ranges' must map feature names to [min, max]") from None
        target = data["target"] if isinstance(data["target"], dict) else {"name": str(data["target"])}
        return cls(tool=str(data["tool"]), target=target, features=features, expression=expression,
                   calibrations=calibrations, level=level, feature_ranges=ranges,
                   jvm_overhead_mb=dict(data.get("jvm_overhead_mb") or {}), teacher=dict(data.get("teacher") or {}),
                   quality=dict(data.get("quality") or {}), provenance=dict(data.get("provenance") or {}),
                   source=source)


def _bad_feature(value, source: str):
    raise ChromoschedError(f"{source}: feature entry {value!r} must be an object with name and unit")


def load_prior(path: str | Path) -> Prior:
    """Read and validate a prior file (one-line ``ChromoschedError`` naming the file otherwise)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChromoschedError(f"{path}: prior file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ChromoschedError(f"{path}: cannot read the prior file ({err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ChromoschedError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    return Prior.from_dict(data, source=str(path))


#: Priors shipped inside the package (``chromosched/data/priors/<name>.json``).
BUILTIN_PRIORS = ("beagle",)


def builtin_prior_path(name: str):
    """The packaged prior file ``name`` (an ``importlib.resources`` Traversable)."""
    from importlib.resources import files

    if name not in BUILTIN_PRIORS:
        raise ChromoschedError(f"unknown built-in prior {name!r} (available: {', '.join(BUILTIN_PRIORS)})")
    return files("chromosched") / "data" / "priors" / f"{name}.json"


def load_builtin_prior(name: str = "beagle") -> Prior:
    """Load a prior shipped with the package, e.g. ``load_builtin_prior("beagle")``."""
    resource = builtin_prior_path(name)
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChromoschedError(f"built-in prior {name!r} is missing from the installed package ({resource})") from None
    return Prior.from_dict(data, source=f"built-in prior {name}")
