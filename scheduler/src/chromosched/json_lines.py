"""Append-only JSON-lines logs (the event log, the jobs' outcome logs), read back tolerantly.

Writers append one line per record; a run killed mid-write can leave the last line cut short.
:func:`read_json_lines` skips such a line (and any other line that is not a JSON object) with one
warning naming the file and line, so a resumed run, the scheduler and ``chromosched report``
never crash on a torn log.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

LOGGER = logging.getLogger("chromosched")


def read_json_lines(path: str | os.PathLike, missing_ok: bool = True) -> list[dict]:
    """The JSON objects of ``path``, one per line, torn or foreign lines skipped with a warning."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise
    records, skipped = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if isinstance(item, dict):
            records.append(item)
        else:
            skipped.append(number)
    if skipped:
        LOGGER.warning(
            f"chromosched: warning: {path}: skipped {len(skipped)} unreadable line(s) "
            f"(line {', '.join(map(str, skipped[:5]))}{', ...' if len(skipped) > 5 else ''}; cut short by a kill?)"
        )
    return records


def append_json_line(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` as one line. A line left unfinished by a killed writer is closed first, so
    the new record stays readable (instead of being glued onto the torn one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record) + "\n").encode("utf-8")
    with open(path, "a+b") as handle:
        end = handle.seek(0, os.SEEK_END)
        if end:
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                data = b"\n" + data
        handle.write(data)  # one write of the whole line (O_APPEND)
