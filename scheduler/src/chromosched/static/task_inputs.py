"""Memory and duration inputs for the static scheduler.

Sources:

* a built-in genome (``GRCh37``, ``GRCh38``): memory = duration = autosome length in Mbp;
* custom lengths from a FASTA index (``.fai``), a VCF header's ``##contig=<ID=..,length=..>`` lines
  (plain or bgzipped VCF), or a two-column TSV ``name<TAB>length`` (an optional header line is
  skipped); again memory = duration = length in Mbp;
* measured values from earlier Snakemake ``benchmark:`` TSVs, one file per chromosome (the
  chromosome is read from the file name, e.g. ``benchmarks/impute/chr7.tsv``): memory = max_rss
  (MB, the largest over repeats), duration = s (seconds, the mean over repeats).

Length files usually list more than the 22 autosomes (chrX, alt contigs, decoys): by default the
autosomes chr1..chr22 are taken when any are present, otherwise every contig; ``chromosomes``
selects an explicit list instead. Every problem is a ``ChromoschedError`` naming file and line.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ChromoschedError
from ..genomes import AUTOSOMES, canonical_chrom
from .task_model import TaskSet, genome_taskset, lengths_taskset

_CONTIG = re.compile(r"^##contig=<(.*)>\s*$")
_BENCH_COLUMNS = ("s", "max_rss")
# chr7 / chr_7 / chrX in a file name; else a bare number token such as "7.tsv" or "impute_7".
_CHR_IN_NAME = re.compile(r"(?i)(?:^|[^a-z0-9])chr_?([0-9]{1,2}|x|y|mt?)(?![0-9a-z])")
_NUM_IN_NAME = re.compile(r"(?:^|[^A-Za-z0-9])([0-9]{1,2}|X|Y)(?![0-9A-Za-z])")


def contig_name(name: str) -> str:
    """``chr``-prefixed name for chromosome-like contigs (``7``, ``chr7``, ``X``, ``MT``); others as given."""
    name = str(name).strip()
    if re.fullmatch(r"(?i)(chr)?([0-9]+|x|y|m|mt)", name):
        return canonical_chrom(name[3:] if name.lower().startswith("chr") else name.upper())
    return name


def _open_text(path: Path) -> Iterator[str]:
    """Lines of a plain or gzip/bgzip-compressed text file."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as err:
        raise ChromoschedError(f"{path}: cannot read ({err.strerror or err})") from None
    opener = gzip.open if magic == b"\x1f\x8b" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            yield from fh
    except (OSError, EOFError) as err:
        raise ChromoschedError(f"{path}: cannot read ({err})") from None


