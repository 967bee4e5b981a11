"""The measured-runs table (TSV) a prior is fitted on and reported against.

One row per profiled design point: the feature columns, the measured target (for Beagle
``min_heap_mb``, the smallest ``-Xmx`` that succeeded), and optionally ``status`` (only ``ok`` rows
are used) and ``split`` (``fit`` or ``heldout``; runs held out from fitting are only used for
reporting). Other columns (wall time, peak RSS, ...) are kept but not needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ChromoschedError

SPLITS = ("fit", "heldout")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_runs(path: str | Path, features: Sequence[str], target: str) -> pd.DataFrame:
    """Read and check a runs table; returns the usable (``status == ok``) rows.

    Errors name the file, the line (1-based, header = line 1) and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ChromoschedError(f"{path}: runs table not found")
    try:
        table = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ChromoschedError(f"{path}: not a readable TSV ({str(err).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise ChromoschedError(f"{path}: the runs table is empty") from None
    missing = [c for c in (*features, target) if c not in table.columns]
    if missing:
        raise ChromoschedError(f"{path}: missing column(s) {', '.join(missing)}")
    # line numbers as a person sees them in the file (comment lines skipped by the reader)
    lines = _data_line_numbers(path)
    table.index = lines[: len(table)]
    if "status" in table.columns:
        table = table[table["status"].str.strip() == "ok"]
    if table.empty:
        raise ChromoschedError(f"{path}: no usable runs (need rows with status ok)")
    out = table.copy()
    for column in (*features, target):
        values = pd.to_numeric(out[column].str.strip(), errors="coerce")
        bad = values.isna() | ~np.isfinite(values.fillna(0.0))
        if bad.any():
            line = bad[bad].index[0]
            raise ChromoschedError(
                f"{path} line {line}: column {column} has non-numeric value {out.at[line, column]!r}"
            )
        nonpos = values <= 0
        if column == target and nonpos.any():
            line = nonpos[nonpos].index[0]
            raise ChromoschedError(f"{path} line {line}: {column} must be positive, got {out.at[line, column]!r}")
        neg = values < 0
        if neg.any():
            line = neg[neg].index[0]
            raise ChromoschedError(f"{path} line {line}: {column} must not be negative, got {out.at[line, column]!r}")
        out[column] = values.astype(float)
    if "split" in out.columns:
        bad = ~out["split"].str.strip().isin(SPLITS)
        if bad.any():
            line = bad[bad].index[0]
            raise ChromoschedError(
                f"{path} line {line}: split must be one of {', '.join(SPLITS)}, got {out.at[line, 'split']!r}"
            )
        out["split"] = out["split"].str.strip()
    return out


def select_split(runs: pd.DataFrame, split: str, path: str | Path) -> pd.DataFrame:
    """Rows of one split; a table without a ``split`` column is entirely that split."""
    if "split" not in runs.columns:
        return runs
    chosen = runs[runs["split"] == split]
    if chosen.empty:
        raise ChromoschedError(f"{path}: no usable runs with split {split}")
    return chosen


def _data_line_numbers(path: Path) -> list[int]:
    numbers = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        header_seen = False
        for number, line in enumerate(handle, start=1):
            if line.startswith("#") or not line.strip():
                continue
            if not header_seen:
                header_seen = True
                continue
            numbers.append(number)
    return numbers
