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
from pathlib import Path
from typing import Mapping, Sequence

from .atomic_files import write_text_atomic
from .errors import ChromoschedError


def upward_ranks(
    rule_of: Mapping[str, str],
    depends_on: Mapping[str, Sequence[str]],
    runtime_of_rule: Mapping[str, float],
    default_runtime: float = 1.0,
) -> dict[str, float]:
    """rank(j) = runtime(rule of j) + max over the jobs that depend on j of their rank (0 if none).

    Dependencies on jobs outside ``rule_of`` (already done) are ignored. A cycle is an error."""
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
                rank[uid] = _runtime(runtime_of_rule, rule_of[uid], default_runtime) + best
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
    """Mean observed runtime per rule (seconds), carried across runs in a JSON file."""

    FORMAT = "chromosched-rule-runtimes/1"

    def __init__(self, means: Mapping[str, float] | None = None, counts: Mapping[str, int] | None = None):
        self._sum = {r: float(m) * int((counts or {}).get(r, 1)) for r, m in (means or {}).items()}
        self._n = {r: int((counts or {}).get(r, 1)) for r in (means or {})}

    def observe(self, rule: str, runtime_s: float) -> None:
        if runtime_s is None or not math.isfinite(runtime_s) or runtime_s < 0:
            return
        self._sum[rule] = self._sum.get(rule, 0.0) + float(runtime_s)
        self._n[rule] = self._n.get(rule, 0) + 1

    def means(self) -> dict[str, float]:
        return {r: self._sum[r] / self._n[r] for r in self._n if self._n[r]}

    def default(self) -> float:
        """For rules never seen: the median of the known means (1 s when none is known)."""
        known = sorted(self.means().values())
        return known[len(known) // 2] if known else 1.0

    def save(self, path: str | Path) -> None:
        data = {"format": self.FORMAT, "means": self.means(), "counts": dict(self._n)}
        write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> "RuleRuntimes":
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
            return cls({str(k): float(v) for k, v in data["means"].items()},
                       {str(k): int(v) for k, v in data.get("counts", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ChromoschedError(f"{path}: bad rule-runtime entries ({err})") from None
