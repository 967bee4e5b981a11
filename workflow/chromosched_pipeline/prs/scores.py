"""Polygenic risk scores from imputed dosages: per-chromosome partial sums, then one table.

Scoring files are in PGS Catalog format (``#`` comment header, then tab-separated columns
``chr_name chr_position effect_allele other_allele effect_weight``; ``hm_chr``/``hm_pos`` are
used when ``chr_name``/``chr_position`` are absent; ``other_allele`` is optional).

Allele matching, per scoring row, against the imputed records at its position:

* direct: the effect allele is an ALT (dosage = DS of that ALT) or the REF (dosage = 2 - the
  record's total ALT DS), with the other allele (when given) being the record's other allele.
  Split multi-allelic records (same position, one ALT each) are told apart by the other allele;
  without one, a REF effect allele takes 2 - the ALT dosage summed over all records there.
* strand flip: if nothing matched directly, complemented SNP alleles are tried, except for A/T and
  C/G pairs, whose flip cannot be told from a swap (such rows only match directly).
* otherwise the row is missing: ``absent`` (no record at the position) or ``allele_mismatch``.

A missing per-sample dosage is replaced by the variant's mean dosage (plink2's default); Beagle's
output has none. The result equals ``plink2 --score ... cols=+scoresums`` (SCORE1_SUM) on the
same dosages.

CLI::

    python -m chromosched_pipeline.prs.scores score --vcf imputed.chr1.vcf.gz --chrom chr1 --scoring-file scores.txt \\
        --out results/prs/partial/chr1.tsv --matches results/prs/partial/chr1.matches.tsv
    python -m chromosched_pipeline.prs.scores combine --partial results/prs/partial/*.tsv --scoring-file scores.txt \\
        --chromosomes chr1 chr2 --out results/prs/prs.tsv --summary results/prs/match_summary.tsv [--min-match-rate 0.75]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cyvcf2 import VCF

from chromosched.errors import ChromoschedError
from chromosched.genomes import canonical_chrom

from ..step_outcome import outcome_recorded
from ..vcfio import check_bgzf_complete, exit_on_sigterm, write_text_atomic

COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
STATUSES = ("matched", "flipped", "absent", "allele_mismatch")


@dataclass(frozen=True)
class ScoringVariant:
    """One row of a scoring file."""

    chrom: str  # canonical chrN
    chr_name: str  # as written in the file
    pos: int
    effect: str
    other: str | None
    weight: float
    line: int


def _open_text(path: str | Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def read_scoring_file(path: str | Path, limit: int | None = None) -> list[ScoringVariant]:
    """Parse a PGS Catalog scoring file; one-line errors name the line and the problem.

    ``limit``: stop after that many variant rows (the start-up check reads only the first rows)."""
    rows: list[ScoringVariant] = []
    columns: list[str] | None = None
    try:
        fh = _open_text(path)
    except OSError as exc:
        raise ChromoschedError(f"scoring file {path}: cannot read ({exc.strerror})") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n\r").split("\t")
            if columns is None:
                columns = [c.strip() for c in fields]
                chrom_col = "chr_name" if "chr_name" in columns else "hm_chr" if "hm_chr" in columns else None
                pos_col = "chr_position" if "chr_position" in columns else "hm_pos" if "hm_pos" in columns else None
                missing = [
                    name for name, col in (("chr_name", chrom_col), ("chr_position", pos_col)) if col is None
                ] + [c for c in ("effect_allele", "effect_weight") if c not in columns]
                if missing:
                    raise ChromoschedError(
                        f"scoring file {path} line {lineno}: missing column(s) {', '.join(missing)} "
                        "(need chr_name, chr_position, effect_allele, effect_weight; rsID-only files are not supported)"
                    )
                ix = {c: columns.index(c) for c in columns}
                i_chr, i_pos, i_eff, i_w = ix[chrom_col], ix[pos_col], ix["effect_allele"], ix["effect_weight"]
                i_oth = ix.get("other_allele")
                continue
            if len(fields) < len(columns):
                raise ChromoschedError(
                    f"scoring file {path} line {lineno}: {len(fields)} columns, header has {len(columns)}"
                )
            try:
                pos = int(fields[i_pos])
                weight = float(fields[i_w])
            except ValueError:
                raise ChromoschedError(
                    f"scoring file {path} line {lineno}: chr_position '{fields[i_pos]}' or effect_weight "
                    f"'{fields[i_w]}' is not a number"
                ) from None
            effect = fields[i_eff].strip().upper()
            other = fields[i_oth].strip().upper() if i_oth is not None else ""
            if not effect:
                raise ChromoschedError(f"scoring file {path} line {lineno}: empty effect_allele")
            name = fields[i_chr].strip()
            rows.append(ScoringVariant(canonical_chrom(name), name, pos, effect, other or None, weight, lineno))
            if limit is not None and len(rows) >= limit:
                break
    if columns is None:
        raise ChromoschedError(f"scoring file {path}: no header line with column names")
    if not rows:
        raise ChromoschedError(f"scoring file {path}: no variants")
    return rows


@dataclass
class VariantMatch:
    """How one scoring row was found in the imputed data (see the module docstring)."""

    variant: ScoringVariant
    status: str
    vcf_id: str = "."
    vcf_ref: str = "."
    vcf_alt: str = "."
    effect_is_ref: bool = False


@dataclass
class _Record:
    vid: str
    ref: str
    alts: tuple[str, ...]
    ds: np.ndarray  # (samples, alts)


def _find(effect: str, other: str | None, records: Sequence[_Record]) -> tuple[np.ndarray, _Record, bool] | None:
    """Dosage of ``effect`` from the records at one position, or None when the alleles do not fit."""
    for rec in records:  # effect allele is an ALT
        if effect in rec.alts and (other is None or other == rec.ref):
            return rec.ds[:, rec.alts.index(effect)], rec, False
    ref_hits = [rec for rec in records if rec.ref == effect and (other is None or other in rec.alts)]
    if not ref_hits:
        return None
    if other is not None:
        rec = ref_hits[0]
        return 2.0 - rec.ds.sum(axis=1), rec, True
    # No other allele: REF dosage is 2 minus every ALT dosage at this position (all split records).
    return 2.0 - sum(r.ds.sum(axis=1) for r in ref_hits), ref_hits[0], True


def _flippable(effect: str, other: str | None) -> bool:
    if other is None or len(effect) != 1 or len(other) != 1:
        return False
    if effect not in COMPLEMENT or other not in COMPLEMENT:
        return False
    return COMPLEMENT[effect] != other  # A/T and C/G pairs are strand-ambiguous


@dataclass
class PartialScore:
    """One chromosome's contribution: per-sample sums and per-row matches."""

    chrom: str
    samples: list[str]
    sums: np.ndarray
    matches: list[VariantMatch] = field(default_factory=list)

    @property
    def n_variants(self) -> int:
        return len(self.matches)

    @property
    def n_matched(self) -> int:
        return sum(m.status in ("matched", "flipped") for m in self.matches)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for m in self.matches:
            out[m.status] += 1
        out["effect_is_ref"] = sum(m.effect_is_ref for m in self.matches)
        return out


