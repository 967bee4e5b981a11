"""Report figures and tables: the PRS distribution, per-job runtime and peak memory (from
Snakemake benchmark files and Beagle's attempt records) and imputation quality (DR2 by frequency).

CLI (used by the report rules)::

    python -m chromosched_pipeline.report.plots prs --prs results/prs/prs.tsv [--groups samples.tsv] --out prs.png
    python -m chromosched_pipeline.report.plots resources --benchmarks results/benchmarks/*/*.tsv \\
        [--attempts logs/impute/*.attempts.jsonl] --out-tsv job_resources.tsv --out-png job_resources.png
    python -m chromosched_pipeline.report.plots quality --dr2 results/quality/*.dr2.tsv --out quality.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chromosched.atomic_files import write_bytes_atomic  # noqa: E402
from chromosched.errors import ChromoschedError  # noqa: E402
from chromosched.genomes import canonical_chrom  # noqa: E402
from chromosched.json_lines import read_json_lines  # noqa: E402

from ..vcfio import atomic_outputs, exit_on_sigterm, write_text_atomic  # noqa: E402


def _save(fig: plt.Figure, out: str | Path) -> None:
    with atomic_outputs(out, suffixes=[".png"]) as (tmp,):
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def _read_tsv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"))


def prs_distribution(prs_tsv: str | Path, out_png: str | Path, groups_tsv: str | Path | None = None) -> None:
    """Histogram of the PRS over samples, one colour per group when a sample-group table is given."""
    rows = _read_tsv(prs_tsv)
    if not rows:
        raise ChromoschedError(f"PRS table {prs_tsv}: no samples")
    scores = {r["sample"]: float(r["prs"]) for r in rows}
    rate = float(rows[0]["match_rate"])
    groups: dict[str, str] = {}
    if groups_tsv:
        with open(groups_tsv, newline="") as fh:
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            for rec in reader:
                if len(rec) >= 2:
                    groups[rec[0]] = rec[1]
        group_label = header[1] if header and len(header) > 1 else "group"
    fig, ax = plt.subplots(figsize=(7, 4))
    values = np.array(list(scores.values()))
    bins = np.histogram_bin_edges(values, bins=min(30, max(5, len(values) // 4)))
    present = sorted({groups.get(s, "other") for s in scores}) if groups else []
    if present and len(present) > 1:
        data = [[v for s, v in scores.items() if groups.get(s, "other") == g] for g in present]
        ax.hist(data, bins=bins, stacked=True, label=[f"{g} (n={len(d)})" for g, d in zip(present, data)])
        ax.legend(title=group_label, fontsize=8)
    else:
        ax.hist(values, bins=bins, color="tab:blue")
    ax.set_xlabel("polygenic risk score (sum of weight x dosage)")
    ax.set_ylabel("samples")
    ax.set_title(
        f"PRS distribution: {len(values)} samples, {int(rows[0]['n_variants_matched'])}/"
        f"{int(rows[0]['n_variants'])} variants matched ({rate:.1%})"
    )
    _save(fig, out_png)


def _benchmark_job(path: Path) -> tuple[str, str]:
    """(rule, job label) from results/benchmarks/<rule>/<label>.tsv."""
    return path.parent.name, path.name[: -len(".tsv")] if path.name.endswith(".tsv") else path.name


def job_resources(
    benchmarks: Sequence[str | Path],
    out_tsv: str | Path,
    out_png: str | Path,
    attempts: Sequence[str | Path] = (),
) -> list[dict[str, object]]:
    """One row per finished job: runtime, CPU time, peak RSS; for Beagle jobs also the granted
    mem_mb, the heap and the number of attempts (failed attempts leave no benchmark file)."""
    beagle: dict[str, list[dict]] = {}
    for path in attempts:
        label = Path(path).name.split(".")[0]
        try:
            beagle[label] = read_json_lines(path, missing_ok=False)  # a line cut by a kill: skipped, warned
        except OSError:
            continue
    rows: list[dict[str, object]] = []
    for path in sorted(map(Path, benchmarks)):
        if not path.exists():
            continue
        rule, label = _benchmark_job(path)
        bench = _read_tsv(path)
        if not bench:
            continue
        last = bench[-1]
        row: dict[str, object] = {
            "rule": rule,
            "job": label,
            "runtime_s": round(float(last["s"]), 2),
            "cpu_time_s": round(float(last.get("cpu_time") or 0 or 0), 2),
            "max_rss_mb": round(float(last["max_rss"]), 1) if last.get("max_rss") not in (None, "", "NA", "-") else "",
            "mem_mb": "",
            "heap_mb": "",
            "attempts": "",
            "heap_oom_attempts": "",
        }
        runs = beagle.get(label) if rule == "impute" else None
        if runs:
            ok = [r for r in runs if r.get("kind") == "ok"]
            final = ok[-1] if ok else runs[-1]
            row.update(
                mem_mb=final.get("mem_mb", ""),
                heap_mb=final.get("heap_mb", ""),
                attempts=len(runs),
                heap_oom_attempts=sum(1 for r in runs if r.get("heap_oom")),
            )
        rows.append(row)
    if not rows:
        raise ChromoschedError("job resources: no benchmark files found")
    columns = list(rows[0])
    write_text_atomic(
        out_tsv, "\t".join(columns) + "\n" + "".join("\t".join(str(r[c]) for c in columns) + "\n" for r in rows)
    )

    rules = list(dict.fromkeys(str(r["rule"]) for r in rows))
    n_jobs = len({str(r["job"]) for r in rows})
    fig, axes = plt.subplots(2, 1, figsize=(min(16, max(7, 0.45 * n_jobs)), 6.5), sharex=False)
    for ax, key, label in ((axes[0], "runtime_s", "wall time (s)"), (axes[1], "max_rss_mb", "peak RSS (MB)")):
        width = 0.8 / len(rules)
        jobs = list(dict.fromkeys(str(r["job"]) for r in rows))
        jobs.sort(key=_chrom_order)
        x = np.arange(len(jobs))
        for i, rule in enumerate(rules):
            values = {str(r["job"]): float(r[key]) if r[key] != "" else 0.0 for r in rows if r["rule"] == rule}
            ax.bar(x + (i - (len(rules) - 1) / 2) * width, [values.get(j, 0.0) for j in jobs], width, label=rule)
        if key == "max_rss_mb":
            granted = {str(r["job"]): float(r["mem_mb"]) for r in rows if r["rule"] == "impute" and r["mem_mb"] != ""}
            if granted:
                ax.scatter(
                    [x[jobs.index(j)] for j in granted],
                    list(granted.values()),
                    marker="_",
                    s=200,
                    color="black",
                    label="impute: granted mem_mb",
                    zorder=3,
                )
        ax.set_xticks(x)
        ax.set_xticklabels(jobs, rotation=90, fontsize=7)
        ax.set_ylabel(label)
        ax.legend(fontsize=7, ncol=min(4, len(rules) + 1))
    axes[0].set_title("per-job wall time and peak memory (Snakemake benchmark files)")
    fig.tight_layout()
    _save(fig, out_png)
    return rows


def _chrom_order(label: str) -> tuple[int, str]:
    name = canonical_chrom(label)[3:]
    return (int(name), "") if name.isdigit() else (10_000, label)


def imputation_quality(dr2_files: Sequence[str | Path], out_png: str | Path) -> None:
    """Mean Beagle DR2 by minor-allele-frequency bin, all chromosomes pooled (from
    ``bcftools query -f '%CHROM\\t%POS\\t%INFO/AF\\t%INFO/DR2\\n'`` outputs)."""
    af: list[float] = []
    dr2: list[float] = []
    for path in dr2_files:
        with open(path) as fh:
            for line in fh:
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 4 or fields[2] in (".", "") or fields[3] in (".", ""):
                    continue
                # Multi-ALT records list one value per ALT: use the first.
                af.append(float(fields[2].split(",")[0]))
                dr2.append(float(fields[3].split(",")[0]))
    if not af:
        raise ChromoschedError("imputation quality: no AF/DR2 values found")
    maf = np.minimum(np.array(af), 1 - np.array(af))
    r2 = np.array(dr2)
    edges = np.array([0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5 + 1e-9])
    idx = np.digitize(maf, edges) - 1
    means = [r2[idx == i].mean() if np.any(idx == i) else np.nan for i in range(len(edges) - 1)]
    counts = [int(np.sum(idx == i)) for i in range(len(edges) - 1)]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{edges[i]:g}-{min(edges[i + 1], 0.5):g}" for i in range(len(edges) - 1)]
    ax.bar(range(len(labels)), means, color="tab:green")
    for i, (m, n) in enumerate(zip(means, counts)):
        if n:
            ax.text(i, (m if np.isfinite(m) else 0) + 0.01, f"n={n}", ha="center", fontsize=7)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("estimated minor-allele frequency")
    ax.set_ylabel("mean Beagle DR2")
    ax.set_title(f"imputation quality: {len(r2)} imputed records, {np.mean(r2 >= 0.8):.1%} with DR2 >= 0.8")
    _save(fig, out_png)


def scheduler_figures(events_jsonl: str | Path, out_schedule: str | Path, out_prediction: str | Path) -> int:
    """From the chromosched plugin's event log: (1) the schedule - one bar per job attempt over time
    above the memory reserved by running jobs (and measured) against the budget; (2) each job's
    prediction and reservation against what it really needed (measured). Returns the number of job
    attempts drawn.

    The log is read and drawn by :mod:`chromosched.runtime.run_events` and :mod:`chromosched.runtime.report_figures`,
    as ``chromosched report`` does."""
    from chromosched.runtime.report_figures import predicted_vs_measured, schedule
    from chromosched.runtime.run_events import load_run_events

    try:
        run = load_run_events(events_jsonl)
    except ChromoschedError:
        run = None  # no log, or no job started: say so in the figures
    if run is None:
        for out in (out_schedule, out_prediction):
            fig, axis = plt.subplots(figsize=(6, 3))
            axis.text(
                0.5,
                0.5,
                "no chromosched events: run with --scheduler chromosched",
                ha="center",
                va="center",
                transform=axis.transAxes,
            )
            axis.set_axis_off()
            _save(fig, out)
        return 0
    write_bytes_atomic(out_schedule, schedule(run))
    write_bytes_atomic(out_prediction, predicted_vs_measured(run))
    return len(run.attempts)


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.report.plots", description="Report figures and tables."
    )
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("prs")
    a.add_argument("--prs", required=True)
    a.add_argument("--groups", default=None, help="TSV: sample, group (header line first)")
    a.add_argument("--out", required=True)
    b = sub.add_parser("resources")
    b.add_argument("--benchmarks", nargs="+", required=True)
    b.add_argument("--attempts", nargs="*", default=[])
    b.add_argument("--out-tsv", required=True)
    b.add_argument("--out-png", required=True)
    c = sub.add_parser("quality")
    c.add_argument("--dr2", nargs="+", required=True)
    c.add_argument("--out", required=True)
    d = sub.add_parser("scheduler")
    d.add_argument("--events", required=True, help="the chromosched plugin's event log (.chromosched/events.jsonl)")
    d.add_argument("--out-schedule", required=True)
    d.add_argument("--out-prediction", required=True)
    args = p.parse_args(argv)
    try:
        if args.command == "scheduler":
            n = scheduler_figures(args.events, args.out_schedule, args.out_prediction)
            print(f"plots: {n} scheduled job attempts -> {args.out_schedule}, {args.out_prediction}", file=sys.stderr)
        elif args.command == "prs":
            prs_distribution(args.prs, args.out, args.groups)
        elif args.command == "resources":
            rows = job_resources(args.benchmarks, args.out_tsv, args.out_png, args.attempts)
            print(f"plots: {len(rows)} jobs -> {args.out_tsv}, {args.out_png}", file=sys.stderr)
        else:
            imputation_quality(args.dr2, args.out)
    except (ChromoschedError, OSError, ValueError, KeyError) as exc:
        print(f"plots: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
