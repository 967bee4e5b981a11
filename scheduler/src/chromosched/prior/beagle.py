"""Turning one Beagle job's settings into the Beagle prior's eight features.

The prior was measured on one simulated chromosome of genetic length ``L_p`` (recorded in the prior as
``provenance.profile_genetic_length_cm``). Beagle's memory follows the markers in one window, i.e.
``ref_variants x min(1, (window + overlap) / L)``: a window longer than the chromosome takes it whole.
For a job on a chromosome of another genetic length ``L_job`` the window that gives the same share of
the chromosome on the profiled one is ``min(1, (window + overlap) / L_job) x L_p - overlap``; without
``chrom_cm`` the window is only kept inside the measured range (beyond ``L_p`` it makes no difference
there). Beagle's own defaults fill parameters the configuration leaves unset.
"""

from __future__ import annotations

from .prior_file import Prior

BEAGLE_DEFAULTS = {"burnin": 3, "iterations": 12, "window_cm": 40.0, "overlap_cm": 2.0}


def beagle_features(prior: Prior, *, threads: int, target_variants: int, target_samples: int, ref_variants: int,
                    ref_samples: int, burnin: int | None = None, iterations: int | None = None,
                    window_cm: float | None = None, overlap_cm: float | None = None,
                    chrom_cm: float | None = None) -> dict[str, float]:
    """The feature mapping ``prior.raw_mb``/``calibrated_mb`` expect for one Beagle job."""
    burnin = BEAGLE_DEFAULTS["burnin"] if burnin is None else burnin
    iterations = BEAGLE_DEFAULTS["iterations"] if iterations is None else iterations
    window = BEAGLE_DEFAULTS["window_cm"] if window_cm is None else float(window_cm)
    overlap = BEAGLE_DEFAULTS["overlap_cm"] if overlap_cm is None else float(overlap_cm)
    lo, hi = prior.feature_ranges.get("window_cm", [window, window])
    profile_cm = prior.provenance.get("profile_genetic_length_cm")
    if chrom_cm and profile_cm:
        share = min(1.0, (window + overlap) / float(chrom_cm))
        window = share * float(profile_cm) - overlap
    window = min(max(window, lo), hi)
    return {"threads": float(threads), "burnin": float(burnin), "iterations": float(iterations),
            "window_cm": float(window), "target_variants": float(target_variants),
            "target_samples": float(target_samples), "ref_variants": float(ref_variants),
            "ref_samples": float(ref_samples)}
