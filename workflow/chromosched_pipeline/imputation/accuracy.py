"""Imputation accuracy against a phased truth VCF: dosage r^2 per variant, binned by frequency.

Records are matched by (position, REF, ALT), so split multi-allelic records compare correctly and
contig naming (``chr1``/``1``) does not matter within one chromosome.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from cyvcf2 import VCF

from chromosched.errors import ChromoschedError

from ..vcfio import exit_on_sigterm, write_text_atomic


@dataclass(frozen=True)
class ImputationAccuracy:
    """Squared Pearson correlation between imputed DS and true ALT counts, over variants with
    true minor-allele frequency (in the target samples) at least ``min_maf``."""

    n_variants: int
    mean_r2: float
    median_r2: float
    pooled_r2: float
    min_maf: float


def _truth_counts(path: str | Path, samples: Sequence[str]) -> dict[tuple[int, str, str], np.ndarray]:
    vcf = VCF(str(path), samples=list(samples), gts012=True)
    order = {s: i for i, s in enumerate(vcf.samples)}
    perm = np.array([order[s] for s in samples])
    out = {}
    for rec in vcf:
        if len(rec.ALT) != 1:
            continue
        counts = rec.gt_types.astype(float)  # gts012: 0 hom-ref, 1 het, 2 hom-alt, 3 unknown
        counts[counts == 3] = np.nan
        out[(rec.POS, rec.REF, rec.ALT[0])] = counts[perm]
    vcf.close()
    return out


def dosage_r2(imputed: str | Path, truth: str | Path, min_maf: float = 0.05) -> ImputationAccuracy:
    """Compare an imputed VCF (FORMAT/DS) with the truth at shared biallelic records."""
    imp = VCF(str(imputed))
    truth_samples = VCF(str(truth)).samples
    samples = [s for s in imp.samples if s in set(truth_samples)]
    if not samples:
        raise ChromoschedError(f"accuracy: {imputed} and {truth} share no samples")
    truth_map = _truth_counts(truth, samples)
    imp_idx = np.array([imp.samples.index(s) for s in samples])
    r2s: list[float] = []
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for rec in imp:
        if len(rec.ALT) != 1:
            continue
        key = (rec.POS, rec.REF, rec.ALT[0])
        true = truth_map.get(key)
        if true is None:
            continue
        ds = rec.format("DS")
        if ds is None:
            raise ChromoschedError(f"accuracy: {imputed} has no FORMAT/DS at {rec.CHROM}:{rec.POS}")
        ds = ds[imp_idx, 0].astype(float)
        ok = ~np.isnan(true)
        af = np.nanmean(true) / 2
        if min(af, 1 - af) < min_maf or np.std(true[ok]) == 0 or np.std(ds[ok]) == 0:
            continue
        r2s.append(float(np.corrcoef(ds[ok], true[ok])[0, 1] ** 2))
        xs.append(ds[ok] - ds[ok].mean())
        ys.append(true[ok] - true[ok].mean())
    imp.close()
    if not r2s:
        return ImputationAccuracy(0, float("nan"), float("nan"), float("nan"), min_maf)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    pooled = float((x @ y) ** 2 / ((x @ x) * (y @ y)))
    return ImputationAccuracy(len(r2s), float(np.mean(r2s)), float(np.median(r2s)), pooled, min_maf)


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.imputation.accuracy", description=__doc__.splitlines()[0]
    )
    p.add_argument("--imputed", required=True, type=Path, nargs="+", help="imputed VCF(s) with FORMAT/DS")
    p.add_argument("--truth", required=True, type=Path, nargs="+", help="truth VCF(s), same order as --imputed")
    p.add_argument("--min-maf", type=float, default=0.05, help="only variants with true MAF >= this (default 0.05)")
    p.add_argument(
        "--out", type=Path, default=None, help="write a TSV (one row per file plus 'all') instead of JSON on stdout"
    )
    args = p.parse_args(argv)
    if len(args.imputed) != len(args.truth):
        print("accuracy: error: give one --truth per --imputed", file=sys.stderr)
        return 2
    rows = []
    try:
        for imp, tru in zip(args.imputed, args.truth):
            acc = dosage_r2(imp, tru, args.min_maf)
            rows.append({"imputed": str(imp), **asdict(acc)})
    except (ChromoschedError, OSError) as exc:
        print(f"accuracy: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.out is None:
        print(json.dumps(rows, indent=2))
        return 0
    lines = ["imputed\tn_variants\tmean_r2\tmedian_r2\tpooled_r2\tmin_maf"]
    for r in rows:
        lines.append(
            f"{r['imputed']}\t{r['n_variants']}\t{r['mean_r2']:.4f}\t{r['median_r2']:.4f}\t{r['pooled_r2']:.4f}\t{r['min_maf']}"
        )
    n = sum(r["n_variants"] for r in rows)
    if n:
        mean = sum(r["mean_r2"] * r["n_variants"] for r in rows if r["n_variants"]) / n
        lines.append(f"all\t{n}\t{mean:.4f}\t\t\t{args.min_maf}")
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print(
        f"accuracy: mean dosage r2 {mean if n else float('nan'):.4f} over {n} variants with MAF >= {args.min_maf}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
