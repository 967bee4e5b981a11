"""Compile one of the package's C sources on first use and load it with ctypes.

The shared library goes to ``$XDG_CACHE_HOME/chromosched`` (else ``~/.cache/chromosched``), named
by the source's hash, so a changed source is compiled again. The system's compiler is used
(``$CC``, else ``cc`` or ``gcc``); the file appears by an atomic rename, so concurrent processes
see either no library or the whole one. Without a compiler, or when compiling fails, ``load``
returns None and the caller falls back to its pure-Python path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chromosched"


def load(source: Path) -> ctypes.CDLL | None:
    """The compiled ``source`` (a C file beside a module), compiling it when needed; None if that fails."""
    code = source.read_bytes()
    target = cache_dir() / f"{source.stem}-{hashlib.sha256(code).hexdigest()[:16]}.so"
    if not target.exists():
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not compiler:
            return None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            done = subprocess.run(
                [compiler, "-O2", "-shared", "-fPIC", "-o", tmp, str(source), "-lm"], capture_output=True, text=True
            )
            if done.returncode != 0:
                os.unlink(tmp)
                return None
            os.replace(tmp, target)  # atomic: a concurrent process sees the old state or the whole library
        except OSError:
            return None
    try:
        return ctypes.CDLL(str(target))
    except OSError:
        return None


def bind(source: Path, wrap: Callable[[ctypes.CDLL], T]) -> Callable[[], T | None]:
    """A cached loader for ``source``: ``wrap`` of the loaded library (its functions typed), or None
    where it cannot be built; ``.cache_clear()`` forgets the answer (the tests without a compiler)."""

    @lru_cache(maxsize=1)
    def library() -> T | None:
        lib = load(source)
        return None if lib is None else wrap(lib)

    return library
