"""The table of Beagle heap-profiling runs (``beagle_profile``'s output, the RAM prior's input): its
columns, reading (older single-base tables included), atomic writing, merging tables of several
base chromosomes, and the design points of one split."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from chromosched.errors import ChromoschedError

from ..vcfio import write_text_atomic
from .beagle_design import FEATURES, DesignPoint

#: before the per-chromosome design (one base chromosome per table, its length only in a comment)
LEGACY_COLUMNS = (
    "design_id",
    "split",
    *FEATURES,
    "min_heap_mb",
    "max_fail_mb",
    "gc_live_mb",
    "wall_s",
    "wall_at_min_s",
    "peak_rss_mb",
    "attempts",
    "profile_s",
    "status",
)
#: ``chrom_cm``: the genetic length of the base chromosome the point was cut from (the prior derives
#: markers per window from it)
COLUMNS = (*LEGACY_COLUMNS, "chrom_cm")

ESTIMATE_COLUMNS = (
    "design_id",
    "split",
    *FEATURES,
    "chrom_cm",
    "level",
    "estimate_mb",
    "xmx",
    "runs",
    "outcome",
    "wall_s",
)


def read_table(path: Path) -> tuple[list[str], list[dict]]:
    """(comment lines, rows) of an existing runs table; ([], []) if absent."""
    if not path.is_file():
        return [], []
    comments, rows, header = [], [], None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif line.strip():
            fields = line.split("\t")
            if header is None:
                header = fields
                if tuple(header) not in (COLUMNS, LEGACY_COLUMNS):
                    raise ChromoschedError(f"{path}: header differs from this profiler's columns; use a new --out")
            else:
                rows.append(dict(zip(header, fields)))
    if header is not None and tuple(header) == LEGACY_COLUMNS:
        length = comment_genetic_length_cm(comments)
        for row in rows:
            row["chrom_cm"] = table_value(length)
    return comments, rows


def comment_genetic_length_cm(comments: Sequence[str]) -> float | None:
    """The base chromosome's genetic length recorded in a table's comment lines (``genetic length X cM``)."""
    for line in comments:
        match = re.search(r"genetic length ([0-9.]+) cM", line)
        if match:
            return float(match.group(1))
    return None


def write_table(path: Path, comments: Sequence[str], rows: Sequence[dict]) -> None:
    lines = list(comments) + ["\t".join(COLUMNS)] + ["\t".join(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    write_text_atomic(path, "\n".join(lines) + "\n")


def table_value(v) -> str:
    if v is None:
        return "NA"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def table_points(path: Path, split: str) -> list[DesignPoint]:
    """The design points of one split of a runs table (measured ``ok`` rows)."""
    _, rows = read_table(path)
    points = [
        DesignPoint(
            design_id=r["design_id"],
            split=r["split"],
            **{k: (float(r[k]) if k == "window_cm" else int(r[k])) for k in FEATURES},
        )
        for r in rows
        if r["split"] == split and r["status"] == "ok"
    ]
    if not points:
        raise ChromoschedError(f"{path}: no {split} rows with status ok")
    return points


def merge(out: Path, sources: Sequence[str], command_line: str = "") -> list[dict]:
    """One runs table from several (e.g. one per base chromosome), each row with its ``chrom_cm``.

    A source is ``PATH[:PREFIX[:SPLIT]]``: its design ids get ``PREFIX`` (unique ids across tables) and,
    with ``SPLIT``, every row is put in that split (a table measured on a chromosome the fit must never
    see is all ``heldout``; a whole former table can become ``fit``). A row without a genetic length
    (a legacy table without the comment) is an error.
    """
    comments = [
        f"# Beagle 5.4 minimum-heap runs merged from {len(sources)} tables (chromosched_pipeline.imputation.beagle_profile --merge)",
        f"# regenerate: {command_line or 'merge'}",
    ]
    rows: list[dict] = []
    for source in sources:
        path, _, rest = source.partition(":")
        prefix, _, split = rest.partition(":")
        if split and split not in ("fit", "heldout"):
            raise ChromoschedError(f"--merge {source}: split must be fit or heldout, not {split!r}")
        table_comments, table_rows = read_table(Path(path))
        if not table_rows:
            raise ChromoschedError(f"{path}: no runs to merge")
        comments += [f"# from {path}: {line.lstrip('# ')}" for line in table_comments[:2]]
        for row in table_rows:
            if row.get("chrom_cm") in (None, "", "NA", "None"):
                raise ChromoschedError(f"{path}: row {row['design_id']} has no chromosome length (chrom_cm)")
            rows.append({**row, "design_id": prefix + row["design_id"], "split": split or row["split"]})
    ids = [r["design_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ChromoschedError(
            "--merge: design ids repeat across the tables; give each table its own PREFIX (PATH:PREFIX)"
        )
    write_table(out, comments, rows)
    return rows
