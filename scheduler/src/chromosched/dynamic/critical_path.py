"""Critical-path ranks of a workflow's jobs: HEFT's upward rank over plain data.

The upward rank of a job is its own predicted runtime plus the longest chain of predicted
runtimes from it to the end of the workflow (through the jobs that need its outputs). Starting
ready jobs by rank, highest first, starts long chains first (HEFT, Topcuoglu et al. 2002), so
``impute chr1`` can start as soon as its ``prepare_target chr1`` is done instead of after every
other ``prepare_target``.

Runtimes are learned per rule (:class:`RuleRuntimes`, the mean observed runtime) and saved next to
the learned model, so the next run ranks from the start. The DAG comes in as plain data (job uid ->
rule, job uid -> uids it depends on); nothing here knows Snakemake.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..atomic_files import write_text_atomic
from ..errors import ChromoschedError


def upward_ranks(
    rule_of: Mapping[str, str],
    depends_on: Mapping[str, Sequence[str]],
    runtime_of_rule: Mapping[str, float],
    default_runtime: float = 1.0,
    runtime_of_job: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """rank(j) = runtime(j) + max over the jobs that depend on j of their rank (0 if none).

    runtime(j) is ``runtime_of_job[j]`` when given, else its rule's runtime, else the default.
    Dependencies on jobs outside ``rule_of`` (already done) are ignored. A cycle is an error."""
    per_job = runtime_of_job or {}
    needed_by: dict[str, list[str]] = {uid: [] for uid in rule_of}
    for uid, deps in depends_on.items():
        if uid not in rule_of:
            continue
        for dep in deps:
            if dep in needed_by and dep != uid:
                needed_by[dep].append(uid)
    rank: dict[str, float] = {}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in rule_of:
        if root in rank:
            continue
        stack = [(root, iter(needed_by[root]))]
        state[root] = 1
        while stack:
            uid, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                best = max((rank[c] for c in needed_by[uid]), default=0.0)
                own = per_job.get(uid)
                if own is None:
                    own = _runtime(runtime_of_rule, rule_of[uid], default_runtime)
                rank[uid] = own + best
                state[uid] = 2
            elif state.get(child) == 1:
                raise ChromoschedError(f"the workflow's jobs form a cycle through {child}")
            elif state.get(child) != 2:
                state[child] = 1
                stack.append((child, iter(needed_by[child])))
    return rank


def _runtime(runtime_of_rule: Mapping[str, float], rule: str, default: float) -> float:
    value = runtime_of_rule.get(rule)
    return default if value is None or not math.isfinite(value) or value < 0 else float(value)


class RuleRuntimes:
    """Runtime per rule (seconds), carried across runs in a JSON file: the mean runtime, and where
    jobs have a size (chromosome length), runtime per unit of size, so a big chromosome's job is
    predicted to take longer than a small one's."""

    FORMAT = "chromosched-rule-runtimes/2"

    def __init__(self, stats: Mapping[str, Mapping[str, float]] | None = None):
        # rule -> {"n", "sum_s", "n_sized", "sum_sized_s", "sum_size"}
        self._stats = {r: dict(v) for r, v in (stats or {}).items()}

    def observe(self, rule: str, runtime_s: float, size: float | None = None) -> None:
        if runtime_s is None or not math.isfinite(runtime_s) or runtime_s < 0:
            return
        st = self._stats.setdefault(rule, {"n": 0, "sum_s": 0.0, "n_sized": 0, "sum_sized_s": 0.0, "sum_size": 0.0})
        st["n"] += 1
        st["sum_s"] += float(runtime_s)
        if size is not None and math.isfinite(size) and size > 0:
            st["n_sized"] += 1
            st["sum_sized_s"] += float(runtime_s)
            st["sum_size"] += float(size)

    def means(self) -> dict[str, float]:
        return {r: st["sum_s"] / st["n"] for r, st in self._stats.items() if st["n"]}

    def predict(self, rule: str, size: float | None = None) -> float | None:
        """A job's runtime: its rule's runtime per unit size x its size, else its rule's mean."""
        st = self._stats.get(rule)
        if not st or not st["n"]:
            return None
        if size is not None and size > 0 and st["n_sized"] and st["sum_size"] > 0:
            return st["sum_sized_s"] / st["sum_size"] * float(size)
        return st["sum_s"] / st["n"]

    def default(self) -> float:
        """For rules never seen: the median of the known means (1 s when none is known)."""
        known = sorted(self.means().values())
        return known[len(known) // 2] if known else 1.0

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps({"format": self.FORMAT, "rules": self._stats}, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> RuleRuntimes:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, json.JSONDecodeError) as err:
            raise ChromoschedError(f"{path}: not a readable rule-runtime file ({err})") from None
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise ChromoschedError(f"{path}: not a chromosched rule-runtime file ({cls.FORMAT} expected)")
        try:
            keys = ("n", "sum_s", "n_sized", "sum_sized_s", "sum_size")
            return cls({str(r): {k: float(st[k]) for k in keys} for r, st in data["rules"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ChromoschedError(f"{path}: bad rule-runtime entries ({err})") from None
