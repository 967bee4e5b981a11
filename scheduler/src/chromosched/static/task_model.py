"""The static scheduler's task model: named tasks, each with a peak memory and a duration.

A ``TaskSet`` is the plain data every static algorithm works on (evaluator, searches, lower bound,
ordering tables). Orders are permutations of task *indices*; names are only for people and files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ChromoschedError
from ..genomes import genome_lengths

MBP = 1_000_000


@dataclass(frozen=True)
class TaskSet:
    """Tasks (normally one per chromosome) with memory and duration.

    ``memory`` and ``duration`` are positive numbers in ``memory_unit`` / ``duration_unit``.
    ``source`` says where they came from (a genome name or a file), for table headers and errors.
    """

    names: tuple[str, ...]
    memory: tuple[float, ...]
    duration: tuple[float, ...]
    memory_unit: str = "Mbp"
    duration_unit: str = "Mbp"
    source: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source else ""
        if not self.names:
            raise ChromoschedError(f"no tasks given{where}")
        if not (len(self.names) == len(self.memory) == len(self.duration)):
            raise ChromoschedError(f"names, memory and duration differ in length{where}")
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise ChromoschedError(f"task {dup} appears twice{where}")
        for name, mem, dur in zip(self.names, self.memory, self.duration):
            # Zero or negative durations would make half-open intervals empty and the sweep meaningless.
            if not (math.isfinite(mem) and mem > 0):
                raise ChromoschedError(f"task {name}: memory must be a positive number, got {mem!r}{where}")
            if not (math.isfinite(dur) and dur > 0):
                raise ChromoschedError(f"task {name}: duration must be a positive number, got {dur!r}{where}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the task called ``name`` (ChromoschedError when unknown)."""
        try:
            return self._index[name]
        except KeyError:
            raise ChromoschedError(f"unknown task {name!r}{' in ' + self.source if self.source else ''}") from None

    def order_indices(self, names: list[str] | tuple[str, ...]) -> list[int]:
        """Translate an order given as names into indices."""
        return [self.index(n) for n in names]

    def order_names(self, order: list[int] | tuple[int, ...]) -> list[str]:
        """Translate an order given as indices into names."""
        return [self.names[i] for i in order]

    def sequential_order(self) -> list[int]:
        """The order the tasks were given in (chr1, chr2, ... for genomes): the paper's 'sequential'."""
        return list(range(len(self.names)))


def genome_taskset(genome: str) -> TaskSet:
    """Built-in genome: memory = duration = autosome length in Mbp (the paper's model).

    Lengths are kept exact (bp / 1e6 is exact enough for reporting, and ties between finishing
    times are decided on the integer bp sums inside the evaluator, see ``peak_memory``).
    """
    lengths = genome_lengths(genome)
    mbp = tuple(v / MBP for v in lengths.values())
    return TaskSet(tuple(lengths), mbp, mbp, "Mbp", "Mbp", source=genome)


def lengths_taskset(lengths: dict[str, int | float], source: str, unit_divisor: float = MBP) -> TaskSet:
    """Custom lengths (bp): memory = duration = length / ``unit_divisor`` (Mbp by default)."""
    values = tuple(float(v) / unit_divisor for v in lengths.values())
    return TaskSet(tuple(lengths), values, values, "Mbp", "Mbp", source=source)
