"""Progress on long work: a tqdm bar on a terminal, nothing extra in logs and CI.

:class:`ProgressBar` draws a bar only when its stream (stderr) is a terminal, tqdm is installed
and neither ``CI`` nor ``CHROMOSCHED_NO_PROGRESS`` is set. Otherwise ``update`` does nothing, so a
log file or a CI transcript gets no carriage-return bar frames and no per-item ticks. Log lines
that are results, not progress (``write``), appear above the bar on a terminal and as plain lines
elsewhere.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import IO


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether a progress bar belongs on ``stream`` (default stderr)."""
    if os.environ.get("CI") or os.environ.get("CHROMOSCHED_NO_PROGRESS"):
        return False
    try:
        return bool((stream or sys.stderr).isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    def __init__(
        self, total: int | None, desc: str, unit: str = "it", stream: IO[str] | None = None, enabled: bool = True
    ):
        self.stream = stream or sys.stderr
        self._bar = None
        if enabled and interactive(self.stream):
            try:
                from tqdm import tqdm
            except ImportError:  # optional: without tqdm, a terminal gets the log lines only
                return
            # The terminal's size (COLUMNS/LINES, else the tty's). A terminal that reports 0 x 0 (a bare
            # pty) would make tqdm hide the bar: assume 100 x 24 there.
            size = shutil.get_terminal_size((100, 24))
            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit,
                file=self.stream,
                ncols=size.columns if size.columns > 0 else 100,
                nrows=size.lines if size.lines > 1 else 24,
            )

    @property
    def active(self) -> bool:
        return self._bar is not None

    def update(self, n: int = 1, note: str | None = None) -> None:
        """Advance by ``n``; ``note`` is shown after the bar (terminal only)."""
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)

    def reset(self, total: int | None) -> None:
        """Set the total once it is known (terminal only)."""
        if self._bar is not None:
            self._bar.reset(total=total)

    def write(self, line: str) -> None:
        """A log line: above the bar on a terminal, a plain line otherwise."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
