"""`chromosched prior ...`: fit a RAM prior from measured runs, predict with it, report held-out accuracy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..atomic_files import write_bytes_atomic
from ..errors import ChromoschedError


def register(commands, simulate) -> None:
    """Add ``prior fit``, ``prior predict`` and ``prior report``."""
    prior = commands.add_parser("prior", help="symbolic-regression RAM priors (fit, predict, report)")
    sub = prior.add_subparsers(dest="prior_command", required=True, metavar="ACTION", parser_class=type(prior))

    fit = sub.add_parser("fit", help="fit a prior (teacher, formula, calibration) on measured runs")
    fit.add_argument("--runs", required=True, help="runs TSV (features, min_heap_mb, optional split/status)")
    fit.add_argument(
        "--engine",
        default="monotone",
        help="formula engine: monotone (default: non-decreasing by construction), operon, pysr, gplearn",
    )
    fit.add_argument("--level", type=float, default=0.9, help="default calibration level: 0.8, 0.9 or 0.95")
    fit.add_argument("--out", required=True, help="prior JSON to write (teacher artefact goes next to it)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--budget", default="default", help="search budget preset: tiny, small, default")
    fit.add_argument("--synthetic", type=int, default=4096, help="synthetic feature vectors for distillation")
    fit.add_argument("--tool", default="beagle", help="which tool's features (beagle)")
    fit.add_argument(
        "--sr-target",
        default="linear",
        choices=["linear", "log"],
        help="fit the formula to MB (linear, default) or to log MB (formula = exp(...))",
    )
    fit.add_argument(
        "--synthetic-sampling",
        default="near-runs",
        choices=["near-runs", "box"],
        help="where the teacher labels synthetic vectors: around the measured runs (default) or over the whole box of ranges",
    )
    fit.set_defaults(func=_fit)

    predict = sub.add_parser("predict", help="raw and calibrated prediction (MB) for one job")
    predict.add_argument("--prior", required=True, help="prior JSON")
    predict.add_argument(
        "--features",
        nargs="+",
        required=True,
        metavar="NAME=VALUE",
        help="the job's inputs; for Beagle threads, target_variants, target_samples, ref_variants, "
        "ref_samples, optionally burnin, iterations, window_cm, overlap_cm (Beagle's defaults) "
        "and chrom_cm (the chromosome's genetic length; without it one window holds it all)",
    )
    predict.add_argument("--level", type=float, default=None, help="calibration level (default: the prior's)")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.set_defaults(func=_predict)

    report = sub.add_parser("report", help="accuracy on held-out runs")
    report.add_argument("--prior", required=True, help="prior JSON (its teacher artefact next to it)")
    report.add_argument(
        "--runs", required=True, help="runs TSV; only split=heldout rows are used when it has a split column"
    )
    report.add_argument("--level", type=float, default=None, help="calibration level (default: the prior's)")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(func=_report)


def _fit(args) -> int:
    from ..prior.fitting import fit_prior

    out = Path(args.out)
    if out.suffix != ".json":
        raise ChromoschedError(f"--out {out}: the prior file must end in .json")
    teacher_name = f"{out.stem}.teacher.joblib"
    fitted = fit_prior(
        args.runs,
        engine=args.engine,
        level=args.level,
        seed=args.seed,
        budget=args.budget,
        n_synthetic=args.synthetic,
        tool=args.tool,
        teacher_file=teacher_name,
        sr_target=args.sr_target,
        synthetic_sampling=args.synthetic_sampling,
    )
    write_bytes_atomic(out.parent / teacher_name, fitted.teacher_bytes)
    fitted.prior.save(out)
    print(f"wrote {out} and {out.parent / teacher_name}", file=sys.stderr)
    print(fitted.prior.expression.text)
    return 0


def _predict(args) -> int:
    from ..prior.features import parse_feature_assignments
    from ..prior.prior_file import load_prior

    prior = load_prior(args.prior)
    values = parse_feature_assignments(args.features, prior.feature_names, optional=prior.optional_inputs)
    result = prior.predict(values, level=args.level)
    outside = prior.in_range(values)
    if outside:
        print(
            f"chromosched: warning: feature(s) {', '.join(outside)} outside the measured range: extrapolating",
            file=sys.stderr,
        )
    if args.json:
        print(
            json.dumps(
                {
                    "raw_mb": round(result["raw_mb"], 3),
                    "calibrated_mb": round(result["calibrated_mb"], 3),
                    "level": result["level"],
                }
            )
        )
    else:
        print(f"raw_mb\t{result['raw_mb']:.1f}")
        print(f"calibrated_mb\t{result['calibrated_mb']:.1f}\t(level {result['level']:g})")
    return 0


def _report(args) -> int:
    from ..prior.fitting import report
    from ..prior.prior_file import load_prior

    prior = load_prior(args.prior)
    result = report(prior, args.prior, args.runs, level=args.level)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}\t{value}")
    return 0