def partial_score(imputed_vcf: str | Path, chrom: str, variants: Sequence[ScoringVariant]) -> PartialScore:
    """Score ``chrom`` from FORMAT/DS of ``imputed_vcf`` with the scoring rows of that chromosome."""
    check_bgzf_complete(imputed_vcf, "imputed VCF")
    want = canonical_chrom(chrom)
    rows = [v for v in variants if v.chrom == want]
    positions = {v.pos for v in rows}
    by_pos: dict[int, list[_Record]] = defaultdict(list)
    vcf = VCF(str(imputed_vcf), lazy=True, threads=1)
    samples = list(vcf.samples)
    if not samples:
        raise ChromoschedError(f"imputed VCF {imputed_vcf}: no samples")
    try:
        for rec in vcf:
            if rec.POS not in positions or canonical_chrom(rec.CHROM) != want:
                continue
            ds = rec.format("DS")
            if ds is None:
                raise ChromoschedError(
                    f"imputed VCF {imputed_vcf}: no FORMAT/DS at {rec.CHROM}:{rec.POS} (not imputed output?)"
                )
            ds = np.array(ds, dtype=float).reshape(len(samples), -1)
            ds[(ds < -1e30) | (ds > 1e30)] = np.nan  # cyvcf2's missing sentinel for floats
            by_pos[rec.POS].append(_Record(rec.ID or ".", rec.REF.upper(), tuple(a.upper() for a in rec.ALT), ds))
    finally:
        vcf.close()
    sums = np.zeros(len(samples))
    matches: list[VariantMatch] = []
    for v in rows:
        records = by_pos.get(v.pos, [])
        if not records:
            matches.append(VariantMatch(v, "absent"))
            continue
        found = _find(v.effect, v.other, records)
        status = "matched"
        if found is None and _flippable(v.effect, v.other):
            found = _find(COMPLEMENT[v.effect], COMPLEMENT[v.other], records)
            status = "flipped"
        if found is None:
            matches.append(VariantMatch(v, "allele_mismatch"))
            continue
        dosage, rec, effect_is_ref = found
        if np.isnan(dosage).any():
            mean = np.nanmean(dosage) if np.isfinite(dosage).any() else 0.0
            dosage = np.where(np.isnan(dosage), mean, dosage)
        sums += v.weight * dosage
        matches.append(VariantMatch(v, status, rec.vid, rec.ref, ",".join(rec.alts), effect_is_ref))
    return PartialScore(want, samples, sums, matches)


