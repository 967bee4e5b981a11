"""One Beagle job's inputs, as a prior takes them.

A Beagle prior's formula is written in per-window features (``derivation.beagle-per-window/1``):
the prior derives them from the job's eight inputs and the chromosome's genetic length
(``chrom_cm``), so the same call works on a chromosome of any length. Beagle's own defaults fill the
settings the configuration leaves unset; without ``chrom_cm`` a window is taken to hold the whole
chromosome (an upper bound: the estimate never decreases in markers per window).
"""

from __future__ import annotations

from .derivation import BEAGLE_DEFAULTS
from .prior_file import Prior


def beagle_features(
    prior: Prior,
    *,
    threads: int,
    target_variants: int,
    target_samples: int,
    ref_variants: int,
    ref_samples: int,
    burnin: int | None = None,
    iterations: int | None = None,
    window_cm: float | None = None,
    overlap_cm: float | None = None,
    chrom_cm: float | None = None,
) -> dict[str, float]:
    """The input mapping ``prior.raw_mb``/``calibrated_mb`` take for one Beagle job, checked (a bad
    value is a one-line error naming it) and with Beagle's defaults filled in."""
    values = {
        "threads": threads,
        "burnin": burnin,
        "iterations": iterations,
        "window_cm": window_cm,
        "target_variants": target_variants,
        "target_samples": target_samples,
        "ref_variants": ref_variants,
        "ref_samples": ref_samples,
        "overlap_cm": overlap_cm,
        "chrom_cm": chrom_cm,
    }
    values = {k: (BEAGLE_DEFAULTS.get(k) if v is None else v) for k, v in values.items()}
    checked = prior.derivation.inputs_of(
        {k: v for k, v in values.items() if v is not None}, f"{prior.source} ({prior.tool} prior)"
    )
    return checked


REQUIRED = ("threads", "target_variants", "target_samples", "ref_variants", "ref_samples")
OPTIONAL = ("burnin", "iterations", "window_cm", "overlap_cm", "chrom_cm")


def prior_inputs(prior: Prior, facts) -> dict[str, float]:
    """The input mapping ``prior`` takes for one job's facts (``params: chromosched_features``): a
    Beagle prior's eight inputs as counts with Beagle's defaults filled in, checked (a missing or bad
    value is a one-line :class:`ChromoschedError`); any other prior's own feature names."""
    if prior.tool != "beagle":
        return {name: facts[name] for name in prior.feature_names}
    required = {k: None if facts.get(k) is None else int(facts[k]) for k in REQUIRED}
    return beagle_features(prior, **required, **{k: facts.get(k) for k in OPTIONAL})


def prior_view(prior: Prior, facts, level: float | None = None) -> dict:
    """What the prior makes of one job's facts: its model features and the calibrated estimate (MB),
    for display (``chromosched plan``)."""
    inputs = prior_inputs(prior, facts) if prior.tool == "beagle" else dict(facts)
    return {"features": prior.model_features(inputs), "estimate_mb": round(prior.calibrated_mb(inputs, level), 3)}
