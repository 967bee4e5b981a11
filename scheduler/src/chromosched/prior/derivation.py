"""From what a job's user supplies to what its memory depends on: a prior's feature derivation.

A user (or a rule) supplies Beagle's eight inputs (REFERENCE 1.3) for one chromosome, plus that
chromosome's genetic length. Beagle holds one window of markers at a time, so its memory follows the
markers *per window*, not the markers of the chromosome: the same eight numbers describe a small job
on a 290 cM chromosome and a large one on a 14 cM chromosome. The derivation ``beagle-per-window/1``
turns the inputs into quantities with the same meaning on any chromosome:

    effective_window_cm  w = min(window_cm + overlap_cm, chrom_cm)        (cM; a window longer than
                                                                           the chromosome takes it whole)
    share                s = w / chrom_cm                                 (0 < s <= 1)
    ref_markers_per_window    = ceil(ref_variants x s)                     (>= 1 when the chromosome has one)
    target_markers_per_window = ceil(target_variants x s)
    target_samples, ref_samples, threads: as given

Markers are taken as spread evenly over the genetic map (the expected count per window). The
effective window itself is a feature too: at equal markers per window, a window spanning more cM
holds more distinct haplotypes (more recombination), and measured heaps grow with it (on the
14.3 cM profile, adding it raised the cross-validated r of a tree model from 0.87 to 0.97). Without a
genetic length (no map) the share is 1 and the effective window ``window_cm + overlap_cm``: the whole
chromosome in one window, an upper bound for a prior that never decreases in either. ``burnin`` and ``iterations`` are validated but not
used: they change Beagle's CPU time, not its memory (REFERENCE 4).

Every input is checked first: counts (markers, samples, threads) must be whole numbers >= 1 and
burn-in/iterations whole numbers >= 0; lengths must be finite and positive (overlap >= 0). A bad
value is a one-line ``ChromoschedError`` naming the input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ChromoschedError
from .features import BEAGLE_FEATURES, FeatureSpec

#: What the user or rule supplies for one Beagle job: the paper's eight inputs ...
BEAGLE_INPUTS: tuple[FeatureSpec, ...] = BEAGLE_FEATURES
#: ... and the facts about the chromosome and Beagle's settings that place the window on it.
BEAGLE_CONTEXT: tuple[FeatureSpec, ...] = (
    FeatureSpec("overlap_cm", "cM", "Beagle overlap= (cM shared by neighbouring windows)", integer=False),
    FeatureSpec("chrom_cm", "cM", "genetic length of the chromosome (last minus first cM of its map)", integer=False),
)
#: Beagle's own defaults for settings a job leaves unset. ``chrom_cm`` has none: without it the
#: window is taken to hold the whole chromosome.
BEAGLE_DEFAULTS = {"burnin": 3, "iterations": 12, "window_cm": 40.0, "overlap_cm": 2.0}

#: The model's features: what the formula is a function of.
BEAGLE_MODEL_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("threads", "threads", "Beagle nthreads="),
    FeatureSpec(
        "effective_window_cm",
        "cM",
        "min(window_cm + overlap_cm, chrom_cm): the cM one window spans",
        log_scale=True,
        integer=False,
    ),
    FeatureSpec(
        "ref_markers_per_window",
        "markers",
        "ceil(ref_variants x share of the chromosome in one window)",
        log_scale=True,
    ),
    FeatureSpec(
        "target_markers_per_window",
        "markers",
        "ceil(target_variants x share of the chromosome in one window)",
        log_scale=True,
    ),
    FeatureSpec("target_samples", "samples", "samples in the target (gt=) VCF", log_scale=True),
    FeatureSpec("ref_samples", "samples", "samples in the reference panel (ref=) VCF", log_scale=True),
)

#: Counts that must be whole numbers >= 1; whole numbers >= 0; lengths > 0; lengths >= 0.
_POSITIVE_COUNTS = (
    "threads",
    "target_variants",
    "target_samples",
    "ref_variants",
    "ref_samples",
    "ref_markers_per_window",
    "target_markers_per_window",
)
_COUNTS = ("burnin", "iterations")
_POSITIVE_LENGTHS = ("window_cm", "chrom_cm")
_LENGTHS = ("overlap_cm",)


def check_value(name: str, value, source: str) -> float:
    """``value`` as a float, or a one-line error naming ``name`` when it is not valid for that input."""
    shown = f"{float(value):g}" if isinstance(value, (int, float)) or hasattr(value, "dtype") else repr(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ChromoschedError(f"{source}: {name}={shown} is not a number") from None
    if not math.isfinite(number):
        raise ChromoschedError(f"{source}: {name}={shown} is not finite")
    if name in _POSITIVE_COUNTS or name in _COUNTS:
        if number != math.floor(number):
            raise ChromoschedError(f"{source}: {name}={shown} is not a whole number")
        if name in _POSITIVE_COUNTS and number < 1:
            raise ChromoschedError(f"{source}: {name}={shown} must be at least 1")
        if number < 0:
            raise ChromoschedError(f"{source}: {name}={shown} must not be negative")
    elif name in _POSITIVE_LENGTHS and number <= 0:
        raise ChromoschedError(f"{source}: {name}={shown} must be positive")
    elif name in _LENGTHS and number < 0:
        raise ChromoschedError(f"{source}: {name}={shown} must not be negative")
    return number


def window_share(window_cm: float, overlap_cm: float, chrom_cm: float | None) -> float:
    """Share of the chromosome's markers in one window: ``min(window + overlap, chrom) / chrom``
    (1 without a genetic length)."""
    if chrom_cm is None:
        return 1.0
    return min(window_cm + overlap_cm, chrom_cm) / chrom_cm


def markers_per_window(markers: float, share: float) -> float:
    """Expected markers in one window, at least one (a window always holds a marker of a non-empty
    chromosome). ``ceil`` keeps it a count; the tiny epsilon absorbs float noise in ``markers x 1.0``."""
    return float(max(1, math.ceil(markers * share - 1e-9)))


@dataclass(frozen=True)
class Derivation:
    """How a prior turns a job's inputs into its model features (recorded in the prior file)."""

    name: str
    inputs: tuple[FeatureSpec, ...]
    context: tuple[FeatureSpec, ...]
    features: tuple[FeatureSpec, ...]
    defaults: dict

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def required_names(self) -> list[str]:
        """Inputs without a default: a caller must supply them."""
        return [n for n in self.input_names if n not in self.defaults]

    @property
    def optional_names(self) -> list[str]:
        return [n for n in (*self.input_names, *(f.name for f in self.context)) if n not in self.required_names]

    def inputs_of(self, values: Mapping[str, float], source: str) -> dict[str, float]:
        """The checked inputs (defaults filled, ``chrom_cm`` only when given)."""
        missing = [n for n in self.required_names if values.get(n) is None]
        if missing:
            raise ChromoschedError(f"{source}: missing feature(s) {', '.join(missing)}")
        out = {}
        for name in (*self.input_names, *(f.name for f in self.context)):
            value = values.get(name)
            if value is None:
                if name in self.defaults:
                    out[name] = float(self.defaults[name])
                continue
            out[name] = check_value(name, value, source)
        return out

    def derive(self, values: Mapping[str, float], source: str = "prior") -> dict[str, float]:
        """Model features for one job's inputs (checked; one-line error naming a bad input)."""
        x = self.inputs_of(values, source)
        if self.name == IDENTITY:
            return {n: x[n] for n in self.feature_names}
        if self.name != BEAGLE_PER_WINDOW:  # pragma: no cover - from_dict refuses unknown names
            raise ChromoschedError(f"{source}: unknown feature derivation {self.name!r}")
        share = window_share(x["window_cm"], x["overlap_cm"], x.get("chrom_cm"))
        span = x["window_cm"] + x["overlap_cm"]
        return {
            "threads": x["threads"],
            "effective_window_cm": min(span, x.get("chrom_cm", span)),
            "ref_markers_per_window": markers_per_window(x["ref_variants"], share),
            "target_markers_per_window": markers_per_window(x["target_variants"], share),
            "target_samples": x["target_samples"],
            "ref_samples": x["ref_samples"],
        }

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "inputs": [f.to_dict() for f in self.inputs],
            "context": [f.to_dict() for f in self.context],
            "defaults": dict(self.defaults),
            "features": {f.name: f.description for f in self.features},
            "note": DESCRIPTIONS.get(self.name, ""),
        }

    @classmethod
    def from_dict(cls, data, features: tuple[FeatureSpec, ...], source: str) -> Derivation:
        if not isinstance(data, dict) or "name" not in data:
            raise ChromoschedError(f"{source}: 'derivation' must be an object with a name")
        name = data["name"]
        if name not in (BEAGLE_PER_WINDOW, IDENTITY):
            raise ChromoschedError(
                f"{source}: unknown feature derivation {name!r} (this chromosched knows "
                f"{BEAGLE_PER_WINDOW}, {IDENTITY})"
            )
        try:
            inputs = tuple(FeatureSpec.from_dict(f, source) for f in data["inputs"])
            context = tuple(FeatureSpec.from_dict(f, source) for f in data.get("context", []))
            defaults = {str(k): float(v) for k, v in dict(data.get("defaults") or {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ChromoschedError(
                f"{source}: 'derivation' needs inputs (list of features) and numeric defaults"
            ) from None
        derivation = cls(name=name, inputs=inputs, context=context, features=features, defaults=defaults)
        if name == BEAGLE_PER_WINDOW:
            expected = beagle_derivation()
            if derivation.input_names != expected.input_names or derivation.feature_names != expected.feature_names:
                raise ChromoschedError(
                    f"{source}: derivation {name} must have inputs {', '.join(expected.input_names)} "
                    f"and features {', '.join(expected.feature_names)}"
                )
        elif derivation.input_names != derivation.feature_names:
            raise ChromoschedError(f"{source}: derivation {IDENTITY} must have the features as its inputs")
        return derivation


BEAGLE_PER_WINDOW = "beagle-per-window/1"
IDENTITY = "identity"
DESCRIPTIONS = {
    BEAGLE_PER_WINDOW: "effective_window_cm = min(window_cm + overlap_cm, chrom_cm) (window_cm + overlap_cm without chrom_cm); "
    "share = effective_window_cm / chrom_cm (1 without chrom_cm); "
    "ref_markers_per_window = max(1, ceil(ref_variants x share)); "
    "target_markers_per_window = max(1, ceil(target_variants x share)); "
    "threads, target_samples, ref_samples as given; burnin, iterations checked, not used",
    IDENTITY: "the features are the inputs",
}


def beagle_derivation() -> Derivation:
    return Derivation(
        name=BEAGLE_PER_WINDOW,
        inputs=BEAGLE_INPUTS,
        context=BEAGLE_CONTEXT,
        features=BEAGLE_MODEL_FEATURES,
        defaults=dict(BEAGLE_DEFAULTS),
    )


def identity_derivation(features: tuple[FeatureSpec, ...]) -> Derivation:
    return Derivation(name=IDENTITY, inputs=features, context=(), features=features, defaults={})


def genetic_length_cm(map_lines, chrom: str | None = None, source: str = "genetic map") -> float:
    """Genetic length (cM) of a PLINK map (``chrom id cM bp`` per line): last minus first cM.

    A map with one bin (two positions) gives that bin's length; a map with one position or none has
    no length and is an error, as is a cM column that is not a number or decreases.
    """
    first = last = None
    for number, line in enumerate(map_lines, start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 4:
            raise ChromoschedError(f"{source} line {number}: expected 4 columns (chrom id cM bp), got {len(fields)}")
        if chrom is not None and fields[0] != chrom:
            continue
        try:
            cm = float(fields[2])
        except ValueError:
            raise ChromoschedError(f"{source} line {number}: cM {fields[2]!r} is not a number") from None
        if last is not None and cm < last:
            raise ChromoschedError(f"{source} line {number}: cM decreases ({cm:g} after {last:g})")
        first = cm if first is None else first
        last = cm
    if first is None or last - first <= 0:
        raise ChromoschedError(f"{source}: no genetic length (needs two positions with increasing cM)")
    return last - first