PARTIAL_COLUMNS = ("sample", "chrom", "score_sum", "n_matched", "n_variants")
MATCH_COLUMNS = (
    "chr_name",
    "chr_position",
    "effect_allele",
    "other_allele",
    "effect_weight",
    "status",
    "vcf_id",
    "vcf_ref",
    "vcf_alt",
    "effect_is_ref",
)


def write_partial(score: PartialScore, out: str | Path, matches_out: str | Path | None = None) -> None:
    """Write the per-sample partial sums (and optionally the per-row match table), atomically."""
    lines = ["\t".join(PARTIAL_COLUMNS)]
    lines += [
        f"{s}\t{score.chrom}\t{v:.10g}\t{score.n_matched}\t{score.n_variants}"
        for s, v in zip(score.samples, score.sums)
    ]
    if matches_out is not None:
        mlines = ["\t".join(MATCH_COLUMNS)]
        for m in score.matches:
            v = m.variant
            mlines.append(
                "\t".join(
                    [
                        v.chr_name,
                        str(v.pos),
                        v.effect,
                        v.other or "",
                        f"{v.weight:.10g}",
                        m.status,
                        m.vcf_id,
                        m.vcf_ref,
                        m.vcf_alt,
                        "1" if m.effect_is_ref else "0",
                    ]
                )
            )
        write_text_atomic(matches_out, "\n".join(mlines) + "\n")
    write_text_atomic(out, "\n".join(lines) + "\n")


