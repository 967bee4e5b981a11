"""Fit a prior from a runs table (teacher -> distillation -> conformal calibration) and report on held-out runs."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ChromoschedError
from .calibration import LEVELS, ConformalCalibrator, min_bin_size
from .derivation import beagle_derivation
from .distill import distill, feature_ranges
from .engines import SearchBudget, get_engine
from .features import BEAGLE_TARGET
from .monotone import check_monotone
from .prior_file import Prior, level_key
from .runs import file_sha256, read_runs, select_split
from .teacher import RamTeacher, _pearson

TOOLS = {"beagle": (beagle_derivation, BEAGLE_TARGET, "minimum Java heap (-Xmx) with which Beagle succeeds")}
#: model-feature ratios that synthetic vectors keep within their measured range (see distill.sample_synthetic)
RATIOS = {"beagle": [("target_markers_per_window", "ref_markers_per_window")]}
#: This JVM (G1) sizes a heap in 2 MB steps: ``-Xmx9m`` and ``-Xmx10m`` both give 10 MB
#: (``java -Xmx9m -XX:+PrintFlagsFinal -version``; beagle_profile's docstring).
HEAP_STEP_MB = 2.0


def _stderr(message: str) -> None:
    print(f"chromosched prior: {message}", file=sys.stderr, flush=True)


@dataclass
class FittedPrior:
    prior: Prior
    teacher: RamTeacher
    teacher_bytes: bytes


def _versions(engine) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scikit-learn", "sympy", "chromosched"):
        try:
            out[pkg] = version(pkg if pkg != "chromosched" else "snakemake-scheduler-plugin-chromosched")
        except PackageNotFoundError:
            out[pkg] = "unknown"
    out[engine.package] = engine.version()
    return out


def split_calibration(n: int, fraction: float, seed: int, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/calibration index split of ``n`` fit runs."""
    n_cal = max(minimum, int(round(n * fraction)))
    if n - n_cal < 10:
        raise ChromoschedError(f"too few fit runs ({n}): need {n_cal} for calibration and at least 10 for the teacher")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_cal:]), np.sort(order[:n_cal])


def runs_model_matrix(derivation, runs, runs_path) -> np.ndarray:
    """Model features (columns ``derivation.feature_names``) of a runs table's rows; a bad input is
    an error naming the file and line."""
    names = derivation.feature_names
    rows = [
        [derivation.derive(row, f"{runs_path} line {line}")[n] for n in names]
        for line, row in zip(runs.index, runs.to_dict("records"))
    ]
    return np.array(rows, dtype=float).reshape(-1, len(names))


def with_chromosome_length(runs, runs_path) -> object:
    """The runs with a numeric ``chrom_cm`` column: the table's own, or the genetic length its
    comment lines record for a single-chromosome table (``# ... genetic length X cM``)."""
    import pandas as pd

    runs = runs.copy()
    if "chrom_cm" in runs.columns:
        values = pd.to_numeric(runs["chrom_cm"].astype(str).str.strip(), errors="coerce")
        bad = values.isna() | ~(values > 0)
        if bad.any():
            line = bad[bad].index[0]
            raise ChromoschedError(
                f"{runs_path} line {line}: chrom_cm must be a positive number, got {runs.at[line, 'chrom_cm']!r}"
            )
        runs["chrom_cm"] = values.astype(float)
        return runs
    length = runs_genetic_length_cm(runs_path)
    if length is None:
        raise ChromoschedError(
            f"{runs_path}: no chrom_cm column and no '# ... genetic length X cM' comment: the prior "
            "needs each run's chromosome length to derive markers per window"
        )
    runs["chrom_cm"] = float(length)
    return runs


