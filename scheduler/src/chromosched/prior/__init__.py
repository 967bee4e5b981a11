"""RAM priors: a closed-form, conformally calibrated memory formula per tool (REFERENCE 1.3).

Public API::

    from chromosched.prior import load_builtin_prior, load_prior
    prior = load_builtin_prior("beagle")           # or load_prior("config/priors/beagle.json")
    prior.feature_names                             # the inputs a caller supplies (Beagle: the eight)
    prior.model_feature_names                       # what the formula is written in (per window)
    prior.raw_mb(inputs)                            # formula's point prediction (MB of Java heap)
    prior.calibrated_mb(inputs, level=0.9)          # conservative estimate at that level, floored (MB)
    beagle_features(prior, threads=2, target_variants=..., target_samples=..., ref_variants=...,
                    ref_samples=..., window_cm=None, chrom_cm=...)   # one Beagle job's inputs, checked

Fitting (``fit_prior``) and held-out reporting (``report``) live in ``prior.fitting``.
"""

from .beagle import beagle_features
from .calibration import LEVELS, ConformalCalibrator
from .derivation import BEAGLE_DEFAULTS, BEAGLE_INPUTS, BEAGLE_MODEL_FEATURES, Derivation, beagle_derivation
from .engines import ENGINES, SearchBudget, get_engine
from .expression import SafeExpression
from .features import BEAGLE_FEATURES, BEAGLE_TARGET, FeatureSpec
from .prior_file import Prior, builtin_prior_path, load_builtin_prior, load_prior
from .teacher import RamTeacher

__all__ = [
    "BEAGLE_DEFAULTS",
    "BEAGLE_INPUTS",
    "BEAGLE_MODEL_FEATURES",
    "Derivation",
    "beagle_derivation",
    "beagle_features",
    "LEVELS",
    "ConformalCalibrator",
    "ENGINES",
    "SearchBudget",
    "get_engine",
    "SafeExpression",
    "BEAGLE_FEATURES",
    "BEAGLE_TARGET",
    "FeatureSpec",
    "Prior",
    "builtin_prior_path",
    "load_builtin_prior",
    "load_prior",
    "RamTeacher",
]
