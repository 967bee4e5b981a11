"""Static mode at run time: start chromosome jobs in an ordering table's order, K at a time.

The table's order for K workers was searched offline to minimise the peak of the summed memory
when K chromosomes run at once under list scheduling (each next chromosome starts when a worker
frees). At run time that is exactly this rule, applied per rule with a chromosome wildcard:

- a rule's chromosome jobs start strictly in table order (chromosomes the table does not know go
  last, largest name-order first), and at most K of them run at once;
- if the next chromosome's job is not ready yet, or does not fit the free memory, later ones wait
  (starting them would break the order the peak guarantee is about);
- jobs without a chromosome fill what is left, but only while the memory they take leaves room
  for every rule's next-in-order chromosome job, so they never delay the order.

No prediction, no learning: zero run-time cost beyond this bookkeeping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from .job_record import JobRecord

MEMORY = "mem_mb"


class StaticAdmission:
    def __init__(self, order: Sequence[str], workers: int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.rank = {chrom: i for i, chrom in enumerate(order)}
        self.workers = int(workers)
        self.expected: dict[str, set[str]] = defaultdict(set)  # rule -> chromosomes it will run
        self.started: dict[str, set[str]] = defaultdict(set)

    def expect(self, records: Iterable[JobRecord]) -> None:
        """Register the chromosome jobs the workflow will run (from Snakemake's remaining jobs)."""
        for record in records:
            if record.chrom is not None:
                self.expected[record.rule].add(record.chrom)

    def _key(self, chrom: str) -> tuple:
        return (0, self.rank[chrom], "") if chrom in self.rank else (1, 0, chrom)

    def next_chromosome(self, rule: str) -> str | None:
        waiting = self.expected[rule] - self.started[rule]
        return min(waiting, key=self._key) if waiting else None

    def select(
        self,
        ready: Sequence[JobRecord],
        running: Sequence[JobRecord],
        free: Mapping[str, float],
    ) -> list[JobRecord]:
        """The jobs to start now. ``free`` holds the free amount of every constrained resource
        (``mem_mb``, ``_cores``, ...); a job fits when each of its resources fits."""
        self.expect(ready)
        free = dict(free)
        running_per_rule: dict[str, int] = defaultdict(int)
        for record in running:
            if record.chrom is not None:
                running_per_rule[record.rule] += 1
        by_slot = {(r.rule, r.chrom): r for r in ready if r.chrom is not None}
        chosen: list[JobRecord] = []
        for rule in sorted({r.rule for r in ready if r.chrom is not None}):
            while running_per_rule[rule] < self.workers:
                chrom = self.next_chromosome(rule)
                record = by_slot.get((rule, chrom))
                if record is None or not _fits(record, free):
                    break
                _take(record, free)
                chosen.append(record)
                self.started[rule].add(chrom)  # provisional: confirm() keeps only what started
                running_per_rule[rule] += 1
        # Memory the next-in-order chromosome jobs will need: fillers must leave it free.
        reserve = 0.0
        for rule in self.expected:
            nxt = self.next_chromosome(rule)
            record = by_slot.get((rule, nxt))
            if record is not None and running_per_rule[rule] < self.workers:
                reserve += record.resources.get(MEMORY, 0)
        fillers = sorted((r for r in ready if r.chrom is None), key=lambda r: (-r.priority, r.uid))
        for record in fillers:
            if _fits(record, free, reserve_mb=reserve):
                _take(record, free)
                chosen.append(record)
        self._provisional = [r for r in chosen if r.chrom is not None]
        return chosen

    def confirm(self, started: Sequence[JobRecord]) -> None:
        """Of the last selection, only ``started`` really started: the others wait their turn."""
        keep = {r.uid for r in started}
        for record in getattr(self, "_provisional", []):
            if record.uid not in keep:
                self.started[record.rule].discard(record.chrom)
        self._provisional = []


def _fits(record: JobRecord, free: Mapping[str, float], reserve_mb: float = 0.0) -> bool:
    for name, amount in record.resources.items():
        if name not in free or name == "_job_count":
            continue
        limit = free[name] - (reserve_mb if name == MEMORY else 0.0)
        if amount > limit:
            return False
    return free.get("_job_count", 1) >= 1


def _take(record: JobRecord, free: dict[str, float]) -> None:
    for name, amount in record.resources.items():
        if name in free:
            free[name] -= amount
    if "_job_count" in free and "_job_count" not in record.resources:
        free["_job_count"] -= 1
