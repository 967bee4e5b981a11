"""Ordering tables: the precomputed best order of the chromosomes for each number of workers K.

File format (TSV, UTF-8)::

    # chromosched ordering table
    # command: chromosched tables --genome GRCh38 --workers 1-22 --out config/orderings/GRCh38.tsv
    # source: GRCh38
    # model: list
    # memory_unit: Mbp
    # duration_unit: Mbp
    K	order	peak	sequential_peak	lower_bound	method	seed
    1	chr1,chr2,...	248.956422	248.956422	248.956422	anneal	0

``order`` lists the chromosomes in processing order (the first K start at once, each later one on
the first worker to become free); ``peak`` is that order's exact peak under the table's model,
``sequential_peak`` the peak of chr1..chrN, ``lower_bound`` a proven lower bound on any order's
peak. Comment lines ``# key: value`` carry the metadata.

Loading validates everything and fails with a one-line ``ChromoschedError`` naming the file and
line: every row lists the same chromosomes, each exactly once; K is a positive integer at most the
number of chromosomes and appears once; numeric fields parse and satisfy
lower_bound <= peak <= sequential_peak (a small tolerance for rounding).

``load_builtin_table("GRCh38")`` reads the copy shipped inside the package, so the Snakemake plugin
finds a table by genome name at run time without the repository.

Optional header lines written by ``chromosched tables`` (readers may ignore them): ``search`` (the
method, its settings, budget and seed), ``bound`` (how ``lower_bound`` was proven),
``proven_optimal_K`` (the K whose peak equals the bound) and ``largest_gap_to_bound``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..atomic_files import write_text_atomic
from ..errors import ChromoschedError
from ..genomes import ALIASES

COLUMNS = ("K", "order", "peak", "sequential_peak", "lower_bound", "method", "seed")
_TOLERANCE = 1e-6  # values are written with 6 decimals


@dataclass(frozen=True)
class OrderingRow:
    """One K: the order (chromosome names), its peak, the sequential peak and a lower bound."""

    workers: int
    order: tuple[str, ...]
    peak: float
    sequential_peak: float
    lower_bound: float
    method: str
    seed: int

    @property
    def gap(self) -> float:
        """Relative distance of the peak above the lower bound (0 = proven optimal)."""
        return self.peak / self.lower_bound - 1.0 if self.lower_bound > 0 else 0.0


@dataclass
class OrderingTable:
    """Rows for several K plus metadata (source, model, units, the command that wrote it)."""

    rows: list[OrderingRow]
    metadata: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def __post_init__(self) -> None:
        self.rows = sorted(self.rows, key=lambda r: r.workers)

    @property
    def chromosomes(self) -> tuple[str, ...]:
        """The table's chromosomes in the first row's order."""
        return self.rows[0].order if self.rows else ()

    @property
    def model(self) -> str:
        return self.metadata.get("model", "list")

    def workers(self) -> list[int]:
        return [r.workers for r in self.rows]

    def row(self, workers: int) -> OrderingRow:
        """The row for ``workers``. With more workers than chromosomes every order runs everything
        at once, so the row for K = number of chromosomes answers; other missing K are an error."""
        if workers < 1:
            raise ChromoschedError(f"workers must be at least 1, got {workers}")
        for r in self.rows:
            if r.workers == workers:
                return r
        n = len(self.chromosomes)
        if workers > n:
            for r in self.rows:
                if r.workers == n:
                    return r
        where = f" {self.path}" if self.path else ""
        raise ChromoschedError(
            f"ordering table{where} has no row for K={workers} (rows: {ranges_text(self.workers())})"
        )

    def order_for(self, workers: int, chromosomes: Iterable[str] | None = None) -> list[str]:
        """The chromosome order for ``workers``; with ``chromosomes``, the table's order restricted to
        them (chromosomes not in the table go last, in the given order). The peak guarantee
        (``peak_for``) holds only for the full set."""
        order = list(self.row(workers).order)
        if chromosomes is None:
            return order
        wanted = list(chromosomes)
        wanted_set = set(wanted)
        in_table = [c for c in order if c in wanted_set]
        known = set(order)
        return in_table + [c for c in wanted if c not in known]

    def peak_for(self, workers: int) -> float:
        """The peak the table's order reaches for ``workers`` (its model and memory unit)."""
        return self.row(workers).peak

    # --- files -------------------------------------------------------------------------------
    def to_text(self) -> str:
        lines = ["# chromosched ordering table"]
        for key, value in self.metadata.items():
            lines.append(f"# {key}: {' '.join(str(value).split())}")
        lines.append("\t".join(COLUMNS))
        for r in self.rows:
            lines.append(
                "\t".join(
                    [
                        str(r.workers),
                        ",".join(r.order),
                        f"{r.peak:.6f}",
                        f"{r.sequential_peak:.6f}",
                        f"{r.lower_bound:.6f}",
                        r.method,
                        str(r.seed),
                    ]
                )
            )
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> None:
        """Write atomically (temporary file in the same directory, then rename)."""
        path = Path(path)
        _validate_rows(self.rows, str(path), {})
        write_text_atomic(path, self.to_text())

    @classmethod
    def load(cls, path: str | Path) -> OrderingTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ChromoschedError(f"{path}: cannot read ordering table ({err.strerror or err})") from None
        except UnicodeDecodeError:
            raise ChromoschedError(f"{path}: ordering table is not UTF-8 text") from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, name: str = "<table>") -> OrderingTable:
        metadata: dict[str, str] = {}
        rows: list[OrderingRow] = []
        line_of: dict[int, int] = {}
        header_seen = False
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            if line.startswith("#"):
                body = line[1:].strip()
                if ":" in body:
                    key, value = body.split(":", 1)
                    metadata[key.strip()] = value.strip()
                continue
            fields = line.split("\t")
            if not header_seen:
                if tuple(f.strip() for f in fields) != COLUMNS:
                    raise ChromoschedError(
                        f"{name} line {lineno}: expected the header {' '.join(COLUMNS)}, got {line!r}"
                    )
                header_seen = True
                continue
            if len(fields) != len(COLUMNS):
                raise ChromoschedError(
                    f"{name} line {lineno}: expected {len(COLUMNS)} tab-separated fields, "
                    f"got {len(fields)} (truncated or corrupt line)"
                )
            row = _parse_row(fields, name, lineno)
            line_of[id(row)] = lineno
            rows.append(row)
        if not header_seen:
            raise ChromoschedError(f"{name}: not an ordering table (no header line {' '.join(COLUMNS)})")
        if not rows:
            raise ChromoschedError(f"{name}: ordering table has no rows")
        _validate_rows(rows, name, line_of)
        return cls(rows, metadata, name)


