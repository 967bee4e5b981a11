"""Checks of the pipeline's input files before any job runs, one function per kind of input.

:func:`chromosched_pipeline.config.load_pipeline_config` calls these when the Snakefile is read
(``snakemake`` and ``chromosched plan`` alike), so a bad input stops the run before the first job
with one line naming the file and the problem, instead of surfacing later as a tool's stack trace
(Beagle dies with ``IllegalArgumentException: 0`` on duplicate sample IDs).

Each check reads only what it needs: VCF headers (not records), the first rows of a map, the
header and first rows of a scoring file. The steps still check what they read in full.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from chromosched.errors import ChromoschedError

from .vcfio import check_bgzf_complete, read_header_lines

#: VCF's fixed columns before the samples (with FORMAT).
VCF_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT")
#: Rows of a map or scoring file read up front (the step that uses the file reads the rest).
ROWS_CHECKED = 1000


def check_file(path: str | None, what: str) -> None:
    """The file exists and is not empty."""
    if not path:
        return
    p = Path(path)
    if not p.is_file():
        hint = " (run `make demo` to generate the demo data)" if "resources/demo/" in str(path) else ""
        raise ChromoschedError(f"{what} {path}: file not found{hint}")
    if p.stat().st_size == 0:
        raise ChromoschedError(f"{what} {path}: file is empty (0 bytes)")


class VcfHeader(NamedTuple):
    samples: list[str]
    lines: list[str]  # the header lines, read once: contigs come from them when there is no index


def check_vcf_header(path: str, what: str, need_samples: bool = True) -> VcfHeader:
    """A complete bgzipped VCF whose ``#CHROM`` line has the fixed columns and unique sample IDs."""
    check_bgzf_complete(path, what)
    try:
        lines = read_header_lines(path)
    except ChromoschedError as err:
        raise ChromoschedError(f"{what} {path}: {str(err).split(': ', 1)[-1]}") from None
    if not lines[0].startswith("##fileformat=VCF"):
        raise ChromoschedError(f"{what} {path}: first line is not ##fileformat=VCFv4.x (not a VCF file?)")
    columns = lines[-1].split("\t")
    fixed = tuple(columns[: len(VCF_FIXED_COLUMNS)])
    if fixed != VCF_FIXED_COLUMNS[: len(fixed)] or len(fixed) < 8:
        raise ChromoschedError(
            f"{what} {path}: #CHROM header line must be tab-separated {' '.join(VCF_FIXED_COLUMNS)} then the sample IDs"
        )
    samples = columns[len(VCF_FIXED_COLUMNS) :]
    if need_samples and not samples:
        raise ChromoschedError(f"{what} {path}: no samples in the header")
    check_sample_ids(samples, f"{what} {path}")
    return VcfHeader(samples, lines)


def check_sample_ids(samples: Sequence[str], where: str) -> None:
    """Sample IDs are non-empty, without whitespace, and unique (Beagle and bcftools need this)."""
    seen: dict[str, int] = {}
    for number, name in enumerate(samples, 1):
        if not name.strip() or name != name.strip() or any(c.isspace() for c in name):
            raise ChromoschedError(f"{where}: sample {number} has an empty ID or one with spaces ({name!r})")
        if name in seen:
            raise ChromoschedError(
                f"{where}: duplicate sample ID {name} (samples {seen[name]} and {number}); sample IDs must be unique"
            )
        seen[name] = number


def check_sample_list(path: str, vcf_samples: Sequence[str], vcf: str) -> list[str]:
    """``target.samples``: one ID a line, unique, each in the target VCF."""
    check_file(path, "target.samples")
    names = [line.strip() for line in Path(path).read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ChromoschedError(f"target.samples {path}: no sample IDs")
    check_sample_ids(names, f"target.samples {path}")
    known = set(vcf_samples)
    missing = [n for n in names if n not in known]
    if missing:
        raise ChromoschedError(
            f"target.samples {path}: {len(missing)} sample(s) not in target.vcf {vcf}, e.g. {missing[0]}"
        )
    return names


def check_genetic_map(path: str, what: str = "reference.map") -> str:
    """A PLINK map (chrom id cM bp, whitespace-separated, numbers in cM and bp); returns the first
    row's chromosome."""
    check_file(path, what)
    first = None
    with open(path) as fh:
        for lineno, line in enumerate(itertools.islice(fh, ROWS_CHECKED), 1):
            fields = line.split()
            if not fields:
                continue
            map_row_position(fields, f"{what} {path} line {lineno}")
            first = first or fields[0]
    if first is None:
        raise ChromoschedError(f"{what} {path}: file is empty")
    return first


def map_row_position(fields: Sequence[str], where: str) -> tuple[float, int]:
    """(cM, bp) of one PLINK map row split on whitespace; one-line error naming ``where`` otherwise."""
    if len(fields) != 4:
        raise ChromoschedError(f"{where}: expected 4 columns (chrom id cM bp), found {len(fields)}")
    try:
        return float(fields[2]), int(fields[3])
    except ValueError:
        raise ChromoschedError(f"{where}: cM and bp must be numbers") from None


def check_scoring_file(path: str, what: str = "prs.scoring_file") -> None:
    """A PGS Catalog scoring file: the columns the PRS step needs and numeric first rows."""
    check_file(path, what)
    from .prs.scores import read_scoring_file

    try:
        read_scoring_file(path, limit=ROWS_CHECKED)
    except ChromoschedError as err:
        raise ChromoschedError(f"{what} {err}") from None


def check_sample_groups(path: str, what: str = "report.sample_groups") -> None:
    """TSV of sample and group (header optional)."""
    check_file(path, what)
    with open(path) as fh:
        for lineno, line in enumerate(itertools.islice(fh, ROWS_CHECKED), 1):
            if line.strip() and len(line.rstrip("\n").split("\t")) < 2:
                raise ChromoschedError(
                    f"{what} {path} line {lineno}: expected two tab-separated columns (sample, group)"
                )
