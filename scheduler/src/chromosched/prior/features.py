"""The features a RAM prior is a function of: names, units, and how models should treat them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from ..errors import ChromoschedError


@dataclass(frozen=True)
class FeatureSpec:
    """One input of a prior.

    ``log_scale``: sizes spanning orders of magnitude (variants, samples, window) are modelled on a log
    scale by the teacher and sampled log-uniformly for distillation. ``integer``: only whole values
    are meaningful (synthetic samples are rounded).
    """

    name: str
    unit: str
    description: str
    log_scale: bool = False
    integer: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping, source: str) -> FeatureSpec:
        try:
            return cls(
                name=str(data["name"]),
                unit=str(data["unit"]),
                description=str(data.get("description", "")),
                log_scale=bool(data.get("log_scale", False)),
                integer=bool(data.get("integer", True)),
            )
        except (KeyError, TypeError) as err:
            raise ChromoschedError(f"{source}: feature entry {data!r} lacks {err}") from None


#: Beagle 5.4's eight inputs (REFERENCE 1.3), named as the runs table and the plugin spell them: what a
#: user or rule supplies. Variant/sample counts are those Beagle sees for one chromosome (one job). The
#: model's own features are derived from them (``derivation``).
BEAGLE_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("threads", "threads", "Beagle nthreads="),
    FeatureSpec("burnin", "iterations", "Beagle burnin= (phasing burn-in iterations)"),
    FeatureSpec("iterations", "iterations", "Beagle iterations= (phasing iterations)"),
    FeatureSpec("window_cm", "cM", "Beagle window= (window length in cM)", log_scale=True, integer=False),
    FeatureSpec("target_variants", "markers", "markers in the target (gt=) VCF", log_scale=True),
    FeatureSpec("target_samples", "samples", "samples in the target (gt=) VCF", log_scale=True),
    FeatureSpec("ref_variants", "markers", "markers in the reference panel (ref=) VCF", log_scale=True),
    FeatureSpec("ref_samples", "samples", "samples in the reference panel (ref=) VCF", log_scale=True),
)

#: The measured quantity a Beagle prior predicts.
BEAGLE_TARGET = "min_heap_mb"


def feature_names(specs: Iterable[FeatureSpec]) -> list[str]:
    return [s.name for s in specs]


def parse_feature_assignments(
    items: Sequence[str], names: Sequence[str], source: str = "--features", optional: Sequence[str] = ()
) -> dict[str, float]:
    """Parse ``k=v`` strings into a numeric mapping with every name of ``names`` not in ``optional``
    (which may also name extra inputs, e.g. ``chrom_cm``); one-line errors otherwise."""
    known = list(names) + [n for n in optional if n not in names]
    values: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ChromoschedError(f"{source}: {item!r} is not of the form name=value")
        if key not in known:
            raise ChromoschedError(f"{source}: unknown feature {key!r} (expected {', '.join(known)})")
        if key in values:
            raise ChromoschedError(f"{source}: feature {key!r} given twice")
        try:
            value = float(raw)
        except ValueError:
            raise ChromoschedError(f"{source}: feature {key}={raw!r} is not a number") from None
        if not value == value or value in (float("inf"), float("-inf")):
            raise ChromoschedError(f"{source}: feature {key}={raw!r} is not finite")
        values[key] = value
    missing = [n for n in names if n not in values and n not in optional]
    if missing:
        raise ChromoschedError(f"{source}: missing feature(s) {', '.join(missing)}")
    return values
