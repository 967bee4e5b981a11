"""Per-chromosome preparation of Beagle's inputs: split the target VCF, harmonise contig names,
check the chromosome is in the panel and the genetic map.

The reference panel is the naming authority (it is the big file we never rewrite): the target's
records and the map's rows for the chromosome are renamed to the panel's contig name, so ``1`` in
an array VCF and ``chr1`` in the panel (or the other way round) just work. Outputs appear
atomically; on any error nothing is left under the output names.

CLI (used by the ``prepare_target`` rule)::

    python -m chromosched_pipeline.imputation.prepare --chrom chr1 --target cohort.vcf.gz --panel panel.chr1.vcf.gz \\
        --map chr1.map --out-vcf results/prepared/chr1/target.vcf.gz --out-map results/prepared/chr1/genetic.map \\
        [--samples keep.txt]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pysam

from chromosched.errors import ChromoschedError

from ..input_checks import map_row_position
from ..step_outcome import outcome_recorded
from ..vcfio import (
    check_bgzf_complete,
    exit_on_sigterm,
    header_contig_lengths,
    indexed_contigs,
    map_contigs,
    match_contig,
    read_header_lines,
    vcf_contigs,
    write_bgzipped_vcf,
    write_text_atomic,
)


@dataclass(frozen=True)
class PreparedChromosome:
    """What :func:`prepare_chromosome` wrote."""

    chrom: str
    panel_contig: str
    target_contig: str
    map_contig: str
    n_records: int
    n_samples: int
    n_map_rows: int


def _preview(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    return (", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")) or "none"


def panel_contig_for(chrom: str, panel: str | Path) -> str:
    """The panel's name for ``chrom``; a one-line error when the panel lacks it."""
    check_bgzf_complete(panel, "reference panel")
    contigs = vcf_contigs(panel)
    found = match_contig(chrom, contigs)
    if found is None:
        raise ChromoschedError(
            f"reference panel {panel}: chromosome {chrom} is not in the panel (it has: {_preview(contigs)})"
        )
    return found


def _target_lines(target: str | Path, contig: str | None) -> Iterator[str]:
    """Record lines of ``contig`` (all records when None), via the index when there is one."""
    if contig is not None and indexed_contigs(target) is not None:
        with pysam.TabixFile(str(target)) as tbx:
            if contig not in tbx.contigs:
                return
            yield from tbx.fetch(contig)
        return
    with gzip.open(target, "rt") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            if contig is None or line.split("\t", 1)[0] == contig:
                yield line.rstrip("\n")


def _scan_contigs(target: str | Path) -> list[str]:
    seen: dict[str, None] = {}
    for line in _target_lines(target, None):
        seen.setdefault(line.split("\t", 1)[0], None)
    return list(seen)


def _read_samples(path: str | Path) -> list[str]:
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines()]
    except OSError as exc:
        raise ChromoschedError(f"sample list {path}: cannot read ({exc.strerror})") from None
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ChromoschedError(f"sample list {path}: no sample IDs")
    return names


def prepare_target(
    chrom: str,
    target: str | Path,
    panel_contig: str,
    contig_length: int | None,
    out_vcf: str | Path,
    samples: Sequence[str] | None = None,
) -> tuple[str, int, int]:
    """Write the target's records for ``chrom``, renamed to ``panel_contig``; returns
    (target contig name, records, samples)."""
    check_bgzf_complete(target, "target VCF")
    header = read_header_lines(target)
    columns = header[-1].split("\t")
    all_samples = columns[9:]
    if not all_samples:
        raise ChromoschedError(f"target VCF {target}: no samples in the header")
    keep = list(range(len(all_samples)))
    if samples is not None:
        index = {s: i for i, s in enumerate(all_samples)}
        missing = [s for s in samples if s not in index]
        if missing:
            raise ChromoschedError(
                f"target VCF {target}: {len(missing)} requested sample(s) not in the file, e.g. {missing[0]}"
            )
        keep = [index[s] for s in samples]
    contigs = indexed_contigs(target)
    if contigs is None:
        contigs = list(header_contig_lengths(header)) or _scan_contigs(target)
    target_contig = match_contig(chrom, contigs)
    if target_contig is None:
        if not contigs:
            raise ChromoschedError(f"target VCF {target}: no variant records (empty VCF)")
        raise ChromoschedError(f"target VCF {target}: no records for chromosome {chrom} (it has: {_preview(contigs)})")

    subset = samples is not None and keep != list(range(len(all_samples)))
    new_header = [header[0]]
    new_header.append(f"##contig=<ID={panel_contig}" + (f",length={contig_length}>" if contig_length else ">"))
    new_header += [line for line in header[1:-1] if not line.startswith("##contig")]
    new_header.append("\t".join(columns[:9] + [all_samples[i] for i in keep]))
    counter = {"n": 0, "where": f"the start of contig {target_contig}"}

    def records() -> Iterable[str]:
        try:
            for line in _target_lines(target, target_contig):
                fields = line.split("\t")
                if len(fields) != len(columns):
                    raise ChromoschedError(
                        f"target VCF {target}: record {fields[0]}:{fields[1] if len(fields) > 1 else '?'} has "
                        f"{len(fields)} columns, the header has {len(columns)}"
                    )
                fields[0] = panel_contig
                if subset:
                    fields = fields[:9] + [fields[9 + i] for i in keep]
                counter["n"] += 1
                counter["where"] = f"record {target_contig}:{fields[1]}"
                yield "\t".join(fields)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            if isinstance(exc, ChromoschedError):
                raise
            raise ChromoschedError(
                f"target VCF {target}: corrupt or truncated data after {counter['where']} ({' '.join(str(exc).split())})"
            ) from None

    n = write_bgzipped_vcf(
        out_vcf, new_header, records(), empty_error=f"target VCF {target}: no records for chromosome {chrom}"
    )
    return target_contig, n, len(keep)


