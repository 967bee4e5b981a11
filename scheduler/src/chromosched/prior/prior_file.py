"""The prior file: a closed-form formula, its features, calibration maps and provenance, as JSON.

Layout (``format: chromosched-prior/2``)::

    {"format": "chromosched-prior/2", "tool": "beagle",
     "target": {"name": "min_heap_mb", "unit": "MB", "description": ...},
     "derivation": {"name": "beagle-per-window/1", "inputs": [...], "context": [...],
                    "defaults": {...}, "features": {...}, "note": ...},  # inputs -> model features
     "features": [{"name", "unit", "description", "log_scale", "integer"}, ...],  # the model's
     "feature_ranges": {"<input>": [min, max], ...},        # stated range of the inputs (fit runs)
     "model_feature_ranges": {"<feature>": [min, max], ...},
     "expression": "<formula over the model features, in MB>",
     "floor_mb": {"mb", "smallest_success_mb", "heap_step_mb"},  # no estimate below it
     "monotone": {"features": [...], "checked_on_grid": n},      # never decreasing in these
     "level": 0.9,                                          # default calibration level
     "calibration": {"0.8": {"level", "n_calibration", "knots": [[pred, estimate], ...]}, ...},
     "jvm_overhead_mb": {...},                              # peak RSS above the heap (measured)
     "teacher": {"file", "sha256", "cv_pearson", ...},      # tree-ensemble artefact next to the file
     "quality": {...}, "provenance": {...}}

A caller supplies the job's *inputs* (``feature_names``: for Beagle the paper's eight, plus
``overlap_cm`` and the chromosome's ``chrom_cm``); the derivation turns them into the model features
the formula is written in. A format-1 Beagle prior (the formula directly on the eight inputs,
measured on one chromosome length) is refused with a message saying how to refit; a format-1 prior of
another tool is read as format 2 with the identity derivation (its features are its inputs). Loading validates everything and
parses the expression with ``SafeExpression`` (no ``eval``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic_files import write_bytes_atomic
from ..errors import ChromoschedError
from .calibration import ConformalCalibrator
from .derivation import Derivation, identity_derivation
from .expression import FUNCTIONS, SafeExpression
from .features import FeatureSpec

FORMAT = "chromosched-prior/2"
LEGACY_FORMATS = ("chromosched-prior/1",)
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
    derivation: Derivation | None = None
    model_feature_ranges: dict[str, list[float]] = field(default_factory=dict)
    floor: dict = field(default_factory=dict)
    monotone: dict = field(default_factory=dict)
    jvm_overhead_mb: dict = field(default_factory=dict)
    teacher: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    source: str = "prior"

    def __post_init__(self):
        if self.derivation is None:
            self.derivation = identity_derivation(tuple(self.features))

    # -- prediction ----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """The inputs a caller supplies for one job (for Beagle the paper's eight)."""
        return self.derivation.input_names

    @property
    def optional_inputs(self) -> list[str]:
        """Inputs with a default or that may be left out (Beagle: settings, ``overlap_cm``, ``chrom_cm``)."""
        return self.derivation.optional_names

    @property
    def model_feature_names(self) -> list[str]:
        """The features the formula is written in (derived from the inputs)."""
        return [f.name for f in self.features]

    @property
    def floor_mb(self) -> float:
        return float(self.floor.get("mb", 0.0))

    def model_features(self, values: Mapping[str, float]) -> dict[str, float]:
        """One job's inputs, checked, turned into the model features (one-line error naming a bad input)."""
        return self.derivation.derive(values, f"{self.source} ({self.tool} prior)")

    def raw_mb(self, values: Mapping[str, float]) -> float:
        """The formula's point prediction (MB) for one job's inputs."""
        features = self.model_features(values)
        value = float(self.expression.evaluate(features))
        if not math.isfinite(value):
            raise ChromoschedError(f"{self.source}: the formula is not finite at {features}")
        return value

    def calibrated_mb(self, values: Mapping[str, float], level: float | None = None) -> float:
        """Conservative estimate (MB) at ``level`` (default: the prior's level), never below the floor."""
        return float(self.calibrated_many(np.array([self.raw_mb(values)]), level)[0])

    def calibrated_many(self, raw: np.ndarray, level: float | None = None) -> np.ndarray:
        """Calibrated estimates for formula values ``raw``: never below the floor, nor below the
        estimate of a lower level (each level's map comes from its own bins, so on its own a higher
        level could dip under a lower one)."""
        chosen = self.calibrator(level).level
        maps = [c for c in self.calibrations.values() if c.level <= chosen]
        return np.maximum(np.max([c.apply(raw) for c in maps], axis=0), self.floor_mb)

    def model_matrix(self, rows) -> np.ndarray:
        """Model-feature matrix (columns ``model_feature_names``) of many jobs' inputs, e.g. a runs
        table's rows (a DataFrame, or an iterable of mappings)."""
        records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
        names = self.model_feature_names
        return np.array([[f[n] for n in names] for f in map(self.model_features, records)], dtype=float).reshape(
            -1, len(names)
        )

    def calibrator(self, level: float | None = None) -> ConformalCalibrator:
        key = level_key(self.level if level is None else level)
        if key not in self.calibrations:
            raise ChromoschedError(
                f"{self.source}: no calibration map for level {key} (have {', '.join(sorted(self.calibrations))})"
            )
        return self.calibrations[key]

    def predict(self, values: Mapping[str, float], level: float | None = None) -> dict:
        level = self.level if level is None else float(level)
        raw = self.raw_mb(values)
        return {"raw_mb": raw, "calibrated_mb": float(self.calibrated_many(np.array([raw]), level)[0]), "level": level}

    def raw_many(self, X: np.ndarray) -> np.ndarray:
        """Formula on a matrix whose columns are ``model_feature_names`` (see ``model_matrix``)."""
        return self.expression.evaluate_matrix(X)

    def in_range(self, values: Mapping[str, float]) -> list[str]:
        """Names of inputs and model features outside the measured range (extrapolation warning)."""
        out = []
        for name, (lo, hi) in self.feature_ranges.items():
            if values.get(name) is not None and not lo <= float(values[name]) <= hi:
                out.append(name)
        features = self.model_features(values)
        for name, (lo, hi) in self.model_feature_ranges.items():
            if name in features and not lo <= features[name] <= hi and name not in out:
                out.append(name)
        return out

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "tool": self.tool,
            "target": self.target,
            "features": [f.to_dict() for f in self.features],
            "derivation": self.derivation.to_dict(),
            "feature_ranges": self.feature_ranges,
            "model_feature_ranges": self.model_feature_ranges,
            "expression": self.expression.text,
            "floor_mb": self.floor,
            "monotone": self.monotone,
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
    def from_dict(cls, data, source: str = "prior") -> Prior:
        if not isinstance(data, dict):
            raise ChromoschedError(f"{source}: a prior file must hold a JSON object")
        migrated = False
        if data.get("format") in LEGACY_FORMATS and data.get("tool") != "beagle":
            # Format 1 of any other tool: its features were the inputs all along (identity derivation)
            data = {**data, "format": FORMAT, "derivation": None}
            migrated = True
        if data.get("format") in LEGACY_FORMATS:
            raise ChromoschedError(
                f"{source}: prior format {data['format']!r} is no longer supported: its formula takes "
                "window_cm and marker counts as measured on one chromosome length, so it does not transfer; "
                "refit it from its runs table with `chromosched prior fit --runs RUNS.tsv --out PRIOR.json` "
                "(the table needs a chrom_cm column or a '# ... genetic length X cM' comment; see docs/prior.md)"
            )
        if data.get("format") != FORMAT:
            raise ChromoschedError(f"{source}: unknown prior format {data.get('format')!r} (expected {FORMAT!r})")
        for key in ("tool", "target", "features", "derivation", "expression", "level", "calibration"):
            if key not in data:
                raise ChromoschedError(f"{source}: missing key {key!r}")
        if not isinstance(data["features"], list) or not data["features"]:
            raise ChromoschedError(f"{source}: 'features' must be a non-empty list")
        features = tuple(
            FeatureSpec.from_dict(f, source) if isinstance(f, dict) else _bad_feature(f, source)
            for f in data["features"]
        )
        names = [f.name for f in features]
        for name in names:
            if not _NAME.match(name) or name in FUNCTIONS:
                raise ChromoschedError(
                    f"{source}: feature name {name!r} is not allowed (lower-case identifier, not a function name)"
                )
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
        derivation = (
            identity_derivation(features) if migrated else Derivation.from_dict(data["derivation"], features, source)
        )
        inputs = [*derivation.input_names, *(f.name for f in derivation.context)]
        ranges = _ranges(data.get("feature_ranges"), inputs, "feature_ranges", source)
        model_ranges = _ranges(data.get("model_feature_ranges"), names, "model_feature_ranges", source)
        floor = dict(data.get("floor_mb") or {})
        try:
            floor_value = float(floor.get("mb", 0.0))
        except (TypeError, ValueError):
            floor_value = -1.0
        if not (math.isfinite(floor_value) and floor_value >= 0):
            raise ChromoschedError(f"{source}: floor_mb.mb must be a non-negative number, got {floor.get('mb')!r}")
        target = data["target"] if isinstance(data["target"], dict) else {"name": str(data["target"])}
        return cls(
            tool=str(data["tool"]),
            target=target,
            features=features,
            expression=expression,
            calibrations=calibrations,
            level=level,
            feature_ranges=ranges,
            derivation=derivation,
            model_feature_ranges=model_ranges,
            floor=floor,
            monotone=dict(data.get("monotone") or {}),
            jvm_overhead_mb=dict(data.get("jvm_overhead_mb") or {}),
            teacher=dict(data.get("teacher") or {}),
            quality=dict(data.get("quality") or {}),
            provenance=dict(data.get("provenance") or {}),
            source=source,
        )


def _ranges(value, names, key: str, source: str) -> dict[str, list[float]]:
    value = value or {}
    if not isinstance(value, dict) or any(k not in names for k in value):
        raise ChromoschedError(
            f"{source}: '{key}' must map {'inputs' if key == 'feature_ranges' else 'features'} to [min, max]"
        )
    try:
        return {k: [float(v[0]), float(v[1])] for k, v in value.items()}
    except (TypeError, ValueError, IndexError, KeyError):
        raise ChromoschedError(f"{source}: '{key}' must map names to [min, max]") from None


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
