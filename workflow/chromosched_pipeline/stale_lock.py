"""Resume after a kill: remove the Snakemake directory lock a killed run left behind.

A run killed with SIGKILL (or by a power loss) leaves ``.snakemake/locks/*.lock``; the next
``snakemake`` then refuses to start ("Directory cannot be locked ... --unlock"). The Snakefile
calls :func:`clear_stale_locks` in the main Snakemake process (never in a cluster job's own
process, which runs with ``--nolock``): the locks are removed, with a warning, only when no other
Snakemake process on this machine works in this directory and the lock was taken on this machine
(``.snakemake/chromosched_lock_host``). Anything else (another live run, a lock from another host
on a shared filesystem, no ``/proc``) leaves the locks alone and Snakemake's own message stands.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

HOST_FILE = "chromosched_lock_host"


def clear_stale_locks(workdir: str | os.PathLike = ".", log: Callable[[str], None] = print) -> list[Path]:
    """Remove stale lock files; returns those removed. Records this host for the next check."""
    meta = Path(workdir) / ".snakemake"
    locks = sorted((meta / "locks").glob("*.lock"))
    host = socket.gethostname()
    removed: list[Path] = []
    if locks and _lock_host(meta) in (None, host) and not _other_snakemake_here(workdir):
        for lock in locks:
            try:
                lock.unlink()
                removed.append(lock)
            except FileNotFoundError:
                pass
        if removed:
            log(
                f"chromosched pipeline: warning: removed the stale Snakemake lock in {meta / 'locks'} "
                "(left by a killed run; no other Snakemake process works in this directory)"
            )
    if meta.is_dir():
        try:
            (meta / HOST_FILE).write_text(host + "\n")
        except OSError:
            pass
    return removed


def _lock_host(meta: Path) -> str | None:
    try:
        return (meta / HOST_FILE).read_text().strip() or None
    except OSError:
        return None


def _other_snakemake_here(workdir: str | os.PathLike) -> bool:
    """True when another Snakemake process has this directory as its working directory (or when
    that cannot be known: no /proc)."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return True
    here = os.path.realpath(workdir)
    mine = _ancestors(os.getpid())
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == here and any(os.path.basename(arg.decode(errors="replace")) == "snakemake" for arg in cmdline):
            return True
        if cwd == here and b"-m" in cmdline and b"snakemake" in cmdline:
            return True
    return False


def _ancestors(pid: int) -> set[int]:
    """``pid`` and its parents (a wrapper that started us is not another run)."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen
