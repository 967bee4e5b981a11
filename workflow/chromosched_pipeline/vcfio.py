"""VCF and bgzip plumbing shared by the pipeline's steps: atomic outputs, BGZF integrity checks,
contig discovery and ``chr1``/``1`` harmonisation.

Every output is written to a hidden temporary file in the destination directory and moved into
place with :func:`os.replace`, so a killed or failed step never leaves a partial file under the
final name (and Snakemake's incomplete-output bookkeeping stays truthful).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pysam

from chromosched.atomic_files import write_text_atomic  # noqa: F401  (re-exported: the steps write small text files with it)
from chromosched.errors import ChromoschedError
from chromosched.genomes import canonical_chrom

# The 28-byte empty block htslib appends to every BGZF file; its absence means truncation.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

_CONTIG_LINE = re.compile(r"^##contig=<(?P<body>.*)>\s*$")


def temporary_path(path: str | os.PathLike, suffix: str = "") -> Path:
    """A hidden sibling of ``path`` for writing before the atomic rename (same filesystem)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the hidden temporaries of ``path`` (:func:`temporary_path`) left by a killed writer
    (its process is gone); a rerun then leaves nothing of the killed attempt behind."""
    path = Path(path)
    removed = []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.tmp")
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        match = pattern.match(sibling.name)
        if not match or int(match.group(1)) == os.getpid() or _process_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            sibling.unlink()
            removed.append(sibling)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


@contextlib.contextmanager
def atomic_outputs(*paths: str | os.PathLike, suffixes: Sequence[str] | None = None) -> Iterator[list[Path]]:
    """Yield temporary paths for ``paths``; on success move them into place in the given order.

    On any exception (including KeyboardInterrupt) the temporaries are removed and the final
    paths are left untouched. ``suffixes`` (one per path) keep extensions that tools inspect,
    e.g. ``.vcf.gz`` for pysam's tabix indexer.
    """
    finals = [Path(p) for p in paths]
    suffixes = list(suffixes) if suffixes is not None else [""] * len(finals)
    temps = [temporary_path(p, s) for p, s in zip(finals, suffixes)]
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final)
    try:
        yield temps
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


def exit_on_sigterm() -> None:
    """Turn SIGTERM (how Snakemake and batch systems stop a job) into SystemExit, so that
    :func:`atomic_outputs` and other ``finally`` blocks remove temporaries and child processes."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def write_bgzipped_vcf(
    path: str | os.PathLike,
    header_lines: Iterable[str],
    records: Iterable[str],
    empty_error: str | None = None,
) -> int:
    """Write a bgzipped, tabix-indexed VCF atomically (``path`` and ``path.tbi``).

    ``header_lines`` are full lines without newline, ending with the ``#CHROM`` line; ``records``
    are tab-separated record lines without newline, sorted by position. Returns the record count.
    With ``empty_error``, zero records raise ChromoschedError(empty_error) and nothing is written.
    """
    path = Path(path)
    index = Path(f"{path}.tbi")
    n = 0
    with atomic_outputs(path, index, suffixes=[".vcf.gz", ".vcf.gz.tbi"]) as (tmp, tmp_index):
        with pysam.BGZFile(str(tmp), "wb") as out:
            out.write(("\n".join(header_lines) + "\n").encode())
            buffer: list[str] = []
            for line in records:
                buffer.append(line)
                n += 1
                if len(buffer) >= 512:
                    out.write(("\n".join(buffer) + "\n").encode())
                    buffer.clear()
            if buffer:
                out.write(("\n".join(buffer) + "\n").encode())
        if n == 0 and empty_error:
            raise ChromoschedError(empty_error)
        pysam.tabix_index(str(tmp), preset="vcf", force=True, index=str(tmp_index))
    return n


def index_vcf_atomic(path: str | os.PathLike) -> Path:
    """(Re)build ``path.tbi`` for an existing bgzipped VCF, atomically."""
    index = Path(f"{path}.tbi")
    with atomic_outputs(index, suffixes=[".tbi"]) as (tmp_index,):
        pysam.tabix_index(str(path), preset="vcf", force=True, index=str(tmp_index))
    return index