def _parse_length(path: Path, lineno: int, name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ChromoschedError(f"{path} line {lineno}: length of {name} is not an integer: {text!r}") from None
    if value <= 0:
        raise ChromoschedError(f"{path} line {lineno}: length of {name} must be positive, got {value}")
    return value


def _add(lengths: dict[str, int], lines_of: dict[str, int], path: Path, lineno: int, name: str, value: int) -> None:
    key = contig_name(name)
    if key in lengths:
        raise ChromoschedError(f"{path} line {lineno}: contig {name} appears twice (first on line {lines_of[key]})")
    lengths[key] = value
    lines_of[key] = lineno


def read_vcf_contigs(path: Path) -> dict[str, int]:
    """Contig lengths from a VCF header (``##contig=<ID=...,length=...>``), plain or bgzipped."""
    lengths: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    for lineno, line in enumerate(_open_text(path), 1):
        if line.startswith("#CHROM") or not line.startswith("#"):
            break
        match = _CONTIG.match(line)
        if not match:
            continue
        fields = dict(part.split("=", 1) for part in match.group(1).split(",") if "=" in part)
        if "ID" not in fields:
            raise ChromoschedError(f"{path} line {lineno}: ##contig line without ID")
        if "length" not in fields:
            raise ChromoschedError(f"{path} line {lineno}: ##contig {fields['ID']} has no length")
        _add(lengths, lines_of, path, lineno, fields["ID"], _parse_length(path, lineno, fields["ID"], fields["length"]))
    if not lengths:
        raise ChromoschedError(f"{path}: VCF header has no ##contig lines with lengths")
    return lengths


def read_table_lengths(path: Path) -> dict[str, int]:
    """Lengths from a ``.fai`` (name, length, offset, ...) or a two-column TSV (name, length)."""
    lengths: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    first_line = True
    for lineno, raw in enumerate(_open_text(path), 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 2:
            raise ChromoschedError(f"{path} line {lineno}: expected a name and a length, got {line!r}")
        name, text = fields[0].strip(), fields[1].strip()
        if first_line and not text.lstrip("+-").isdigit():
            first_line = False
            continue  # a header line such as "chrom<TAB>length"
        first_line = False
        _add(lengths, lines_of, path, lineno, name, _parse_length(path, lineno, name, text))
    if not lengths:
        raise ChromoschedError(f"{path}: no contig lengths found")
    return lengths


def _is_vcf(path: Path) -> bool:
    for line in _open_text(path):
        return line.startswith("##fileformat=VCF")
    return False


def read_lengths(path: str | Path) -> dict[str, int]:
    """Contig lengths (bp) from a .fai, a VCF/VCF.gz header or a two-column TSV (detected by content)."""
    path = Path(path)
    if not path.is_file():
        raise ChromoschedError(f"{path}: no such file")
    return read_vcf_contigs(path) if _is_vcf(path) else read_table_lengths(path)


def select_chromosomes(
    values: dict[str, float], source: str, chromosomes: Iterable[str] | None = None
) -> dict[str, float]:
    """Keep the requested chromosomes (default: chr1..chr22 when present, else everything), in order."""
    if chromosomes is not None:
        wanted = [contig_name(c) for c in chromosomes]
        missing = [c for c in wanted if c not in values]
        if missing:
            raise ChromoschedError(f"{source}: no entry for {', '.join(missing)}")
        return {c: values[c] for c in wanted}
    autosomes = [c for c in AUTOSOMES if c in values]
    if autosomes:
        return {c: values[c] for c in autosomes}
    return dict(values)


def chromosome_from_filename(path: Path) -> str | None:
    """The chromosome a benchmark file belongs to, from its name (``chr7.tsv``, ``impute_chr7.tsv``)."""
    stem = path.name
    for suffix in (".tsv", ".txt", ".benchmark"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    match = _CHR_IN_NAME.search(stem) or _NUM_IN_NAME.search(stem)
    if not match:
        return None
    return contig_name(match.group(1))


def read_benchmark(path: Path) -> tuple[float, float]:
    """(max_rss MB, runtime s) of one Snakemake benchmark TSV: the largest max_rss, the mean s."""
    rows: list[tuple[float, float]] = []
    header: list[str] | None = None
    for lineno, raw in enumerate(_open_text(path), 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if header is None:
            header = fields
            missing = [c for c in _BENCH_COLUMNS if c not in header]
            if missing:
                raise ChromoschedError(
                    f"{path} line {lineno}: not a Snakemake benchmark file (missing column {', '.join(missing)})"
                )
            continue
        if len(fields) != len(header):
            raise ChromoschedError(f"{path} line {lineno}: expected {len(header)} columns, got {len(fields)}")
        values = []
        for col in _BENCH_COLUMNS:
            text = fields[header.index(col)]
            if text.strip() == "NA":
                raise ChromoschedError(
                    f"{path} line {lineno}: {col} is NA (the job ended before Snakemake "
                    "sampled it); such a run cannot give a measured memory"
                )
            try:
                value = float(text)
            except ValueError:
                raise ChromoschedError(f"{path} line {lineno}: {col} is not a number: {text!r}") from None
            if not value > 0:
                raise ChromoschedError(f"{path} line {lineno}: {col} must be positive, got {text}")
            values.append(value)
        rows.append((values[0], values[1]))
    if not rows:
        raise ChromoschedError(f"{path}: benchmark file has no measurement rows")
    runtime = sum(r[0] for r in rows) / len(rows)
    max_rss = max(r[1] for r in rows)
    return max_rss, runtime


def benchmark_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand directories (all ``*.tsv`` below them) and check that files exist."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.tsv") if p.is_file())
            if not found:
                raise ChromoschedError(f"{path}: directory has no benchmark .tsv files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ChromoschedError(f"{path}: no such file or directory")
    return files


def read_benchmarks(inputs: Iterable[str | Path]) -> dict[str, tuple[float, float]]:
    """Per chromosome (max_rss MB, runtime s) from Snakemake benchmark TSVs (files or directories)."""
    measured: dict[str, tuple[float, float]] = {}
    origin: dict[str, Path] = {}
    for path in benchmark_files(inputs):
        chrom = chromosome_from_filename(path)
        if chrom is None:
            raise ChromoschedError(
                f"{path}: cannot tell the chromosome from the file name (expected e.g. chr7.tsv or impute_chr7.tsv)"
            )
        if chrom in measured:
            raise ChromoschedError(
                f"{path}: second benchmark for {chrom} (first: {origin[chrom]}); give the benchmarks of one rule"
            )
        measured[chrom] = read_benchmark(path)
        origin[chrom] = path
    return measured


def load_tasks(
    genome: str | None = None,
    lengths: str | Path | None = None,
    benchmarks: Iterable[str | Path] | None = None,
    chromosomes: Iterable[str] | None = None,
) -> TaskSet:
    """Build the task set from the given sources (see the module docstring).

    With ``benchmarks``, memory and duration are the measured values; a genome or length file given
    as well fixes which chromosomes are expected (each must have a benchmark).
    """
    if genome and lengths:
        raise ChromoschedError("give either --genome or --lengths, not both")
    chosen = list(chromosomes) if chromosomes is not None else None
    if benchmarks:
        measured = read_benchmarks(benchmarks)
        source = ", ".join(str(b) for b in benchmarks)
        if genome or lengths:
            expected = list(load_tasks(genome=genome, lengths=lengths, chromosomes=chosen).names)
            missing = [c for c in expected if c not in measured]
            if missing:
                raise ChromoschedError(f"benchmarks {source}: no benchmark for {', '.join(missing)}")
            chosen = expected
        picked = select_chromosomes(measured, f"benchmarks {source}", chosen)
        return TaskSet(
            tuple(picked),
            tuple(v[0] for v in picked.values()),
            tuple(v[1] for v in picked.values()),
            "MB",
            "s",
            source=f"benchmarks {source}",
        )
    if lengths:
        values = read_lengths(lengths)
        picked = select_chromosomes(values, str(lengths), chosen)
        return lengths_taskset(picked, source=str(lengths))
    if genome:
        tasks = genome_taskset(genome)
        if chosen is None:
            return tasks
        keep = [contig_name(c) for c in chosen]
        idx = tasks.order_indices(keep)
        return TaskSet(
            tuple(keep),
            tuple(tasks.memory[i] for i in idx),
            tuple(tasks.duration[i] for i in idx),
            tasks.memory_unit,
            tasks.duration_unit,
            source=tasks.source,
        )
    raise ChromoschedError("no task input: give --genome, --lengths or --benchmarks")