def prepare_map(chrom: str, genetic_map: str | Path, panel_contig: str, out_map: str | Path) -> tuple[str, int]:
    """Write the map's rows for ``chrom`` with the panel's contig name; (map contig, rows)."""
    names = map_contigs(genetic_map)
    map_contig = match_contig(chrom, names)
    if map_contig is None:
        raise ChromoschedError(
            f"genetic map {genetic_map}: chromosome {chrom} is not in the map (it has: {_preview(names)})"
        )
    rows: list[str] = []
    last_bp = -1
    with open(genetic_map) as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.split()
            if not fields or fields[0] != map_contig:
                continue
            _, bp = map_row_position(fields, f"genetic map {genetic_map} line {lineno}")
            if bp < last_bp:
                raise ChromoschedError(
                    f"genetic map {genetic_map} line {lineno}: positions are not sorted ({bp} after {last_bp})"
                )
            last_bp = bp
            rows.append("\t".join([panel_contig, fields[1], fields[2], fields[3]]))
    write_text_atomic(out_map, "".join(r + "\n" for r in rows))
    return map_contig, len(rows)


def prepare_chromosome(
    chrom: str,
    target: str | Path,
    panel: str | Path,
    genetic_map: str | Path,
    out_vcf: str | Path,
    out_map: str | Path,
    samples_file: str | Path | None = None,
) -> PreparedChromosome:
    """Check panel and map contain ``chrom``, then write the harmonised target VCF and map."""
    panel_contig = panel_contig_for(chrom, panel)
    length = header_contig_lengths(read_header_lines(panel)).get(panel_contig)
    if length is None:
        length = header_contig_lengths(read_header_lines(target)).get(match_contig(chrom, [panel_contig]) or "")
    samples = _read_samples(samples_file) if samples_file else None
    # The map first: it is cheap, and a bad map should not leave a target VCF behind.
    map_contig, n_rows = prepare_map(chrom, genetic_map, panel_contig, out_map)
    try:
        target_contig, n, n_samples = prepare_target(chrom, target, panel_contig, length, out_vcf, samples)
    except BaseException:
        Path(out_map).unlink(missing_ok=True)
        raise
    return PreparedChromosome(chrom, panel_contig, target_contig, map_contig, n, n_samples, n_rows)


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.imputation.prepare", description=__doc__.splitlines()[0]
    )
    p.add_argument("--chrom", required=True)
    p.add_argument("--target", required=True, help="target VCF (bgzipped; indexed or not)")
    p.add_argument("--panel", required=True, help="reference panel VCF (bgzipped + indexed)")
    p.add_argument("--map", required=True, help="PLINK-format genetic map")
    p.add_argument("--out-vcf", required=True, type=Path)
    p.add_argument("--out-map", required=True, type=Path)
    p.add_argument("--samples", default=None, help="optional file of sample IDs to keep")
    p.add_argument("--outcome", default=None, help="append this attempt's outcome and peak memory (JSON line) here")
    args = p.parse_args(argv)
    try:
        with outcome_recorded(args.outcome, out=str(args.out_vcf)):
            done = prepare_chromosome(
                args.chrom, args.target, args.panel, args.map, args.out_vcf, args.out_map, args.samples
            )
    except ChromoschedError as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 2
    renamed = (
        ""
        if done.target_contig == done.panel_contig
        else f" (target contig {done.target_contig} renamed to {done.panel_contig})"
    )
    print(
        f"prepare: {done.chrom}: {done.n_records} target records x {done.n_samples} samples, "
        f"{done.n_map_rows} map rows{renamed}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