def fit_prior(
    runs_path: str | Path,
    *,
    engine: str = "monotone",
    level: float = 0.9,
    seed: int = 0,
    budget: SearchBudget | str = "default",
    n_synthetic: int = 4096,
    calibration_fraction: float = 0.3,
    tool: str = "beagle",
    teacher_file: str | None = None,
    sr_target: str = "linear",
    synthetic_sampling: str = "near-runs",
    progress: Callable[[str], None] = _stderr,
) -> FittedPrior:
    """Fit teacher, formula and calibration maps on the ``fit`` split of ``runs_path``."""
    if tool not in TOOLS:
        raise ChromoschedError(f"unknown tool {tool!r} (expected {', '.join(TOOLS)})")
    if level_key(level) not in {level_key(x) for x in LEVELS}:
        raise ChromoschedError(f"--level must be one of {', '.join(map(str, LEVELS))}, got {level}")
    make_derivation, target, target_description = TOOLS[tool]
    derivation = make_derivation()
    specs = derivation.features
    names = [s.name for s in specs]
    sr = get_engine(engine)  # fail early with the engine's message
    budget = SearchBudget.preset(budget) if isinstance(budget, str) else budget

    runs = with_chromosome_length(
        select_split(read_runs(runs_path, derivation.input_names, target), "fit", runs_path), runs_path
    )
    X = runs_model_matrix(derivation, runs, runs_path)
    y = runs[target].to_numpy(float)
    train, cal = split_calibration(len(y), calibration_fraction, seed, minimum=min_bin_size(max(LEVELS)))
    lengths = sorted({round(float(v), 2) for v in runs["chrom_cm"]})
    progress(
        f"{len(y)} fit runs from {runs_path} (chromosomes of {', '.join(f'{v:g}' for v in lengths)} cM): "
        f"{len(train)} for the teacher, {len(cal)} for calibration"
    )

    teacher = RamTeacher(specs, seed=seed)
    score = teacher.cross_validate(X[train], y[train])
    progress(f"teacher cross-validated Pearson r = {score.cv_pearson:.4f} ({score.folds}-fold)")
    teacher.fit(X[train], y[train])

    ranges = feature_ranges(X[train])
    ratio_limits = {}
    for num, den in RATIOS.get(tool, []):
        r = X[train, names.index(num)] / X[train, names.index(den)]
        ratio_limits[(num, den)] = (float(r.min()), float(r.max()))
    progress(f"distilling with {sr.name} on {n_synthetic} synthetic vectors (budget {budget})")
    if synthetic_sampling not in ("near-runs", "box"):
        raise ChromoschedError(f"--synthetic-sampling must be near-runs or box, not {synthetic_sampling!r}")
    result = distill(
        teacher,
        ranges,
        sr,
        budget,
        n_synthetic=n_synthetic,
        seed=seed,
        ratio_limits=ratio_limits,
        target_scale=sr_target,
        near_runs=X[train] if synthetic_sampling == "near-runs" else None,
    )
    progress(f"formula: {result.expression.text}")
    progress(f"formula vs teacher on synthetic vectors: Pearson r = {result.synthetic_pearson:.4f}")

    pred_cal = result.expression.evaluate_matrix(X[cal])
    if not np.all(pred_cal > 0):
        floor_expr = 0.5 * float(np.min(y))
        result.expression = type(result.expression)(
            f"max({result.expression.text}, {floor_expr:.6g})", names, source=result.expression.source
        )
        pred_cal = result.expression.evaluate_matrix(X[cal])
    calibrations = {}
    for lv in sorted({*LEVELS, float(level)}):
        calibrations[level_key(lv)] = ConformalCalibrator(level=lv).fit(pred_cal, y[cal])

    overhead = {}
    if "peak_rss_mb" in runs.columns:
        import pandas as pd

        rss = pd.to_numeric(runs["peak_rss_mb"], errors="coerce").to_numpy(float)
        above = rss - y
        above = above[np.isfinite(above)]
        if len(above):
            overhead = {
                "median": round(float(np.median(above)), 1),
                "p95": round(float(np.quantile(above, 0.95)), 1),
                "max": round(float(np.max(above)), 1),
                "note": "peak RSS of the run at the minimum heap minus that heap (MB)",
            }

    teacher_bytes = teacher.dumps()
    import hashlib

    teacher_name = teacher_file or f"{Path(runs_path).stem}.teacher.joblib"
    inputs = runs[[*derivation.input_names, "chrom_cm"]].to_numpy(float)
    smallest = float(np.min(y))
    prior = Prior(
        tool=tool,
        target={"name": target, "unit": "MB", "description": target_description},
        features=tuple(specs),
        expression=result.expression,
        calibrations=calibrations,
        level=float(level),
        feature_ranges={
            n: [float(lo), float(hi)]
            for n, (lo, hi) in zip([*derivation.input_names, "chrom_cm"], feature_ranges(inputs))
        },
        derivation=derivation,
        model_feature_ranges={n: [float(lo), float(hi)] for n, (lo, hi) in zip(names, feature_ranges(X))},
        floor={
            "mb": smallest + HEAP_STEP_MB,
            "smallest_success_mb": smallest,
            "heap_step_mb": HEAP_STEP_MB,
            "note": "no estimate below the smallest heap any fit run succeeded with, plus the JVM's heap-sizing step",
        },
        jvm_overhead_mb=overhead,
        teacher={
            "file": teacher_name,
            "sha256": hashlib.sha256(teacher_bytes).hexdigest(),
            "model": "VotingRegressor(RandomForest, HistGradientBoosting, GradientBoosting) on log target, "
            "log model features and their pairwise log-products",
            "cv_pearson": round(score.cv_pearson, 4),
            "cv_pearson_log": round(score.cv_pearson_log, 4),
            "cv_folds": score.folds,
        },
        quality={
            "formula_vs_teacher_pearson_synthetic": round(result.synthetic_pearson, 4),
            "formula_pearson_calibration_runs": round(_pearson(pred_cal, y[cal]), 4),
        },
        provenance={
            "runs_file": str(runs_path),
            "runs_sha256": file_sha256(runs_path),
            "n_fit_runs": int(len(y)),
            "n_teacher_runs": int(len(train)),
            "n_calibration_runs": int(len(cal)),
            "engine": sr.name,
            "engine_output": result.engine_text,
            "sr_target": sr_target,
            "budget": budget.__dict__,
            "n_synthetic": result.n_synthetic,
            "synthetic_sampling": synthetic_sampling,
            "synthetic_ratio_limits": {
                f"{a}/{b}": [round(lo, 6), round(hi, 6)] for (a, b), (lo, hi) in ratio_limits.items()
            },
            "seed": int(seed),
            "chromosome_lengths_cm": lengths,
            "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "versions": _versions(sr),
        },
        source="fitted prior",
    )
    check = check_monotone(prior)
    prior.monotone = {
        "features": check.axes,
        "grid_points": check.grid_points,
        "violations": len(check.violations),
        "note": "raw, calibrated (every level) and floored estimates never decrease along these "
        "features on a grid over the model's stated range",
    }
    if check.violations:
        raise ChromoschedError(
            f"the {sr.name} formula decreases in {check.violations[0]} on the grid over the stated "
            f"range; a memory estimate must not (use --engine monotone): {result.expression.text}"
        )
    progress(f"monotone in {', '.join(check.axes)} on {check.grid_points} grid points")
    return FittedPrior(prior=prior, teacher=teacher, teacher_bytes=teacher_bytes)


