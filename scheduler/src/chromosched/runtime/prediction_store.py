"""The one source of truth for a job's memory: a write-once prediction store.

The scheduler writes a prediction for (rule, wildcards, attempt) once, before the job starts; the
rules' ``mem_mb`` callables read the same entry, so local packing, ``sbatch --mem`` and Beagle's
``-Xmx`` all see one number, also in a cluster job's own Snakemake process (shared file system).

Layout: ``<root>/<rule>/<wildcards>.attempt<N>.json``. Entries are created atomically with
``os.link`` from a temporary file, which fails if the entry exists: two writers cannot disagree,
and a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ChromoschedError

#: Default location, relative to the workflow's working directory.
DEFAULT_STORE = ".chromosched/predictions"
#: Environment variable that overrides the default location (set by the plugin for rules).
STORE_ENV = "CHROMOSCHED_STORE"

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+,-]")


@dataclass(frozen=True)
class Prediction:
    rule: str
    wildcards: dict[str, str]
    attempt: int
    mem_mb: int
    runtime_s: float | None = None
    source: str = "unknown"  # prior | regressor | escalation | heuristic | declared | static
    created: float = field(default_factory=time.time)
    # Part of mem_mb that is not the tool's: under a cluster executor the job's own Snakemake shares
    # the job's --mem with the tool (SessionSettings.job_overhead_mb). A heap is sized from the rest.
    overhead_mb: int = 0

    @property
    def tool_mem_mb(self) -> int:
        """The memory the job's tool may use: ``mem_mb`` less the job's own Snakemake overhead."""
        return max(1, int(self.mem_mb) - max(0, int(self.overhead_mb)))


def wildcards_key(wildcards: Mapping[str, object]) -> str:
    """A stable, file-name-safe key for a wildcards mapping (``chrom=chr1,sample=A``)."""
    if not wildcards:
        return "_"
    parts = [f"{k}={wildcards[k]}" for k in sorted(wildcards)]
    return _UNSAFE.sub("_", ",".join(parts))


def _prediction(data: Mapping) -> Prediction:
    """A stored entry (its JSON object) as a Prediction."""
    return Prediction(
        rule=str(data["rule"]),
        wildcards={str(k): str(v) for k, v in data["wildcards"].items()},
        attempt=int(data["attempt"]),
        mem_mb=int(data["mem_mb"]),
        runtime_s=None if data.get("runtime_s") is None else float(data["runtime_s"]),
        source=str(data.get("source", "unknown")),
        created=float(data.get("created", 0.0)),
        overhead_mb=int(data.get("overhead_mb", 0)),
    )


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV, DEFAULT_STORE))


class PredictionStore:
    """Write-once predictions keyed by rule, wildcards and attempt."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_store_path()
        self._dirs: set[Path] = set()  # rule directories known to exist

    def path(self, rule: str, wildcards: Mapping[str, object], attempt: int) -> Path:
        return self.root / _UNSAFE.sub("_", rule) / f"{wildcards_key(wildcards)}.attempt{int(attempt)}.json"

    def get(self, rule: str, wildcards: Mapping[str, object], attempt: int) -> Prediction | None:
        path = self.path(rule, wildcards, attempt)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            return _prediction(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ChromoschedError(f"{path}: corrupt prediction entry ({err})") from err

    def put_once(self, prediction: Prediction) -> Prediction:
        """Store ``prediction`` unless an entry exists; return the entry that is now stored."""
        if prediction.mem_mb <= 0:
            raise ChromoschedError(
                f"prediction for rule {prediction.rule} {wildcards_key(prediction.wildcards)} "
                f"must be positive, got {prediction.mem_mb} MB"
            )
        path = self.path(prediction.rule, prediction.wildcards, prediction.attempt)
        existing = self.get(prediction.rule, prediction.wildcards, prediction.attempt)
        if existing is not None:
            return existing
        if path.parent not in self._dirs:  # one mkdir per rule, not per job
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        payload = asdict(prediction)
        payload["wildcards"] = {str(k): str(v) for k, v in prediction.wildcards.items()}
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        except FileNotFoundError:  # the folder was removed since (another process archived the store)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(payload, sort_keys=True) + "\n")  # dumps: json's C encoder
            try:
                os.link(tmp, path)  # atomic create-if-absent
            except FileExistsError:
                pass  # another process stored one first: that one counts (read below)
            else:
                return _prediction(payload)  # what was just written, without reading it back
        finally:
            os.unlink(tmp)
        stored = self.get(prediction.rule, prediction.wildcards, prediction.attempt)
        assert stored is not None
        return stored

    def entries(self) -> list[Prediction]:
        out = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*/*.attempt*.json")):
            rule = path.parent.name
            stem = path.name[: -len(".json")]
            _, _, attempt = stem.rpartition(".attempt")
            data = json.loads(path.read_text())
            out.append(self.get(rule, data["wildcards"], int(attempt)))
        return [p for p in out if p is not None]

    def archive(self) -> Path | None:
        """Move this store's entries aside (a new run starts with an empty store).

        Returns the archive folder, or None when there was nothing to move.
        """
        self._dirs.clear()
        if not self.root.is_dir() or not any(self.root.iterdir()):
            return None
        target = self.root.with_name(self.root.name + ".previous")
        if target.exists():
            shutil.rmtree(target)
        os.replace(self.root, target)
        return target
