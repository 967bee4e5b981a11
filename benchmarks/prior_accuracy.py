"""RAM prior accuracy on Beagle runs held out from fitting, next to the paper's figures.

For the held-out split of the runs table: Pearson r of the teacher and of the closed-form formula
against the measured minimum heap; per calibration level (0.8, 0.9, 0.95) the empirical coverage,
the OOM rate (runs whose real minimum heap exceeds the calibrated estimate) and the average
over-reservation (calibrated / true - 1). Baselines in the same run: the raw formula without
calibration, and REFERENCE 4's rule of thumb (25 MB + 3.6 B x ref markers per window x target samples).
Next to the OOM rate, ``oom_rate_as_run``: runs whose measured minimum heap is above the ``-Xmx``
the pipeline would actually pass for the estimate (``heap_mb_for(mem_mb_for_heap(estimate))``, the
estimate rounded up to whole MB, so never above the OOM rate). The OOM rate is the target's metric.

The default table is ``beagle_runs_refined.tsv``: the same 64 held-out design points as
``beagle_runs.tsv`` (whose fit rows it copies unchanged), measured more precisely (brackets narrowed
to 1 MB, and Beagle re-run at every calibrated estimate that still fell inside a bracket; see
``chromosched_pipeline.beagle_profile --refine/--probe``). ``--runs config/priors/beagle_runs.tsv``
gives the coarse first-pass numbers.

    python benchmarks/prior_accuracy.py [--prior config/priors/beagle.json] [--runs config/priors/beagle_runs_refined.tsv] [--json]

Writes benchmarks/out/prior_accuracy.png (predicted vs measured) and prints a table, or JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scheduler" / "src"))

from chromosched.java_memory import heap_mb_for, mem_mb_for_heap  # noqa: E402
from chromosched.prior import LEVELS, RamTeacher, load_prior  # noqa: E402
from chromosched.prior.fitting import teacher_path  # noqa: E402
from chromosched.prior.runs import read_runs, select_split  # noqa: E402

PAPER = {"pearson_teacher": 0.92, "pearson_formula": 0.85, "oom_rate_at_0.8": 0.0}
TARGETS = {"pearson_formula": 0.95, "oom_rate_at_0.9": 0.0}


def pearson(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def genetic_length_cm(runs_path: Path) -> float | None:
    with open(runs_path) as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            match = re.search(r"genetic length ([0-9.]+) cM", line)
            if match:
                return float(match.group(1))
    return None


def measure(prior_path: Path, runs_path: Path) -> dict:
    prior = load_prior(prior_path)
    runs = select_split(read_runs(runs_path, prior.feature_names, prior.target["name"]), "heldout", runs_path)
    X = runs[prior.feature_names].to_numpy(float)
    y = runs[prior.target["name"]].to_numpy(float)
    raw = prior.raw_many(X)
    teacher = RamTeacher.load(teacher_path(prior, prior_path), prior.teacher["sha256"])
    teacher_pred = teacher.predict(X)
    out = {"n_heldout": int(len(y)), "heap_range_mb": [float(y.min()), float(y.max())],
           "pearson_teacher": round(pearson(teacher_pred, y), 4), "pearson_formula": round(pearson(raw, y), 4),
           "teacher_cv_pearson_fit_runs": prior.teacher.get("cv_pearson"),
           "formula": prior.expression.text, "levels": {}}
    for level in LEVELS:
        est = prior.calibrator(level).apply(raw)
        out["levels"][f"{level:g}"] = {
            "coverage": round(float(np.mean(y <= est)), 4),
            "oom_rate": round(float(np.mean(y > est)), 4),
            "over_reservation": round(float(np.mean(est / y - 1)), 4),
            "oom_rate_as_run": round(float(np.mean(y > np.array([heap_mb_for(mem_mb_for_heap(e)) for e in est]))), 4),
        }
    out["raw_formula"] = {"oom_rate": round(float(np.mean(y > raw)), 4),
                          "over_reservation": round(float(np.mean(raw / y - 1)), 4)}
    length = genetic_length_cm(runs_path)
    if length:
        d = {n: runs[n].to_numpy(float) for n in prior.feature_names}
        rule = 25 + 3.6e-6 * d["ref_variants"] * np.minimum(1, (d["window_cm"] + 2) / length) * d["target_samples"]
        out["rule_of_thumb"] = {"pearson": round(pearson(rule, y), 4), "oom_rate": round(float(np.mean(y > rule)), 4),
                                "over_reservation": round(float(np.mean(rule / y - 1)), 4)}
    out["paper"] = PAPER
    out["targets_met"] = {
        "pearson_formula>=0.95": out["pearson_formula"] >= 0.95,
        **{f"coverage>={lv}": out["levels"][lv]["coverage"] >= float(lv) for lv in out["levels"]},
        "zero_oom_at_0.9": out["levels"]["0.9"]["oom_rate"] == 0.0,
    }
    out["plot"] = str(plot(y, raw, prior.calibrator(0.9).apply(raw), teacher_pred))
    return out


def plot(y, raw, calibrated, teacher_pred) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = REPO / "benchmarks" / "out" / "prior_accuracy.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y, teacher_pred, s=12, alpha=0.5, label="teacher")
    ax.scatter(y, raw, s=12, alpha=0.7, label="formula")
    ax.scatter(y, calibrated, s=12, marker="^", alpha=0.7, label="calibrated (0.9)")
    lim = [min(y.min(), raw.min()) * 0.8, max(y.max(), calibrated.max()) * 1.2]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set(xscale="log", yscale="log", xlim=lim, ylim=lim, xlabel="measured minimum heap (MB)",
           ylabel="predicted heap (MB)", title="Beagle RAM prior, held-out runs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.relative_to(REPO)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prior", type=Path, default=REPO / "config" / "priors" / "beagle.json")
    p.add_argument("--runs", type=Path, default=REPO / "config" / "priors" / "beagle_runs_refined.tsv")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = measure(args.prior, args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"held-out Beagle runs: {result['n_heldout']} (minimum heap {result['heap_range_mb'][0]:.0f}-{result['heap_range_mb'][1]:.0f} MB)")
    print(f"formula: {result['formula']}")
    print(f"{'':28}{'ours':>10}{'paper':>10}{'target':>10}")
    print(f"{'Pearson r, teacher':28}{result['pearson_teacher']:>10.3f}{PAPER['pearson_teacher']:>10.2f}{'':>10}")
    print(f"{'Pearson r, formula':28}{result['pearson_formula']:>10.3f}{PAPER['pearson_formula']:>10.2f}{'>= 0.95':>10}")
    if "rule_of_thumb" in result:
        print(f"{'Pearson r, rule of thumb':28}{result['rule_of_thumb']['pearson']:>10.3f}")
    print(f"\n{'estimate':22}{'coverage':>10}{'OOM rate':>10}{'over-reserv.':>14}{'OOM as run':>12}")
    for lv, m in result["levels"].items():
        print(f"{'calibrated @ ' + lv:22}{m['coverage']:>10.3f}{m['oom_rate']:>10.3f}{m['over_reservation']:>+14.3f}"
              f"{m['oom_rate_as_run']:>12.3f}")
    print(f"{'raw formula':22}{1 - result['raw_formula']['oom_rate']:>10.3f}{result['raw_formula']['oom_rate']:>10.3f}{result['raw_formula']['over_reservation']:>+14.3f}")
    if "rule_of_thumb" in result:
        r = result["rule_of_thumb"]
        print(f"{'rule of thumb':22}{1 - r['oom_rate']:>10.3f}{r['oom_rate']:>10.3f}{r['over_reservation']:>+14.3f}")
    print("(paper: zero OOMs at its 80th-percentile estimate)")
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in result["targets_met"].items()))
    print(f"plot: {result['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