def _parse_row(fields: Sequence[str], name: str, lineno: int) -> OrderingRow:
    k_text, order_text, peak_text, seq_text, lb_text, method, seed_text = (f.strip() for f in fields)
    try:
        workers = int(k_text)
    except ValueError:
        raise ChromoschedError(f"{name} line {lineno}: K is not an integer: {k_text!r}") from None
    if workers < 1:
        raise ChromoschedError(f"{name} line {lineno}: K must be at least 1, got {workers}")
    order = tuple(c.strip() for c in order_text.split(","))
    if not order_text or any(not c for c in order):
        raise ChromoschedError(f"{name} line {lineno}: order has an empty chromosome name")
    numbers = []
    for label, text in (("peak", peak_text), ("sequential_peak", seq_text), ("lower_bound", lb_text)):
        try:
            value = float(text)
        except ValueError:
            raise ChromoschedError(f"{name} line {lineno}: {label} is not a number: {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ChromoschedError(f"{name} line {lineno}: {label} must be a finite non-negative number, got {text!r}")
        numbers.append(value)
    try:
        seed = int(seed_text)
    except ValueError:
        raise ChromoschedError(f"{name} line {lineno}: seed is not an integer: {seed_text!r}") from None
    if not method:
        raise ChromoschedError(f"{name} line {lineno}: method is empty")
    return OrderingRow(workers, order, numbers[0], numbers[1], numbers[2], method, seed)


def _validate_rows(rows: list[OrderingRow], name: str, line_of: dict[int, int]) -> None:
    def where(row: OrderingRow) -> str:
        return f"{name} line {line_of[id(row)]}" if id(row) in line_of else f"{name} (K={row.workers})"

    reference: set[str] | None = None
    seen_k: dict[int, OrderingRow] = {}
    for row in rows:
        counts: dict[str, int] = {}
        for c in row.order:
            counts[c] = counts.get(c, 0) + 1
        dup = next((c for c in row.order if counts[c] > 1), None)
        if dup is not None:
            raise ChromoschedError(f"{where(row)}: chromosome {dup} appears {counts[dup]} times")
        if reference is None:
            reference = set(row.order)
        else:
            missing = sorted(reference - set(row.order), key=_chrom_key)
            extra = sorted(set(row.order) - reference, key=_chrom_key)
            if missing:
                raise ChromoschedError(f"{where(row)}: chromosome {', '.join(missing)} missing from the order")
            if extra:
                raise ChromoschedError(f"{where(row)}: chromosome {', '.join(extra)} not in the table's first row")
        if row.workers in seen_k:
            first = seen_k[row.workers]
            earlier = f" (first on line {line_of[id(first)]})" if id(first) in line_of else ""
            raise ChromoschedError(f"{where(row)}: K={row.workers} appears twice{earlier}")
        seen_k[row.workers] = row
        if row.workers > len(row.order):
            raise ChromoschedError(f"{where(row)}: K={row.workers} exceeds the {len(row.order)} chromosomes")
        tol = _TOLERANCE * max(1.0, row.peak)
        if row.lower_bound > row.peak + tol:
            raise ChromoschedError(f"{where(row)}: lower_bound {row.lower_bound} exceeds peak {row.peak}")
        if row.peak > row.sequential_peak + tol:
            raise ChromoschedError(f"{where(row)}: peak {row.peak} exceeds sequential_peak {row.sequential_peak}")


def _chrom_key(name: str) -> tuple[int, str]:
    tail = name[3:] if name.lower().startswith("chr") else name
    return (int(tail), "") if tail.isdigit() else (10**6, tail)


def ranges_text(values: list[int]) -> str:
    """'1-5,8' style summary of integers."""
    vals = sorted(values)
    out: list[str] = []
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return ",".join(out)


def builtin_table_names() -> list[str]:
    """Genomes with a table shipped inside the package."""
    folder = resources.files("chromosched") / "data" / "orderings"
    if not folder.is_dir():
        return []
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".tsv"))


def load_builtin_table(genome: str) -> OrderingTable:
    """The ordering table shipped in the package for ``genome``: GRCh37, GRCh38 (or an alias), or any
    other shipped table by its file name (``mm10``: the mouse autosomes, written from a .fai)."""
    key = ALIASES.get(genome, genome)
    resource = resources.files("chromosched") / "data" / "orderings" / f"{key}.tsv"
    if key not in builtin_table_names() or not resource.is_file():
        known = ", ".join(builtin_table_names()) or "none"
        raise ChromoschedError(f"no built-in ordering table for genome '{genome}' (shipped: {known})")
    return OrderingTable.parse(resource.read_text(encoding="utf-8"), f"chromosched/data/orderings/{key}.tsv")