def check_bgzf_complete(path: str | os.PathLike, what: str = "VCF") -> None:
    """Raise a one-line error when ``path`` is missing, not BGZF-compressed or truncated."""
    path = Path(path)
    if not path.is_file():
        raise ChromoschedError(f"{what} {path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise ChromoschedError(f"{what} {path}: file is empty (0 bytes)")
    with path.open("rb") as fh:
        magic = fh.read(4)
        if magic[:2] != b"\x1f\x8b":
            raise ChromoschedError(
                f"{what} {path}: not gzip/bgzip compressed (compress it with bgzip and index it with tabix)"
            )
        if magic[3:4] != b"\x04":
            raise ChromoschedError(
                f"{what} {path}: plain gzip, not bgzip (recompress it with bgzip and index it with tabix)"
            )
        fh.seek(max(0, size - len(BGZF_EOF)))
        if fh.read() != BGZF_EOF:
            raise ChromoschedError(f"{what} {path}: truncated bgzip file (no BGZF end-of-file block)")


def read_header_lines(path: str | os.PathLike) -> list[str]:
    """The ``##``/``#CHROM`` header lines of a (b)gzipped or plain VCF, without newlines."""
    opener = gzip.open if str(path).endswith((".gz", ".bgz")) else open
    lines: list[str] = []
    try:
        with opener(path, "rt") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                lines.append(line.rstrip("\n"))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ChromoschedError(f"VCF {path}: cannot read header ({exc})") from None
    if not lines or not lines[-1].startswith("#CHROM"):
        raise ChromoschedError(f"VCF {path}: no '#CHROM' header line (not a VCF file?)")
    return lines


def header_contig_lengths(header_lines: Iterable[str]) -> dict[str, int | None]:
    """``##contig`` IDs of a header, in order, with their lengths (None when absent)."""
    contigs: dict[str, int | None] = {}
    for line in header_lines:
        match = _CONTIG_LINE.match(line)
        if not match:
            continue
        fields = dict(part.split("=", 1) for part in re.split(r",(?=[A-Za-z_]+=)", match.group("body")) if "=" in part)
        if "ID" in fields:
            length = fields.get("length")
            contigs[fields["ID"]] = int(length) if length and length.isdigit() else None
    return contigs


def indexed_contigs(path: str | os.PathLike) -> list[str] | None:
    """Contigs listed in the tabix/CSI index of ``path`` (those with records), or None if unindexed."""
    path = str(path)
    if not (os.path.exists(path + ".tbi") or os.path.exists(path + ".csi")):
        return None
    try:
        with pysam.TabixFile(path) as tbx:
            return list(tbx.contigs)
    except (OSError, ValueError) as exc:
        raise ChromoschedError(f"VCF {path}: cannot read its index ({exc})") from None


def vcf_contigs(path: str | os.PathLike, header_lines: list[str] | None = None) -> list[str]:
    """Contig names a VCF has: from its index if present, else header ``##contig`` lines (``header_lines``
    when the caller has read them already)."""
    contigs = indexed_contigs(path)
    if contigs is not None:
        return contigs
    return list(header_contig_lengths(header_lines if header_lines is not None else read_header_lines(path)))


def match_contig(chrom: str, names: Iterable[str]) -> str | None:
    """The name among ``names`` that denotes chromosome ``chrom`` (``chr1`` matches ``1``), if any."""
    names = list(names)
    if chrom in names:
        return chrom
    want = canonical_chrom(chrom)
    for name in names:
        if canonical_chrom(name) == want:
            return name
    return None


def map_contigs(path: str | os.PathLike) -> list[str]:
    """Chromosome names in column 1 of a PLINK map file, in order of first appearance."""
    seen: dict[str, None] = {}
    try:
        with open(path) as fh:
            for line in fh:
                fields = line.split()
                if fields:
                    seen.setdefault(fields[0], None)
    except OSError as exc:
        raise ChromoschedError(f"genetic map {path}: cannot read ({exc.strerror})") from None
    return list(seen)


def indexed_record_counts(path: str | os.PathLike) -> dict[str, int] | None:
    """Records per contig from the statistics htslib stores in a .tbi/.csi index, without
    reading the VCF; None when there is no index or it carries no statistics.

    The counts live in each reference's pseudo-bin (tabix: bin 37450; CSI: the bin after the
    last real one) as (n_mapped, n_unmapped).
    """
    import struct

    path = str(path)
    for suffix, kind in ((".tbi", "tbi"), (".csi", "csi")):
        if os.path.exists(path + suffix):
            index, fmt = path + suffix, kind
            break
    else:
        return None
    try:
        with gzip.open(index, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError):
        return None
    off = 0

    def take(fmt_: str):
        nonlocal off
        values = struct.unpack_from("<" + fmt_, data, off)
        off += struct.calcsize("<" + fmt_)
        return values

    try:
        if fmt == "tbi":
            if data[:4] != b"TBI\x01":
                return None
            off = 4
            n_ref, _f, _cs, _cb, _ce, _meta, _skip, l_nm = take("8i")
            names = data[off : off + l_nm].split(b"\x00")[:n_ref]
            off += l_nm
            pseudo = 37450
        else:
            if data[:4] != b"CSI\x01":
                return None
            off = 4
            _min_shift, depth, l_aux = take("3i")
            aux = data[off : off + l_aux]
            off += l_aux
            (n_ref,) = take("i")
            # VCF CSI indexes made by bcftools carry tabix-style names in aux after 28 bytes.
            names = aux[28:].split(b"\x00")[:n_ref] if l_aux > 28 else [b"%d" % i for i in range(n_ref)]
            pseudo = ((1 << ((depth + 1) * 3)) - 1) // 7 + 1
        counts: dict[str, int] = {}
        for r in range(n_ref):
            (n_bin,) = take("i")
            for _ in range(n_bin):
                if fmt == "tbi":
                    bin_, n_chunk = take("Ii")
                else:
                    bin_, _loff, n_chunk = take("IQi")
                chunks = take(f"{2 * n_chunk}Q") if n_chunk else ()
                if bin_ == pseudo and n_chunk == 2:
                    counts[names[r].decode()] = int(chunks[2])
            if fmt == "tbi":
                (n_intv,) = take("i")
                off += 8 * n_intv
    except struct.error:
        return None
    return counts or None
