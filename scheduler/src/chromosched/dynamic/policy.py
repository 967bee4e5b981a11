"""The dynamic scheduling policy: predict each ready job's memory, then choose what to start.

Plain data in, plain data out, so the simulator and the Snakemake plugin drive the same object:

    policy = DynamicPolicy(preset("chromosched"), Capacity(mem_mb=64000, cores=16))
    chosen = policy.select(ready_tasks, free=Capacity(mem_mb=..., cores=...), running=[...], now=t)
    # start each Allocation(task, mem_mb, ...) with mem_mb as its memory limit, then later:
    policy.observe_success(task, measured_mb=..., runtime_s=...)   # or
    policy.observe_failure(task, allocated_mb=...)                  # OOM: next try gets >= s x more

Per job type (``TaskRequest.kind``, e.g. the rule name) an :class:`OnlineRamRegressor` predicts
memory from one size feature; prior predictions seed it. Allocation = point prediction + a
conservative bias (paper: absolute percentile; ours: relative), at least ``escalation`` x the last
failed allocation, at most the whole budget. A job that failed with the whole budget, or needs more
cores/GPUs than exist, raises :class:`ChromoschedError` instead of waiting forever.

Without prior data a job type starts with the paper's sequential phase: ``init_tasks`` jobs run
alone with the whole budget, in biggest-first, smallest-first or mixed order.

Packing: ``greedy`` (ascending memory, most jobs), ``knapsack`` (0-1 knapsack, most memory) or
``firstfit`` (priority order). Our additions are options (see ``PolicyConfig``; docs/dynamic.md
measures each): a relative bias from leave-one-out residuals with a
safety factor, a knapsack that maximises memory x predicted runtime (long jobs first, so the end
of the run does not wait on them), a fit weighted for relative errors, and, for shared memory
without per-job limits, a pooled reserve instead of per-job margins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ChromoschedError
from .packers import FirstFitPacker, GreedyPacker, KnapsackPacker, Limits, PackItem
from .ram_regressor import OnlineRamRegressor, RegressorRegistry, RegressorSettings

INIT_STRATEGIES = ("biggest", "smallest", "mixed")
PACKERS = ("knapsack", "greedy", "firstfit")
PRIORITIES = ("none", "longest", "biggest")
COLD_STARTS = ("sequential", "probe")


@dataclass(frozen=True)
class TaskRequest:
    """One ready job as the policy sees it.

    ``features`` holds size features by name (``index``, ``length``, ``variants``...);
    ``size_hint`` orders jobs for the init phase (bigger = expected to need more memory; defaults
    to the prior, then to the feature); ``prior_mb``/``prior_runtime_s`` come from the prior
    model or an earlier run; ``min_mb`` is a hard known minimum (e.g. a failed attempt).
    """

    task_id: str
    kind: str = "default"
    features: Mapping[str, float] = field(default_factory=dict)
    size_hint: float | None = None
    prior_mb: float | None = None
    prior_runtime_s: float | None = None
    cores: int = 1
    gpus: int = 0
    min_mb: float | None = None
    cap_mb: float | None = None  # a conservative upper estimate (a calibrated prior): see _allocations
    # True when prior_mb is only an upper bound someone stated (a rule's declared mem_mb), not an
    # estimate: it answers for the job type until its first job is observed, then leaves the fit.
    prior_is_bound: bool = False


@dataclass(frozen=True)
class Capacity:
    """A resource budget (total or free). ``None`` = not constrained."""

    mem_mb: float
    cores: int | None = None
    gpus: int | None = None
    max_tasks: int | None = None


@dataclass(frozen=True)
class Allocation:
    """A chosen job and the memory it gets (its limit); the predictions made at launch."""

    task: TaskRequest
    mem_mb: float
    predicted_mb: float | None
    predicted_runtime_s: float | None


@dataclass(frozen=True)
class RunningTask:
    """Ledger entry for a job that runs now."""

    task: TaskRequest
    mem_mb: float
    started_at: float = 0.0
    predicted_runtime_s: float | None = None


@dataclass(frozen=True)
class PolicyConfig:
    """Every choice the policy makes; ``preset(name)`` gives the named configurations."""

    name: str = "custom"
    feature: str = "index"  # which TaskRequest.features entry the regression uses
    alt_features: tuple[str, ...] = ()  # more candidates ("prior" = the prior itself), picked by LOO error
    switch_ratio: float = 0.8  # an alternative feature must cut the primary's LOO error to this fraction
    degree: int = 1  # polynomial degree (paper: 1)
    bias: str = "absolute"  # none | absolute (paper) | relative (ours)
    gamma_max: float = 0.95  # bias percentile with nothing observed ...
    gamma_min: float = 0.80  # ... and with every task observed
    safety: float = 1.0  # multiplies the bias
    escalation: float = 1.3  # s: a failed job's next allocation is at least s x the failed one
    init: str = "biggest"  # sequential phase order without a prior: biggest | smallest | mixed
    init_tasks: int = 2  # p: jobs run alone before the regression is used
    use_prior: bool = False  # seed the regression with TaskRequest.prior_mb
    prior_weight: float = 1.0  # least-squares weight of prior points
    relative_fit: bool = False  # weight points by 1/y^2 (noise proportional to size)
    packer: str = "knapsack"  # knapsack | greedy | firstfit
    priority: str = "none"  # tie-break / first-fit order: none | longest (runtime) | biggest (memory)
    objective: str = "memory"  # knapsack value: memory (paper) | area (memory x predicted runtime)
    area_power: float = 1.0  # value = memory x runtime^area_power
    area_max_items: int = 64  # above this many candidates: memory knapsack, longest first on ties
    grid: int = 1024  # knapsack memory cells with cores/GPUs/count dimensions
    grid_1d: int = 2048  # knapsack memory cells for memory alone
    floor: str = "smallest"  # smallest (paper) | positive (only with prior points)
    ucb_delta: float | None = None  # widen the bias while few residuals exist (see RegressorSettings)
    pooled_reserve_z: float | None = None  # shared memory: no per-job bias, keep z x sd(total) free
    min_residuals: int = 1  # fewer residuals than this: use default_margin (relative bias)
    default_margin: float = 0.0
    residuals: str = "launch"  # bias residuals: launch (paper) | loo (current fit, leave-one-out)
    # Job types without a prior (unseen workflows; docs/dynamic.md):
    cold_start: str = "sequential"  # sequential (paper: init_tasks jobs alone) | probe
    probe_free_fraction: float = 0.3  # a probe waits until this much of the budget is free (or nothing runs)
    ladder: float = 0.0  # > 1: beyond ladder x the largest observed size, extrapolate as a quadratic law
    extrapolate: bool = False  # above the largest observed size: at least a power law (exponent 1..2)
    degree_choice: bool = False
    outlier_cut: float | None = None

    def __post_init__(self):
        if self.init not in INIT_STRATEGIES:
            raise ChromoschedError(f"init strategy must be one of {', '.join(INIT_STRATEGIES)}, got {self.init!r}")
        if self.packer not in PACKERS:
            raise ChromoschedError(f"packer must be one of {', '.join(PACKERS)}, got {self.packer!r}")
        if self.priority not in PRIORITIES:
            raise ChromoschedError(f"priority must be one of {', '.join(PRIORITIES)}, got {self.priority!r}")
        if self.init_tasks < 0:
            raise ChromoschedError(f"init_tasks must be >= 0, got {self.init_tasks}")
        if self.escalation < 1:
            raise ChromoschedError(f"escalation factor s must be >= 1, got {self.escalation}")
        if self.cold_start not in COLD_STARTS:
            raise ChromoschedError(f"cold start must be one of {', '.join(COLD_STARTS)}, got {self.cold_start!r}")

    def regressor_settings(self) -> RegressorSettings:
        return RegressorSettings(
            degree=self.degree,
            bias=self.bias,
            gamma_max=self.gamma_max,
            gamma_min=self.gamma_min,
            safety=self.safety,
            escalation=self.escalation,
            prior_weight=self.prior_weight,
            relative_fit=self.relative_fit,
            floor=self.floor,
            ucb_delta=self.ucb_delta,
            min_residuals=self.min_residuals,
            default_margin=self.default_margin,
            residuals=self.residuals,
            degree_choice=self.degree_choice,
            outlier_cut=self.outlier_cut,
        )


_PAPER = PolicyConfig(bias="none", init="biggest", use_prior=False, packer="knapsack")

PRESETS: dict[str, PolicyConfig] = {
    # The paper's ablation rows (Table 2).
    "knapsack": replace(_PAPER, name="knapsack"),
    "knapsack+bias": replace(_PAPER, name="knapsack+bias", bias="absolute"),
    "knapsack+bias+smallest": replace(_PAPER, name="knapsack+bias+smallest", bias="absolute", init="smallest"),
    "knapsack+bias+smallest+prior": replace(
        _PAPER, name="knapsack+bias+smallest+prior", bias="absolute", init="smallest", use_prior=True
    ),
    # Greedy packing with the same prediction pipeline.
    "greedy": replace(_PAPER, name="greedy", packer="greedy"),
    "greedy+bias": replace(_PAPER, name="greedy+bias", packer="greedy", bias="absolute"),
    "greedy+bias+smallest+prior": replace(
        _PAPER, name="greedy+bias+smallest+prior", packer="greedy", bias="absolute", init="smallest", use_prior=True
    ),
    # Ours (tuned on the simulator, see docs/dynamic.md).
    "chromosched": PolicyConfig(
        name="chromosched",
        bias="relative",
        gamma_max=1.0,
        gamma_min=1.0,
        safety=1.5,
        init="biggest",
        use_prior=True,
        relative_fit=True,
        packer="knapsack",
        objective="area",
        priority="longest",
        residuals="loo",
        min_residuals=5,
        default_margin=0.5,
        alt_features=("length", "prior"),
    ),
}


# Ablation of our ideas: chromosched with one idea replaced by the paper's choice.
_OURS = PRESETS["chromosched"]
PRESETS.update(
    {
        # Without a prior the sequential phase comes back; smallest-first is the paper's best start.
        "chromosched-no-prior": replace(_OURS, name="chromosched-no-prior", use_prior=False, init="smallest"),
        "chromosched-paper-bias": replace(
            _OURS,
            name="chromosched-paper-bias",
            bias="absolute",
            gamma_max=0.95,
            gamma_min=0.80,
            safety=1.0,
            residuals="launch",
        ),
        "chromosched-memory-knapsack": replace(
            _OURS, name="chromosched-memory-knapsack", objective="memory", priority="none"
        ),
        "chromosched-plain-fit": replace(_OURS, name="chromosched-plain-fit", relative_fit=False),
        "chromosched-index-only": replace(_OURS, name="chromosched-index-only", alt_features=()),
        # Unseen workflows (no prior): probe each new job type with its smallest job while known
        # types keep running, then pack with a few-shot fit that extrapolates conservatively.
        "chromosched-probe": replace(
            _OURS,
            name="chromosched-probe",
            cold_start="probe",
            ladder=2.0,
            extrapolate=True,
            degree_choice=True,
            outlier_cut=4.0,
            min_residuals=4,
            default_margin=0.3,
            safety=1.0,
            ucb_delta=0.05,
        ),
        # Shared memory (no per-job limits): point predictions plus a pooled reserve.
        "chromosched-shared": replace(_OURS, name="chromosched-shared", pooled_reserve_z=2.5),
    }
)
ABLATIONS = tuple(
    k for k in PRESETS if k.startswith("chromosched-") and k not in ("chromosched-shared", "chromosched-probe")
)


# A rule whose fit is pinned (at least FLAT_MIN_JOBS measured jobs, leave-one-out relative RMS at
# most FLAT_MAX_ERROR) and whose fitted law grows slower than size^FLAT_MAX_EXPONENT at the largest
# measured size is extrapolated with the fit's own exponent, not at least linearly.
FLAT_MIN_JOBS = 4
FLAT_MAX_ERROR = 0.15
FLAT_MAX_EXPONENT = 0.5


def _flat_exponent(reg: OnlineRamRegressor, x1: float) -> float | None:
    """The fitted law's log-log slope at ``x1`` (at least 0) when the rule's memory is well
    measured and hardly grows with size, else None (the conservative exponent applies)."""
    if reg.n_observed < FLAT_MIN_JOBS:
        return None
    loo = reg._observed_loo()
    if len(loo) < FLAT_MIN_JOBS or math.sqrt(sum(e * e for e in loo) / len(loo)) > FLAT_MAX_ERROR:
        return None
    f1, f2 = reg.predict(x1), reg.predict(x1 * 1.01)
    if f1 <= 0 or f2 <= 0:
        return None
    e = math.log(f2 / f1) / math.log(1.01)
    return max(e, 0.0) if e <= FLAT_MAX_EXPONENT else None


def _less(limits: Limits, items: Sequence[PackItem]) -> Limits:
    """``limits`` minus what ``items`` take."""
    return Limits(
        mem=max(limits.mem - sum(it.mem for it in items), 0.0),
        cores=None if limits.cores is None else limits.cores - sum(it.cores for it in items),
        gpus=None if limits.gpus is None else limits.gpus - sum(it.gpus for it in items),
        max_items=None if limits.max_items is None else limits.max_items - len(items),
    )


def preset(name: str) -> PolicyConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ChromoschedError(f"unknown policy '{name}' (known: {', '.join(PRESETS)})") from None


class DynamicPolicy:
    """Memory prediction + packing for ready jobs; learns from every finished or failed job."""

    def __init__(self, config: PolicyConfig, capacity: Capacity, registry: RegressorRegistry | None = None):
        if not (capacity.mem_mb > 0 and math.isfinite(capacity.mem_mb)):
            raise ChromoschedError(f"memory budget must be a positive number, got {capacity.mem_mb!r}")
        self.config = config
        self.capacity = capacity
        self.memory = registry or RegressorRegistry(config.regressor_settings())
        self.runtime = RegressorRegistry(RegressorSettings(degree=config.degree, bias="none", floor="positive"))
        self._seen: dict[str, dict[str, TaskRequest]] = {}
        self._failed_at: dict[str, float] = {}  # task id -> last failed allocation
        self._cap_exceeded: set[str] = set()  # job types whose calibrated prior proved too low
        self._launched: dict[str, Allocation] = {}
        self._done: set[str] = set()
        self._pooled_bonus: dict[str, float] = {}
        self._chosen: dict[str, str] = {}  # kind -> feature (cleared when data change)
        self._missing: dict[str, set[str]] = {}  # kind -> candidate features some job lacks
        if config.packer == "knapsack":
            self._packer = KnapsackPacker(grid=config.grid, grid_1d=config.grid_1d)
        elif config.packer == "greedy":
            self._packer = GreedyPacker()
        else:
            self._packer = FirstFitPacker()

    # -- features -----------------------------------------------------------------------------
    @property
    def candidates(self) -> tuple[str, ...]:
        """Size features the regressions may use; ``prior`` means the prior prediction itself."""
        return (self.config.feature,) + tuple(f for f in self.config.alt_features if f != self.config.feature)

    def _key(self, kind: str, feature: str) -> str:
        return kind if feature == self.config.feature else f"{kind}@{feature}"

    def _x(self, task: TaskRequest, feature: str) -> float | None:
        if feature == "prior":
            return None if task.prior_mb is None else float(task.prior_mb)
        v = task.features.get(feature)
        return None if v is None else float(v)

    def _feature(self, task: TaskRequest) -> float:
        x = self._x(task, self.config.feature)
        if x is None:
            raise ChromoschedError(
                f"task {task.task_id}: size feature '{self.config.feature}' missing (has: {', '.join(task.features) or 'none'})"
            )
        return x

    def _each_feature(self, task: TaskRequest):
        """(feature, x) for every candidate feature this task has (the primary one is required)."""
        yield self.config.feature, self._feature(task)
        for f in self.candidates[1:]:
            x = self._x(task, f)
            if x is not None:
                yield f, x

    def chosen_feature(self, kind: str) -> str:
        """The candidate feature whose regression predicts best out of sample: relative RMS of
        leave-one-out residuals of the prior points (not for the ``prior`` feature itself, whose
        prior points sit on y = x) and of observed jobs. An alternative needs at least 3 such
        residuals and must beat ``switch_ratio`` x the primary feature's error."""
        if len(self.candidates) == 1:
            return self.config.feature
        cached = self._chosen.get(kind)
        if cached is not None:
            return cached
        missing = self._missing.get(kind, set())
        best, best_score = self.config.feature, None
        for f in self.candidates:
            if f in missing:
                continue  # not available for every job of this type
            reg = self.memory.get(self._key(kind, f))
            res = reg._observed_loo() if f == "prior" else reg._prior_loo()[1] + reg._observed_loo()
            if len(res) < 3:
                continue
            score = math.sqrt(sum(e * e for e in res) / len(res))
            if f == self.config.feature:
                best_score = score * self.config.switch_ratio  # hysteresis towards the primary
            elif best_score is None or score < best_score:
                best, best_score = f, score
        self._chosen[kind] = best
        return best

    def _mem_reg(self, kind: str) -> tuple[str, OnlineRamRegressor]:
        f = self.chosen_feature(kind)
        return f, self.memory.get(self._key(kind, f))

    # -- learning -----------------------------------------------------------------------------
    def observe_success(self, task: TaskRequest, measured_mb: float, runtime_s: float | None = None) -> None:
        """A job finished: its measured peak (and runtime) enter the regressions."""
        self._chosen.pop(task.kind, None)
        launched = self._launched.pop(task.task_id, None)
        predicted = launched.predicted_mb if launched else None
        for f, x in self._each_feature(task):
            self.memory.get(self._key(task.kind, f)).observe(task.task_id, x, measured_mb, predicted)
            if runtime_s is not None and runtime_s >= 0:
                self.runtime.get(self._key(task.kind, f)).observe(task.task_id, x, runtime_s)
        self._failed_at.pop(task.task_id, None)
        self._done.add(task.task_id)
        if task.cap_mb is not None and measured_mb > task.cap_mb:
            self._cap_exceeded.add(task.kind)

    def observe_running(self, task: TaskRequest, lower_mb: float) -> None:
        """A running job already uses ``lower_mb`` (live sampling), more than it was given: its
        type needs more than predicted. Enters like a failure's censored point (escalation x
        lower) until the job's real peak is observed; the job itself is not escalated."""
        self._chosen.pop(task.kind, None)
        for f, x in self._each_feature(task):
            self.memory.get(self._key(task.kind, f)).observe_censored(task.task_id, x, lower_mb)

    def forget_tasks(self, kind: str) -> None:
        """Register this type's jobs afresh on their next appearance (their requests changed, e.g.
        they now carry a prior)."""
        self._seen.pop(kind, None)
        self._chosen.pop(kind, None)

    def observe_provisional(self, task: TaskRequest, plateau_mb: float) -> None:
        """A running job's memory has plateaued (live sampling): a provisional observation, replaced
        by the measured peak when the job ends (no launch residual is recorded for it)."""
        self._chosen.pop(task.kind, None)
        for f, x in self._each_feature(task):
            self.memory.get(self._key(task.kind, f)).observe(task.task_id, x, plateau_mb, None)

    def observe_failure(self, task: TaskRequest, allocated_mb: float) -> None:
        """A job ran out of its ``allocated_mb``: censored observation, escalate the next try."""
        self._chosen.pop(task.kind, None)
        self._launched.pop(task.task_id, None)
        self._failed_at[task.task_id] = max(float(allocated_mb), self._failed_at.get(task.task_id, 0.0))
        for f, x in self._each_feature(task):
            self.memory.get(self._key(task.kind, f)).observe_censored(task.task_id, x, allocated_mb)

    # -- prediction ---------------------------------------------------------------------------
    def _register(self, tasks: Iterable[TaskRequest]) -> None:
        for t in tasks:
            seen = self._seen.setdefault(t.kind, {})
            if t.task_id in seen:
                continue
            seen[t.task_id] = t
            self._chosen.pop(t.kind, None)
            for f in self.candidates[1:]:
                if self._x(t, f) is None:
                    self._missing.setdefault(t.kind, set()).add(f)
            for f, x in self._each_feature(t):
                reg = self.memory.get(self._key(t.kind, f))
                reg.expected_tasks = len(seen)
                reg.prior_is_feature = f == "prior"
                reg.priors_are_bounds = t.prior_is_bound
                if self.config.use_prior and t.prior_mb is not None:
                    reg.add_prior(t.task_id, x, t.prior_mb)
                if t.prior_runtime_s is not None:
                    self.runtime.get(self._key(t.kind, f)).add_prior(t.task_id, x, t.prior_runtime_s)

    def _trained(self, kind: str) -> bool:
        reg = self.memory.get(kind)
        if reg.has_prior():
            return True
        needed = max(1, min(self.config.init_tasks, len(self._seen.get(kind, {}))))
        return reg.n_observed >= needed

    def predicted_runtime(self, task: TaskRequest) -> float | None:
        return self._runtimes(task.kind, [task])[0]

    def _allocations(self, kind: str, tasks: list[TaskRequest]) -> tuple[list[float], list[float]]:
        """Vectorised allocation_for for many jobs of one type."""
        f, reg = self._mem_reg(kind)
        xs = [self._x(t, f) for t in tasks]
        points = reg.predict_many(xs)
        # The allocation may extrapolate conservatively; the point prediction (the knapsack's
        # value, the launch prediction residuals are measured against) stays the fit's.
        sized = self._extrapolated(reg, xs, points) if self.config.extrapolate and not reg.has_prior() else points
        if self.config.pooled_reserve_z is not None:
            mems = sized.copy()
        else:
            add, frac = reg.margin()
            mems = sized * (1.0 + frac) + add
        out = []
        for t, m in zip(tasks, mems.tolist()):
            failed = self._failed_at.get(t.task_id)
            if t.cap_mb is not None and failed is None and kind not in self._cap_exceeded:
                # A calibrated prior already covers its level: learning may lower the allocation
                # below it, the margin does not lift it above. A failure, or any job of this type
                # that really needed more than its own cap, lifts the cap.
                m = min(m, float(t.cap_mb))
            if failed is not None:
                m = max(m, self.config.escalation * failed)
            if t.min_mb is not None:
                m = max(m, float(t.min_mb))
            # Never zero or negative (a fit through odd data); never more than the whole budget.
            out.append(min(max(m, 1e-6 * self.capacity.mem_mb), self.capacity.mem_mb))
        return out, points.tolist()

    def _extrapolated(self, reg: OnlineRamRegressor, xs, points):
        """Above the largest observed size a fit of a few small jobs says little: predict at least
        the largest observed peak scaled by (x / its size)^e, e the local log-log slope clamped to
        [1, 2] (2 while only one size is known), and e = 2 beyond ``ladder`` x that size, so
        neither a quadratic law nor a line through two close, noisy jobs underestimates big jobs.
        A rule whose pinned fit hardly grows with size (:func:`_flat_exponent`) is scaled by the
        fit's own exponent instead up to the reach (quadratically beyond it, like any law). ``xs``: sizes (a list with None for unknown, or an array with NaN: ready_jobs' rows)."""
        front = reg.frontier()
        if front is None or front[0] <= 0:
            return points
        x1, y1, slope = front
        x = np.asarray([np.nan if v is None else v for v in xs] if not isinstance(xs, np.ndarray) else xs, dtype=float)
        above = x > x1  # NaN (unknown size) compares False
        if not above.any():
            return points
        e = 2.0 if slope is None else min(max(slope, 1.0), 2.0)
        flat = _flat_exponent(reg, x1)
        if flat is not None:
            e = flat  # memory that does not grow with size is not extrapolated as if it did
        # Beyond the reach nothing is known, flat or not: a law flat over the measured sizes may
        # still turn up (a fixed overhead hiding a term in size^2: 100 + 0.004 L^2 looks flat up
        # to 80 Mbp and is 3.5x that at 249), so it is extrapolated quadratically there too.
        reach = self.config.ladder * x1 if self.config.ladder > 1 else math.inf
        near = np.minimum(x, reach)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = y1 * (near / x1) ** e * (x / near) ** 2
        return np.where(above, np.maximum(points, bound), points)

    # -- cold start of job types without a prior ----------------------------------------------
    def needs_probe(self, kind: str) -> bool:
        """Probe mode: a job type with no prior and no measured job is not packed yet."""
        reg = self.memory.get(kind)
        return self.config.cold_start == "probe" and not reg.has_prior() and reg.n_observed == 0

    def _size(self, t: TaskRequest) -> float:
        return t.size_hint if t.size_hint is not None else self._feature(t)

    def _probe(self, untrained: dict[str, list[TaskRequest]], free_mem: float, running) -> list[Allocation] | None:
        """Start the smallest job of one unprobed type with all free memory; None = nothing to
        start now (a probe runs, or too little is free: running jobs drain first)."""
        probing = {r.task.kind for r in running if self.needs_probe(r.task.kind)}
        if probing:
            return None
        kind = sorted(untrained)[0]
        first = min(untrained[kind], key=lambda t: (self._size(t), t.task_id))
        failed = self._failed_at.get(first.task_id)
        need = self.config.escalation * failed if failed is not None else 0.0
        enough = free_mem >= max(need, self.config.probe_free_fraction * self.capacity.mem_mb)
        if running and not enough:
            return None
        if free_mem <= 0 or free_mem < min(need, self.capacity.mem_mb):
            return None
        alloc = Allocation(first, min(free_mem, self.capacity.mem_mb), None, self.predicted_runtime(first))
        self._launched[first.task_id] = alloc
        return [alloc]

    def _runtimes(self, kind: str, tasks: list[TaskRequest]) -> list[float | None]:
        f = self.chosen_feature(kind)
        reg = self.runtime.get(self._key(kind, f))
        xs = [self._x(t, f) for t in tasks]
        if not reg.ready() or any(x is None for x in xs):
            return [t.prior_runtime_s for t in tasks]
        return reg.predict_many(xs).tolist()

    def allocation_for(self, task: TaskRequest) -> tuple[float, float]:
        """(memory to give, point prediction) for a job whose type has a trained regressor."""
        mems, points = self._allocations(task.kind, [task])
        return mems[0], points[0]

    # -- selection ----------------------------------------------------------------------------
    def _check_feasible(self, task: TaskRequest) -> None:
        cap = self.capacity
        if cap.cores is not None and task.cores > cap.cores:
            raise ChromoschedError(f"task {task.task_id}: needs {task.cores} cores but only {cap.cores} exist")
        if cap.gpus is not None and task.gpus > cap.gpus:
            raise ChromoschedError(f"task {task.task_id}: needs {task.gpus} GPUs but only {cap.gpus} exist")
        if task.min_mb is not None and task.min_mb > cap.mem_mb:
            raise ChromoschedError(
                f"task {task.task_id}: needs at least {task.min_mb:.6g} MB, more than the whole budget of {cap.mem_mb:.6g} MB"
            )
        failed = self._failed_at.get(task.task_id)
        if failed is not None and failed >= cap.mem_mb * (1 - 1e-9):
            raise ChromoschedError(
                f"task {task.task_id} ({task.kind}): ran out of memory with the whole budget of {cap.mem_mb:.6g} MB; "
                "it needs more memory than exists (raise the memory budget or split the job)"
            )

    def _init_order(self, tasks: list[TaskRequest], kind: str) -> list[TaskRequest]:
        def size(t: TaskRequest) -> float:
            if t.size_hint is not None:
                return t.size_hint
            if t.prior_mb is not None:
                return t.prior_mb
            return self._feature(t)

        by_size = sorted(tasks, key=lambda t: (-size(t), t.task_id))
        if self.config.init == "biggest":
            return by_size
        if self.config.init == "smallest":
            return by_size[::-1]
        # mixed: biggest, smallest, second biggest, ...; continue where the observed ones left off
        done = self.memory.get(kind).n_observed
        order, lo, hi = [], 0, len(by_size) - 1
        turn = done % 2
        while lo <= hi:
            if turn == 0:
                order.append(by_size[lo])
                lo += 1
            else:
                order.append(by_size[hi])
                hi -= 1
            turn ^= 1
        return order

    def select(
        self,
        ready: Sequence[TaskRequest],
        free: Capacity,
        running: Sequence[RunningTask] = (),
        now: float = 0.0,
    ) -> list[Allocation]:
        """Choose the jobs to start now from ``ready`` within the ``free`` resources.

        Ties keep the order of ``ready`` (after the configured priority), so pass it in a
        deterministic order (the simulator sorts by task id)."""
        ready = list(ready)
        self._register(ready)
        self._register(r.task for r in running)
        for t in ready:
            self._check_feasible(t)

        chosen: list[Allocation] = []
        free_mem = free.mem_mb
        # Job types still in their initial sequential phase: one job at a time, alone, whole budget.
        trained: list[TaskRequest] = []
        untrained: dict[str, list[TaskRequest]] = {}
        if self.config.cold_start == "probe":
            is_trained = {kind: not self.needs_probe(kind) for kind in {t.kind for t in ready}}
        else:
            is_trained = {kind: self._trained(kind) for kind in {t.kind for t in ready}}
        for t in ready:
            (trained if is_trained[t.kind] else untrained.setdefault(t.kind, [])).append(t)
        if untrained and self.config.cold_start == "probe":
            probe = self._probe(untrained, free_mem, running)
            if probe is not None:
                return probe
            if not any(self.needs_probe(r.task.kind) for r in running):
                return []  # a probe waits for memory to drain: start nothing that would delay it
        elif untrained:
            if not running:
                kind = sorted(untrained)[0]
                first = self._init_order(untrained[kind], kind)[0]
                mem = self.capacity.mem_mb
                failed = self._failed_at.get(first.task_id)
                if failed is not None:  # only possible when the budget itself was too small
                    mem = self.capacity.mem_mb
                alloc = Allocation(first, min(mem, free_mem), None, self.predicted_runtime(first))
                self._launched[first.task_id] = alloc
                return [alloc]
            if not trained:
                return []
            # Trained types may run next to a running job of another type; untrained ones wait.

        if not trained:
            return []
        items: list[PackItem] = []
        info: list[tuple[TaskRequest, float, float, float | None]] = []
        by_kind: dict[str, list[TaskRequest]] = {}
        for t in trained:
            by_kind.setdefault(t.kind, []).append(t)
        for kind, tasks in by_kind.items():
            mems, points = self._allocations(kind, tasks)
            rts = self._runtimes(kind, tasks)
            info.extend(zip(tasks, mems, points, rts))
        order = self._priority_order(info)
        info = [info[i] for i in order]
        use_area = self.config.objective == "area" and len(info) <= self.config.area_max_items
        use_area = use_area and any(rt for _, _, _, rt in info)
        for t, mem, point, rt in info:
            value = None
            # With conservative few-shot allocations the knapsack must value the memory a job
            # will really use (its point prediction), or it prefers the most inflated jobs.
            used = min(point, mem) if self.config.extrapolate else mem
            if use_area:
                value = used * max(rt or 0.0, 1e-9) ** self.config.area_power
            elif self.config.extrapolate:
                value = used
            items.append(PackItem(t.task_id, mem, t.cores, t.gpus, value))
        limits = Limits(
            mem=max(free_mem, 0.0),
            cores=free.cores,
            gpus=free.gpus,
            max_items=free.max_tasks,
        )
        explore = self._explore(info, limits, running) if self.config.cold_start == "probe" else []
        if explore:
            limits = _less(limits, [items[i] for i in explore])
            rest = [i for i in range(len(items)) if i not in set(explore)]
            picked = explore + [rest[j] for j in self._packer.select([items[i] for i in rest], limits)]
        elif self.config.pooled_reserve_z is not None:
            picked = self._select_pooled(items, info, limits, running)
        else:
            picked = self._packer.select(items, limits)
        for i in picked:
            t, mem, point, rt = info[i]
            mem = mem + self._pooled_bonus.pop(t.task_id, 0.0)
            alloc = Allocation(t, min(mem, self.capacity.mem_mb), point, rt)
            self._launched[t.task_id] = alloc
            chosen.append(alloc)
        if not chosen and not running and ready:
            # Nothing runs and nothing was chosen: with whole-budget caps this cannot happen unless
            # the free resources passed in are smaller than the job needs; never wait silently.
            need = min(items, key=lambda it: it.mem)
            raise ChromoschedError(
                f"task {need.key}: nothing is running and it still does not fit the free resources "
                f"({need.mem:.6g} MB needed, {free_mem:.6g} MB free)"
            )
        return chosen

    def _explore(self, info, limits: Limits, running) -> list[int]:
        """Job types still learning (no prior, fewer than 3 measured jobs) and with nothing
        running get their smallest ready job started first when it fits: the knapsack alone
        would leave a type of small, short jobs for the end, where its learning then costs time."""
        busy = {r.task.kind for r in running}
        mem, cores, gpus, count = limits.mem, limits.cores, limits.gpus, limits.max_items
        picks = []
        for kind in sorted({t.kind for t, *_ in info} - busy):
            reg = self.memory.get(kind)
            if reg.has_prior() or reg.n_observed >= 3:
                continue
            i = min(
                (i for i, row in enumerate(info) if row[0].kind == kind),
                key=lambda i: (self._size(info[i][0]), info[i][0].task_id),
            )
            t, m = info[i][0], info[i][1]
            if (
                m > mem
                or (cores is not None and t.cores > cores)
                or (gpus is not None and t.gpus > gpus)
                or (count is not None and count < 1)
            ):
                continue
            picks.append(i)
            mem -= m
            cores = None if cores is None else cores - t.cores
            gpus = None if gpus is None else gpus - t.gpus
            count = None if count is None else count - 1
        return picks

    def _noise_sd(self, kind: str) -> float:
        """Relative sd of one job's memory around its prediction (RMS of the residual pool)."""
        _, rel = self._mem_reg(kind)[1].residual_pool()
        return float(math.sqrt(sum(e * e for e in rel) / len(rel))) if rel else 0.5

    def _select_pooled(self, items, info, limits: Limits, running) -> list[int]:
        """Shared-memory mode: jobs get their point prediction and the packer leaves a common
        reserve of z x sd(sum of true peaks) free; independent errors partly cancel, so the
        reserve grows with the square root of the number of jobs, not linearly."""
        z = float(self.config.pooled_reserve_z)
        var_running = sum((self._noise_sd(r.task.kind) * r.mem_mb) ** 2 for r in running)
        var = [(self._noise_sd(t.kind) * point) ** 2 for t, _, point, _ in info]
        reserve = z * math.sqrt(var_running)
        picked: list[int] = []
        for _ in range(4):
            picked = self._packer.select(items, replace(limits, mem=max(limits.mem - reserve, 0.0)))
            need = z * math.sqrt(var_running + sum(var[i] for i in picked))
            if sum(items[i].mem for i in picked) + need <= limits.mem + 1e-9:
                break
            reserve = need
        # Still short: drop the least preferred picks until the reserve fits.
        picked = sorted(picked)
        while (
            picked
            and sum(items[i].mem for i in picked) + z * math.sqrt(var_running + sum(var[i] for i in picked))
            > limits.mem
        ):
            picked.pop()
        if not picked and not running and items:
            # Alone on the machine the reserve is all this job's: start the first one that fits.
            single = FirstFitPacker().select(items, replace(limits, max_items=1))
            if single:
                i = single[0]
                self._pooled_bonus[items[i].key] = min(limits.mem, items[i].mem + z * math.sqrt(var[i])) - items[i].mem
                return single
        return picked

    def _priority_order(self, info) -> list[int]:
        """Preference order for ties (knapsack) or the list order (first fit)."""
        idx = list(range(len(info)))
        if self.config.priority == "longest":
            return sorted(idx, key=lambda i: (-(info[i][3] or 0.0), -info[i][1], info[i][0].task_id))
        if self.config.priority == "biggest":
            return sorted(idx, key=lambda i: (-info[i][1], info[i][0].task_id))
        return idx

    # -- persistence --------------------------------------------------------------------------
    def save_state(self, path) -> None:
        self.memory.save(path)

    def load_state(self, path) -> None:
        self.memory = RegressorRegistry.load(path, self.config.regressor_settings())
