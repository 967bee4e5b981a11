"""The paper's synthetic chromosome workload (Eq. 15) with every unpublished choice as a field.

Task i = 1..n (1 = largest) has base size b_i on a line from b_1 = task_size * C down to
b_n = ratio * b_1 (or explicit relative sizes). True peak memory r_i = b_i (1 + U(-beta_ram,
beta_ram)), true duration d_i = b_i (1 + U(-beta_dur, beta_dur)). The priors are one independent
noisy redraw of both ("a single noisy run of the same pipeline"). Draws come from one seeded
generator in a fixed order, so a seed gives the same workload whatever policy runs on it.

Gap fills (labelled, all switchable): ``clip_ram`` caps true memory at the capacity (at 100% task
size the largest task would otherwise need more than the machine half of the time, yet the paper
reports a finite optimum); the job-count cap ``max_parallel`` (10) is our calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ChromoschedError


@dataclass(frozen=True)
class WorkloadProfile:
    """Everything that defines a simulated workload, except the seed."""

    name: str = "paper-cal"
    capacity: float = 296.0
    n_tasks: int = 22
    task_size: float = 0.4  # b_1 / capacity
    ratio: float = 0.2  # b_n / b_1 (linear model)
    beta_ram: float = 0.05
    beta_dur: float = 0.3
    max_parallel: int | None = 10
    clip_ram: bool = True
    relative_sizes: tuple[float, ...] | None = None  # explicit b_i / b_1 instead of the line

    def __post_init__(self):
        if self.capacity <= 0:
            raise ChromoschedError(f"capacity must be > 0, got {self.capacity}")
        if self.n_tasks < 1 and not self.relative_sizes:
            raise ChromoschedError(f"need at least one task, got {self.n_tasks}")
        if not (0 < self.task_size):
            raise ChromoschedError(f"task size must be > 0 (a fraction of the capacity), got {self.task_size}")
        if not (0 <= self.beta_ram < 1 and 0 <= self.beta_dur < 1):
            raise ChromoschedError(f"noise levels must be in [0, 1), got {self.beta_ram}, {self.beta_dur}")
        if self.relative_sizes is not None:
            if not self.relative_sizes or any(s <= 0 for s in self.relative_sizes):
                raise ChromoschedError("relative task sizes must all be > 0")
            object.__setattr__(self, "n_tasks", len(self.relative_sizes))  # the list defines the count
        if self.max_parallel is not None and self.max_parallel < 1:
            raise ChromoschedError(f"max parallel tasks must be >= 1, got {self.max_parallel}")

    def bases(self) -> np.ndarray:
        b1 = self.task_size * self.capacity
        if self.relative_sizes is not None:
            return b1 * np.asarray(self.relative_sizes, dtype=float)
        n = self.n_tasks
        if n == 1:
            return np.array([b1])
        i = np.arange(n)
        return b1 * (1.0 - (1.0 - self.ratio) * i / (n - 1))


def _grch37_relative() -> tuple[float, ...]:
    from ..genomes import genome_lengths

    lengths = list(genome_lengths("GRCh37").values())
    return tuple(v / lengths[0] for v in lengths)


PROFILES: dict[str, WorkloadProfile] = {
    "paper-cal": WorkloadProfile(),
    # Sizes proportional to the GRCh37 autosome lengths: not linear in the chromosome index.
    "grch37-cal": WorkloadProfile(name="grch37-cal", relative_sizes=_grch37_relative()),
    # The same workload without the gap fills: no cap on parallel jobs, true memory unclipped.
    "paper-raw": WorkloadProfile(name="paper-raw", max_parallel=None, clip_ram=False),
}


def profile(name: str, **overrides) -> WorkloadProfile:
    if name not in PROFILES:
        raise ChromoschedError(f"unknown workload profile '{name}' (known: {', '.join(PROFILES)})")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(PROFILES[name], **overrides)


@dataclass(frozen=True)
class SimTask:
    """One task: what is true (ram, duration) and what the prior run said."""

    task_id: str
    index: int  # 1 = largest
    base: float
    ram: float
    duration: float
    prior_ram: float
    prior_duration: float


@dataclass(frozen=True)
class Workload:
    profile: WorkloadProfile
    seed: int
    tasks: tuple[SimTask, ...] = field(default_factory=tuple)

    @property
    def capacity(self) -> float:
        return self.profile.capacity


def make_workload(prof: WorkloadProfile, seed: int) -> Workload:
    """Draw one workload; the draw order is fixed (true RAM, true duration, prior RAM, prior duration)."""
    rng = np.random.default_rng(seed)
    b = prof.bases()
    n = len(b)
    u_ram = rng.uniform(-prof.beta_ram, prof.beta_ram, n)
    u_dur = rng.uniform(-prof.beta_dur, prof.beta_dur, n)
    v_ram = rng.uniform(-prof.beta_ram, prof.beta_ram, n)
    v_dur = rng.uniform(-prof.beta_dur, prof.beta_dur, n)
    ram = b * (1 + u_ram)
    if prof.clip_ram:
        ram = np.minimum(ram, prof.capacity)
    dur = b * (1 + u_dur)
    tasks = tuple(
        SimTask(
            task_id=f"chr{i + 1}",
            index=i + 1,
            base=float(b[i]),
            ram=float(ram[i]),
            duration=float(dur[i]),
            prior_ram=float(b[i] * (1 + v_ram[i])),
            prior_duration=float(b[i] * (1 + v_dur[i])),
        )
        for i in range(n)
    )
    return Workload(prof, int(seed), tasks)