def _read_tsv(path: str | Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except OSError as exc:
        raise ChromoschedError(f"{path}: cannot read ({exc.strerror})") from None


@dataclass
class PrsTable:
    samples: list[str]
    prs: np.ndarray
    n_matched: int
    n_variants: int
    per_chrom: dict[str, dict[str, int]]
    n_other_chromosomes: int

    @property
    def match_rate(self) -> float:
        return self.n_matched / self.n_variants if self.n_variants else float("nan")


def combine_partials(
    partials: Sequence[str | Path],
    matches: Sequence[str | Path] = (),
    scoring_file: str | Path | None = None,
) -> PrsTable:
    """Sum partial scores per sample; all partials must cover the same samples."""
    if not partials:
        raise ChromoschedError("prs combine: no partial score files given")
    samples: list[str] | None = None
    total: np.ndarray | None = None
    n_matched = n_variants = 0
    per_chrom: dict[str, dict[str, int]] = {}
    chroms: list[str] = []
    for path in partials:
        rows = _read_tsv(path)
        if not rows or set(PARTIAL_COLUMNS) - set(rows[0]):
            raise ChromoschedError(f"partial score {path}: empty or missing columns ({', '.join(PARTIAL_COLUMNS)})")
        names = [r["sample"] for r in rows]
        if samples is None:
            samples, total = names, np.zeros(len(names))
        elif names != samples:
            raise ChromoschedError(
                f"partial score {path}: samples differ from {partials[0]} (each chromosome must have the same samples)"
            )
        total += np.array([float(r["score_sum"]) for r in rows])
        chrom = rows[0]["chrom"]
        if chrom in chroms:
            raise ChromoschedError(f"partial score {path}: chromosome {chrom} given twice")
        chroms.append(chrom)
        n_matched += int(rows[0]["n_matched"])
        n_variants += int(rows[0]["n_variants"])
        per_chrom[chrom] = {"n_variants": int(rows[0]["n_variants"]), "n_matched": int(rows[0]["n_matched"])}
    for path in matches:
        rows = _read_tsv(path)
        chrom = canonical_chrom(rows[0]["chr_name"]) if rows else None
        if chrom in per_chrom:
            for status in STATUSES:
                per_chrom[chrom][status] = sum(r["status"] == status for r in rows)
            per_chrom[chrom]["effect_is_ref"] = sum(r["effect_is_ref"] == "1" for r in rows)
    other = 0
    if scoring_file is not None:
        other = sum(v.chrom not in per_chrom for v in read_scoring_file(scoring_file))
    assert samples is not None and total is not None
    return PrsTable(samples, total, n_matched, n_variants, per_chrom, other)


def write_prs_table(table: PrsTable, out: str | Path, summary: str | Path | None = None) -> None:
    rate = table.match_rate
    lines = ["sample\tprs\tn_variants_matched\tn_variants\tmatch_rate"]
    lines += [
        f"{s}\t{v:.10g}\t{table.n_matched}\t{table.n_variants}\t{rate:.6f}" for s, v in zip(table.samples, table.prs)
    ]
    if summary is not None:
        cols = ["n_variants", "n_matched", *STATUSES, "effect_is_ref"]
        slines = ["chrom\t" + "\t".join(cols) + "\tmatch_rate"]
        for chrom, c in table.per_chrom.items():
            r = c["n_matched"] / c["n_variants"] if c["n_variants"] else float("nan")
            slines.append(chrom + "\t" + "\t".join(str(c.get(k, "")) for k in cols) + f"\t{r:.6f}")
        tot = {k: sum(int(c.get(k, 0) or 0) for c in table.per_chrom.values()) for k in cols}
        slines.append("all\t" + "\t".join(str(tot[k]) for k in cols) + f"\t{rate:.6f}")
        if table.n_other_chromosomes:
            # Rows on chromosomes this run did not process: not part of the match rate.
            slines.append(
                "not_processed\t" + str(table.n_other_chromosomes) + "\t" + "\t".join("" for _ in cols[1:]) + "\t"
            )
        write_text_atomic(summary, "\n".join(slines) + "\n")
    write_text_atomic(out, "\n".join(lines) + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.prs.scores", description="Polygenic risk scores from imputed dosages."
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="partial score of one chromosome")
    s.add_argument("--vcf", required=True, help="imputed VCF with FORMAT/DS")
    s.add_argument("--chrom", required=True)
    s.add_argument("--scoring-file", required=True)
    s.add_argument("--out", required=True, type=Path, help="per-sample partial sums (TSV)")
    s.add_argument("--matches", default=None, type=Path, help="per-row match table (TSV)")
    c = sub.add_parser("combine", help="sum partial scores into one PRS table")
    c.add_argument("--partial", required=True, nargs="+", help="partial score TSVs")
    c.add_argument("--matches", nargs="*", default=[], help="match tables (for the per-chromosome summary)")
    c.add_argument("--scoring-file", default=None, help="to count scoring rows on chromosomes not processed")
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--summary", default=None, type=Path, help="per-chromosome match summary (TSV)")
    c.add_argument("--min-match-rate", type=float, default=0.0, help="fail below this match rate (default 0)")
    for sp in (s, c):
        sp.add_argument(
            "--outcome", default=None, help="append this attempt's outcome and peak memory (JSON line) here"
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    args = build_parser().parse_args(argv)
    try:
        with outcome_recorded(args.outcome, out=str(args.out)):
            if args.command == "score":
                score = partial_score(args.vcf, args.chrom, read_scoring_file(args.scoring_file))
                write_partial(score, args.out, args.matches)
                c = score.counts()
                print(
                    f"prs: {score.chrom}: {score.n_matched}/{score.n_variants} scoring variants matched "
                    f"({c['flipped']} strand-flipped, {c['effect_is_ref']} with REF as effect allele, "
                    f"{c['absent']} absent, {c['allele_mismatch']} allele mismatch) for {len(score.samples)} samples",
                    file=sys.stderr,
                )
            else:
                table = combine_partials(args.partial, args.matches, args.scoring_file)
                if not math.isnan(table.match_rate) and table.match_rate < args.min_match_rate:
                    raise ChromoschedError(
                        f"prs: only {table.n_matched} of {table.n_variants} scoring variants ({table.match_rate:.1%}) were found "
                        f"in the imputed data, below prs.min_match_rate={args.min_match_rate} (see the *.matches.tsv files)"
                    )
                write_prs_table(table, args.out, args.summary)
                print(
                    f"prs: {len(table.samples)} samples, {table.n_matched}/{table.n_variants} variants matched "
                    f"({table.match_rate:.1%}) -> {args.out}",
                    file=sys.stderr,
                )
    except ChromoschedError as exc:
        print(f"prs: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