def runs_genetic_length_cm(path: str | Path) -> float | None:
    """The profiled chromosome's genetic length from the runs table's comment lines, if recorded."""
    import re

    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.startswith("#"):
                return None
            match = re.search(r"genetic length ([0-9.]+) cM", line)
            if match:
                return float(match.group(1))
    return None


def teacher_path(prior: Prior, prior_path: str | Path) -> Path:
    if not prior.teacher.get("file"):
        raise ChromoschedError(f"{prior_path}: the prior records no teacher artefact")
    name = Path(prior.teacher["file"]).name  # only ever next to the prior file
    return Path(prior_path).parent / name


def report(
    prior: Prior, prior_path: str | Path, runs_path: str | Path, level: float | None = None, with_teacher: bool = True
) -> dict:
    """Held-out accuracy: ``{"n_heldout", "pearson_teacher", "pearson_formula", "coverage", "oom_rate",
    "over_reservation"}`` (the first five as before; over-reservation = mean estimate / true - 1)."""
    runs = with_chromosome_length(
        select_split(read_runs(runs_path, prior.feature_names, prior.target["name"]), "heldout", runs_path), runs_path
    )
    X = runs_model_matrix(prior.derivation, runs, runs_path)
    y = runs[prior.target["name"]].to_numpy(float)
    raw = prior.raw_many(X)
    calibrated = prior.calibrated_many(raw, level)
    pearson_teacher = None
    if with_teacher:
        teacher = RamTeacher.load(teacher_path(prior, prior_path), prior.teacher.get("sha256", ""))
        pearson_teacher = round(_pearson(teacher.predict(X), y), 4)
    oom = y > calibrated
    return {
        "n_heldout": int(len(y)),
        "pearson_teacher": pearson_teacher,
        "pearson_formula": round(_pearson(raw, y), 4),
        "coverage": round(float(np.mean(~oom)), 4),
        "oom_rate": round(float(np.mean(oom)), 4),
        "over_reservation": round(float(np.mean(calibrated / y - 1)), 4),
    }
