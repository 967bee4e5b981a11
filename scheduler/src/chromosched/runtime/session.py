"""One Snakemake run as chromosched schedules it: the plain core behind the plugin adapter.

The adapter turns Snakemake jobs into :class:`~chromosched.runtime.job_record.JobRecord` and calls
:meth:`SchedulingSession.select` on every scheduling round, then tells the session which of its jobs
finished or came back for another attempt. The session

- in **static** mode, starts chromosome jobs in the ordering table's order for K workers
  (:class:`~chromosched.runtime.static_admission.StaticAdmission`);
- in **dynamic** mode, predicts each ready job's memory (RAM prior first, then the per-rule online
  regressor), packs the ready jobs into the free memory with the knapsack (or greedy) packer of
  :class:`~chromosched.dynamic.policy.DynamicPolicy`, and writes each chosen job's memory to the
  write-once :class:`~chromosched.runtime.prediction_store.PredictionStore` *before* the job starts, so the
  rule's ``mem_mb`` (local budget, ``sbatch --mem``, Beagle's ``-Xmx``) is that same number;
- learns from finished jobs (benchmark TSV / outcome log) and failed ones (a retry is a censored
  observation and an escalated allocation), logs one line per batch, and saves the learned model
  after every update so the next run starts warm.
"""

from __future__ import annotations

import atexit
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..dynamic.critical_path import RuleRuntimes, upward_ranks
from ..dynamic.policy import Capacity, DynamicPolicy, RunningTask, TaskRequest, preset
from ..dynamic.ready_jobs import ReadyJobs, select_vectorised
from ..dynamic.size_features import chromosome_lengths, length_mbp
from ..errors import ChromoschedError
from .job_measurements import Measurement
from .job_record import JobRecord
from .prediction_store import DEFAULT_STORE, Prediction, PredictionStore
from .run_inputs import check_run_inputs, load_run_prior
from .static_admission import StaticAdmission

MODES = ("static", "dynamic")
MEMORY = "mem_mb"
SAVE_EVERY_S = 2.0  # the learned model is written at most this often (and at exit)
# A running job's reservation shrinks to KEEP x its RSS once that has stayed flat for SETTLE_S and
# for SETTLE_FRACTION of the job's age (live sampling; see SchedulingSession.shrink_reservations).
KEEP = 1.3
# Once KEEP_MIN_JOBS jobs of a rule have settled and ended, a settled job keeps KEEP_MARGIN x the
# largest growth seen after settling in that rule instead (at least KEEP_MARGIN x its plateau).
KEEP_MIN_JOBS = 3
KEEP_MARGIN = 1.05
# A shrink is made only when it frees at least this fraction of the reservation (no churn).
SHRINK_MIN = 0.05
SETTLE_S = 0.5
SETTLE_FRACTION = 0.5
# A flat RSS below this fraction of a job's point prediction, or (a probe) below this multiple of
# its first sample, is taken for its start, not its need.
PLAUSIBLE = 0.5
GROWN = 1.5
PROBE_SETTLE_S = 1.0
# Input files smaller than this in all are no size feature for an unseen rule's memory.
MIN_INPUT_MB = 1.0


@dataclass(frozen=True)
class SessionSettings:
    """The plugin's settings (``--scheduler-chromosched-<field>``), as plain values."""

    mode: str = "dynamic"
    ordering: str = "GRCh37"  # genome build name or ordering-table path (static mode; lengths in dynamic)
    workers: int | None = None  # K (static); default: the run's cores
    budget_mb: int | None = None  # default: --resources mem_mb
    prior: str | None = None  # prior JSON; default: the built-in Beagle prior
    prior_rule: str = "impute"  # the rule the prior describes
    prior_level: float | None = None  # calibration level; default: the prior file's
    packer: str = "knapsack"
    gamma_max: float | None = None  # None: the chromosched preset's
    gamma_min: float | None = None
    degree: int | None = None
    store: str = DEFAULT_STORE
    model: str = ".chromosched/model.json"
    events: str | None = ".chromosched/events.jsonl"  # one JSON line per start/finish/failure (report plots)
    critical_path: bool = False  # prefer ready jobs by HEFT upward rank (dynamic/critical_path.py)
    reserve_head: bool = False  # keep memory for the longest ready job (dynamic/head_reservation.py)
    # Added to each predicted job's memory: under a cluster executor the job's own Snakemake process
    # shares the job's --mem (its cgroup) with the tool the prediction describes.
    job_overhead_mb: int = 0
    # Rules without a calibrated prior (docs/dynamic.md): probe (smallest job first, declared
    # mem_mb trusted only once a measured job agrees) or sequential (the paper's initial phase,
    # declared mem_mb taken as the prior).
    cold_start: str = "probe"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ChromoschedError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.workers is not None and self.workers < 1:
            raise ChromoschedError(f"workers must be >= 1, got {self.workers}")
        if self.cold_start not in ("probe", "sequential"):
            raise ChromoschedError(f"cold-start must be probe or sequential, got {self.cold_start!r}")
        if self.budget_mb is not None and self.budget_mb <= 0:
            raise ChromoschedError(f"budget-mb must be positive, got {self.budget_mb}")


@dataclass
class Decision:
    """A job to start now and the memory it gets."""

    record: JobRecord
    mem_mb: int
    source: str  # prior | regressor | escalation | declared | static
    predicted_mb: float | None = None
    overhead_mb: int = 0  # part of mem_mb that is not the tool's (SessionSettings.job_overhead_mb)


@dataclass
class _Running:
    record: JobRecord
    mem_mb: int
    started: float
    predicted_runtime_s: float | None = None
    task: TaskRequest | None = None  # the policy's view of the job, kept from its selection
    overhead_mb: int = 0
    over_mb: float = 0.0  # largest live RSS seen above the allocation
    provisional: bool = False  # its plateau was learned before it ended
    given_mb: int = 0  # the mem_mb it started with (its {resources.mem_mb}); mem_mb may shrink later
    predicted_mb: float | None = None  # the point prediction it was started with (None: a probe)
    plateau_mb: float | None = None  # its settled RSS, when one was learned before it ended


def _plausible(plateau_mb: float, r: _Running, first_mb: float | None, settled_long: bool) -> bool:
    """Whether a running job's flat RSS can be its need, not its start (an interpreter, a tool
    reading its input before it allocates; under load a process can take a second to start, and
    a run once learned an interpreter's 13 MB as the need of a 75 MB rule and packed five jobs on
    it). A job with a point prediction P must sit at PLAUSIBLE x P or more. A probe (nothing
    predicted) must have grown to GROWN x its first sample, or (its first sample already held its
    memory) have stayed flat for PROBE_SETTLE_S and half its age (``settled_long``). Otherwise the
    plateau neither shrinks its reservation nor teaches its rule anything; its real peak is
    measured when it ends."""
    if r.predicted_mb is not None:
        return plateau_mb >= PLAUSIBLE * r.predicted_mb
    return (first_mb is not None and plateau_mb >= GROWN * first_mb) or settled_long


class SchedulingSession:
    def __init__(
        self,
        settings: SessionSettings,
        log: Callable[[str], None] = lambda msg: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.log = log
        self.clock = clock
        self.store = PredictionStore(settings.store)
        self.budget_mb: float | None = None
        self.running: dict[str, _Running] = {}
        self._settle_growth: dict[str, list[float]] = {}  # rule -> measured peak / plateau of settled jobs
        self._policy: DynamicPolicy | None = None
        self._static: StaticAdmission | None = None
        self._prior = None
        self._prior_checked = False
        self._prior_warned: set[str] = set()
        self._lengths = chromosome_lengths(settings.ordering, sex=False)
        self._index = {c: float(i + 1) for i, c in enumerate(self._lengths)}
        self._all_lengths = chromosome_lengths(settings.ordering)  # + chrX/chrY, for any wildcard's value
        self._unmeasured: set[str] = set()  # rules whose probe left no measurement: declared mem_mb rules them
        self.live = None  # LiveMemory of the running jobs (the adapter sets it in local runs)
        # rule -> largest size at which a measured job needed at most its declared mem_mb (None once
        # any job needed more): the declared number caps only jobs up to that size.
        self._declared_agrees: dict[str, float | None] = {}
        self._started = False
        self._ready = ReadyJobs()  # replaced in begin() by one that knows the policy's features
        self._saved_at = -math.inf
        self._runtimes = RuleRuntimes()
        self._dag: tuple[dict[str, str], dict[str, list[str]]] | None = None
        self._size_of: dict[str, float] = {}
        self._done: set[str] = set()
        self._ranks_stale = False
        self._ranks: dict[str, float] = {}  # uid -> upward rank, as last computed
        self._save_cost = 0.0
        self._unsaved = False

    # -- set-up ---------------------------------------------------------------------------------
    def begin(self, total: Mapping[str, float], expected: Sequence[JobRecord] = ()) -> None:
        """Called once with the run's total resources (``mem_mb``, ``_cores``, ...)."""
        if self._started:
            return
        self._started = True
        budget = self.settings.budget_mb or total.get(MEMORY)
        # Without a stated total (only the free amount of the first round), the budget may grow.
        self._budget_fixed = bool(self.settings.budget_mb) or bool(total.get("_total_known"))
        if budget is None or not math.isfinite(budget) or budget >= 2**62:
            self._budget_fixed = True
            budget = _machine_memory_mb()
            self.log(f"no --resources mem_mb and no budget-mb: budgeting {budget} MB (90% of this machine's memory)")
        self.budget_mb = float(budget)
        # Every plugin input (settings, prior, ordering table, budget) before anything is written or run.
        source = (
            "budget-mb" if self.settings.budget_mb else ("--resources mem_mb" if total.get(MEMORY) else "this machine")
        )
        inputs = check_run_inputs(self.settings, self.budget_mb, expected, self.log, budget_source=source)
        self._prior, self._prior_checked = inputs.prior, self.settings.mode == "dynamic"
        moved = self.store.archive()
        if moved is not None:
            self.log(f"previous run's predictions moved to {moved}")
        if self.settings.events and os.path.exists(self.settings.events):
            os.replace(self.settings.events, self.settings.events + ".previous")
        self._event("begin", mode=self.settings.mode, budget_mb=self.budget_mb)
        if self.settings.mode == "static":
            source, table = self.settings.ordering, inputs.ordering_table  # loaded by check_run_inputs
            cores = total.get("_cores")
            cores = int(cores) if cores and cores < 2**62 else 1
            workers = self.settings.workers or cores
            order = table.order_for(workers)  # row(K) answers K above the chromosome count too
            self._event("ordering", table=source, workers=workers, order=list(order))  # for chromosched report
            self._static = StaticAdmission(order, workers)
            self._static.expect(expected)
            self.log(
                f"static mode: K={workers}, order {' '.join(order)} (table {source}: peak {table.peak_for(workers):.2f} "
                f"{table.metadata.get('memory_unit', '')} for the full set)"
            )
        else:
            config = preset("chromosched-probe" if self.settings.cold_start == "probe" else "chromosched")
            overrides = {"feature": "size", "packer": self.settings.packer}
            if self.settings.cold_start == "probe":
                overrides["alt_features"] = ("length", "input", "prior")
            for name in ("gamma_max", "gamma_min", "degree"):
                value = getattr(self.settings, name)
                if value is not None:
                    overrides[name] = value
            config = replace(config, **{k: v for k, v in overrides.items() if hasattr(config, k)})
            capacity = Capacity(
                mem_mb=self.budget_mb,
                cores=_maybe_int(total.get("_cores")),
                gpus=_maybe_int(total.get("gpu")),
            )
            self._policy = DynamicPolicy(config, capacity)
            model = Path(self.settings.model)
            if model.is_file():
                try:
                    self._policy.load_state(model)
                    self.log(f"dynamic mode: warm start from {model}")
                except Exception as err:  # a stale or foreign model must not stop the run
                    self.log(f"dynamic mode: ignoring unreadable model {model} ({err})")
            # The RAM prior's estimate is already conservative (calibrated at its level): no extra
            # early margin on top of it while few of the rule's jobs are known.
            self._policy.memory.configure(self.settings.prior_rule, default_margin=0.0)
            self._ready = ReadyJobs(self._policy.candidates, self._task, self._policy._x, self._unmanaged)
            if self.settings.critical_path:
                try:
                    self._runtimes = RuleRuntimes.load(self._runtimes_path())
                except ChromoschedError as err:
                    self.log(f"critical path: ignoring {err}")
            overhead = (
                f", {self.settings.job_overhead_mb} MB per job for its own Snakemake"
                if self.settings.job_overhead_mb
                else ""
            )
            self.log(f"dynamic mode: budget {self.budget_mb:.0f} MB, packer {config.packer}{overhead}")

    # -- selection ------------------------------------------------------------------------------
    def set_dag(
        self,
        rule_of: Mapping[str, str],
        depends_on: Mapping[str, Sequence[str]],
        chrom_of: Mapping[str, str | None] | None = None,
    ) -> None:
        """The workflow's jobs (uid -> rule), what each depends on and each job's chromosome (its
        size for runtime predictions), for critical-path ranks."""
        self._dag = (dict(rule_of), {k: list(v) for k, v in depends_on.items()})
        self._size_of = {uid: self._lengths[c] / 1e6 for uid, c in (chrom_of or {}).items() if c in self._lengths}
        self._ranks_stale = True

    def _update_ranks(self) -> None:
        if not self._ranks_stale or self._dag is None:
            return
        self._ranks_stale = False
        rule_of, depends_on = self._dag
        left = {uid: rule for uid, rule in rule_of.items() if uid not in self._done}
        predict = self._runtimes.predict
        runtime_of_job = {}
        for uid, rule in left.items():
            value = predict(rule, self._size_of.get(uid))
            if value is not None:
                runtime_of_job[uid] = value
        self._ranks = upward_ranks(left, depends_on, {}, self._runtimes.default(), runtime_of_job)
        self._ready.set_ranks(self._ranks)

    def _runtimes_path(self) -> str:
        return str(self.settings.model) + ".runtimes.json"

    def update_ready(self, added: Iterable[JobRecord] = (), removed: Iterable[str] = ()) -> None:
        """Tell the session which jobs became ready (or came back with a new attempt) and which
        uids are no longer ready; per-job work is done here, once, not in every round."""
        for uid in removed:
            self._ready.remove(uid)
        new = []
        for record in added:
            self._ready.add(record)
            # A job becoming ready changes no rank (ranks look at what follows a job): it takes its own.
            self._ready.set_rank(record.uid, self._ranks.get(record.uid))
            task = self._ready.tasks[self._ready.slot_of[record.uid]]
            if task is not None:
                new.append(task)
        if new and self._policy is not None:
            self._policy._register(new)

    def _refresh_rule(self, rule: str, sizes: tuple[float | None, float | None] | None = None) -> None:
        """Build the ready rows of ``rule`` again: a job's request depends on what was learned
        since it became ready (a probe that measured nothing, a declared mem_mb a measured job
        agreed with). All its rows, or with ``sizes`` = (old, new) agreed size bound only those
        whose size lies between the two (their cap changes)."""
        table = self._ready
        if sizes is not None:
            kind = table.kind_id.get(rule)
            column = "x:" + self._policy.config.feature if self._policy is not None else ""
            if kind is None or not table.has_column(column):
                return
            lo, hi = sorted(-math.inf if v is None else float(v) for v in sizes)
            slots = table.slots()
            x = table.column(column)[slots]
            slots = slots[(table.column("kind")[slots] == kind) & (x > lo) & (x <= hi)]
            if rule not in self._unmeasured:
                # Only the cap of its unseen-rule requests (no prior) changes: set it in place,
                # as _unseen_cap would (thousands of rows may cross at once: over the columns).
                slots = slots[table.column("storable")[slots] & ~table.column("has_prior")[slots]]
                if not table.has_column("x:size"):  # no size column: one request at a time
                    for slot in slots.tolist():
                        task = table.tasks[slot]
                        if task is not None:
                            table.set_cap(slot, self._unseen_cap(table.records[slot], task.features["size"]))
                    return
                upto = self._declared_agrees.get(rule)
                declared = table.column("declared")[slots]
                agreed = ~np.isnan(declared) & (table.column("x:size")[slots] <= (-np.inf if upto is None else upto))
                table.set_caps(slots, np.where(agreed, declared, np.nan))
                return
        else:
            slots = np.array([s for s in table.slot_of.values() if table.records[s].rule == rule], dtype=np.int64)
        tasks = []
        for slot in slots.tolist():
            record = table.records[slot]
            table.add(record)
            table.set_rank(record.uid, self._ranks.get(record.uid))
            if table.tasks[slot] is not None:
                tasks.append(table.tasks[slot])
        if tasks and self._policy is not None:
            self._policy._register(tasks)

    def select(
        self,
        ready: Sequence[JobRecord],
        free: Mapping[str, float],
        admit: Callable[[Decision], bool] = lambda decision: True,
    ) -> list[Decision]:
        """The jobs to start now from exactly ``ready`` (see :meth:`select_ready`)."""
        ready = list(ready)
        uids = {r.uid for r in ready}
        removed = [u for u in self._ready.slot_of if u not in uids]
        added = [
            r
            for r in ready
            if r.uid not in self._ready.slot_of or self._ready.records[self._ready.slot_of[r.uid]] is not r
        ]
        self.update_ready(added, removed)
        return self.select_ready(free, admit)

    def select_ready(
        self,
        free: Mapping[str, float],
        admit: Callable[[Decision], bool] = lambda decision: True,
    ) -> list[Decision]:
        """The jobs to start now from the ready set (:meth:`update_ready`). ``admit`` is the
        caller's last word on each decision (its own resource accounting); a refused decision is
        dropped and does not enter the ledger. Started jobs leave the ready set."""
        if not len(self._ready):
            return []
        if self._static is not None:
            running = [r.record for r in self.running.values()]
            chosen = [
                Decision(r, int(r.declared_mem_mb or 0), "static")
                for r in self._static.select(self._ready_records(), running, free)
            ]
        else:
            chosen = self._select_dynamic(free)
        chosen = [d for d in chosen if admit(d)]
        if self._static is not None:
            self._static.confirm([d.record for d in chosen])
        now = self.clock()
        for d in chosen:
            slot = self._ready.slot_of.get(d.record.uid)
            task = self._ready.tasks[slot] if slot is not None else None
            self._ready.remove(d.record.uid)
            self.running[d.record.uid] = _Running(
                d.record,
                d.mem_mb,
                now,
                task=task,
                overhead_mb=d.overhead_mb,
                given_mb=d.mem_mb,
                predicted_mb=d.predicted_mb,
            )
            self._event(
                "start",
                uid=d.record.uid,
                rule=d.record.rule,
                wildcards=dict(d.record.wildcards),
                attempt=d.record.attempt,
                mem_mb=d.mem_mb,
                source=d.source,
                predicted_mb=d.predicted_mb,
            )
        if chosen:
            used = sum(r.mem_mb for r in self.running.values())
            jobs = ", ".join(f"{d.record.label} {d.mem_mb} MB ({d.source})" for d in chosen)
            self.log(
                f"start {len(chosen)} job(s): {jobs}; batch {sum(d.mem_mb for d in chosen)} MB, "
                f"running {used} of {self.budget_mb:.0f} MB, free {self.budget_mb - used:.0f} MB"
            )
        return chosen

    def _ready_slots(self) -> np.ndarray:
        """Ready rows in uid order (the deterministic order ties and first fit follow)."""
        slots = self._ready.slots()
        return slots[np.argsort(self._ready.column("order")[slots], kind="stable")]

    def _ready_records(self) -> list[JobRecord]:
        return [self._ready.records[s] for s in self._ready_slots().tolist()]

    def _unmanaged(self, record: JobRecord) -> bool:
        # Jobs that state no memory at all (aggregators like `all`; Snakemake does not budget them
        # either) are not predicted: they start whenever cores allow, after the packed ones.
        if record.declared_mem_mb:
            return False
        if self.settings.cold_start == "probe":
            # Every rule is managed (learned from measured peaks); only job objects without a rule
            # (no stable identity to learn under) and rules whose probe left no measurement are
            # left to the cores.
            return not record.storable or record.rule in self._unmeasured
        return not (record.rule == self.settings.prior_rule and record.prior_features)

    def _select_dynamic(self, free: Mapping[str, float]) -> list[Decision]:
        assert self._policy is not None and self.budget_mb is not None
        table = self._ready
        slots = table.slots()  # the array path orders them itself; the per-job paths below sort
        # A job whose mem_mb is its own is budgeted by Snakemake at that value: offer it only when
        # its declared resources fit now, and never give it less than it declares.
        fixed = table.column("fixed")[slots]
        if fixed.any():
            fits = np.ones(len(slots), dtype=bool)
            for k, v in free.items():
                if k != "_job_count":
                    fits &= table.resource(k)[slots] <= v
            slots = slots[~fixed | fits]
        unmanaged_rows = table.column("unmanaged")[slots]
        unmanaged = slots[unmanaged_rows]
        managed = slots[~unmanaged_rows]
        # With none of this run's jobs running, memory the live sampler cannot attribute to a job
        # (Snakemake's own helpers) will not be freed by waiting: it does not hold the next start
        # (a job sized at the whole budget would otherwise never fit and the run would stop).
        ledger = self._in_use() if self.running else 0.0
        if not self._budget_fixed and MEMORY in free and free[MEMORY] + ledger > self.budget_mb:
            self.budget_mb = float(free[MEMORY] + ledger)
            self._policy.capacity = replace(self._policy.capacity, mem_mb=self.budget_mb)
        free_mem = self.budget_mb - ledger
        if MEMORY in free:
            free_mem = min(free_mem, float(free[MEMORY]))
        capacity = Capacity(
            mem_mb=max(free_mem, 0.0),
            cores=_maybe_int(free.get("_cores")),
            gpus=_maybe_int(free.get("gpu")),
            max_tasks=_maybe_int(free.get("_job_count")),
        )
        running = [
            RunningTask(r.task or self._task(r.record), r.mem_mb, r.started, r.predicted_runtime_s)
            for r in self.running.values()
        ]
        # Every other numeric resource of --resources is packed too (gpu_mem_mb, disk_mb...): a job
        # that does not declare one uses 0 of it; one not in --resources is not constrained.
        other = {k: float(v) for k, v in free.items() if k not in (MEMORY, "_cores", "gpu", "_job_count")}
        allocations = None
        if self.settings.critical_path:
            self._update_ranks()
        if len(managed):
            allocations = select_vectorised(
                self._policy,
                table,
                managed,
                capacity,
                running,
                other,
                use_rank=self.settings.critical_path,
                now=self.clock() if self.settings.reserve_head else None,
            )
        packed_other = allocations is not None
        if allocations is None:
            managed = managed[np.argsort(table.column("order")[managed], kind="stable")]
            tasks = [table.tasks[s] for s in managed.tolist()]
            allocations = self._policy.select(tasks, capacity, running, now=self.clock()) if tasks else []
        decisions = []
        n_observed: dict[str, int] = {}
        for alloc in allocations:
            record = table.records[table.slot_of[alloc.task.task_id]]
            if not packed_other:
                # The policy's own path packs memory, cores and GPUs: other resources first fit.
                if any(record.resources.get(k, 0) > v for k, v in other.items()):
                    continue
            for k in other:
                other[k] -= record.resources.get(k, 0)
            # The overhead never pushes a job that fits alone out of the free memory (the adapter's
            # admit() refuses packed jobs that no longer fit; they wait for the next round).
            mem = int(math.ceil(alloc.mem_mb))
            overhead = min(max(int(self.settings.job_overhead_mb), 0), max(int(free_mem) - mem, 0))
            mem += overhead
            if record.attempt > 1:
                source = "escalation"
            elif alloc.predicted_mb is None:
                source = "whole-budget"  # the paper's initial sequential phase (no prior, nothing learned)
            else:
                observed = n_observed.get(record.rule)
                if observed is None:
                    observed = n_observed[record.rule] = self._policy.memory.get(record.rule).n_observed
                source = "regressor" if observed else ("prior" if alloc.task.prior_mb is not None else "regressor")
            if record.storable:
                stored = self.store.put_once(
                    Prediction(
                        record.rule,
                        dict(record.wildcards),
                        record.attempt,
                        mem,
                        alloc.predicted_runtime_s,
                        source,
                        overhead_mb=overhead,
                    )
                )
                mem, overhead = stored.mem_mb, stored.overhead_mb
            decisions.append(Decision(record, mem, source, alloc.predicted_mb, overhead))
        cores = free.get("_cores")
        jobs = free.get("_job_count")
        for d in decisions:
            cores = None if cores is None else cores - d.record.cores
            jobs = None if jobs is None else jobs - 1
        unmanaged = unmanaged[np.argsort(table.column("order")[unmanaged], kind="stable")]
        fewest = int(table.column("cores")[unmanaged].min()) if len(unmanaged) else 0
        for slot in unmanaged.tolist():
            if (cores is not None and cores < fewest) or (jobs is not None and jobs < 1):
                break
            record = table.records[slot]
            if cores is not None and record.cores > cores:
                continue
            if any(record.resources.get(k, 0) > v for k, v in other.items()):
                continue
            cores = None if cores is None else cores - record.cores
            jobs = None if jobs is None else jobs - 1
            for k in other:
                other[k] -= record.resources.get(k, 0)
            decisions.append(Decision(record, 0, "unmanaged"))
        return decisions

    def _in_use(self) -> float:
        """Memory taken by the running jobs: their allocations, or with live sampling the measured
        total plus each job's predicted growth up to its allocation (a job above its allocation
        counts at its measured size plus 10 %, and teaches its rule that it needs more)."""
        if self.live is None:
            return float(sum(r.mem_mb for r in self.running.values()))
        rss, unattributed = self.live.snapshot()
        total = float(unattributed)
        for uid, r in self.running.items():
            now = rss.get(uid, 0.0)
            if now > r.mem_mb * 1.05:
                total += now * 1.1
                if now > r.over_mb:
                    r.over_mb = now
                    if self._policy is not None:
                        self._policy.observe_running(r.task or self._task(r.record), now)
                        self.log(f"{r.record.label} uses {now:.0f} MB, more than its {r.mem_mb} MB (live)")
            else:
                total += r.mem_mb
                plateau = self.live.settled(uid, fraction=SETTLE_FRACTION)
                if plateau is not None and not self._plausible(uid, r, plateau):
                    plateau = None
                if plateau is not None and not r.provisional and self._policy is not None:
                    # Its memory has plateaued below its allocation: learn it now (the real peak
                    # replaces it when the job ends), so bigger jobs of its rule need not wait.
                    r.provisional = True
                    r.plateau_mb = plateau
                    self._policy.observe_provisional(r.task or self._task(r.record), plateau)
        return total

    def shrink_reservations(self, apply: Callable[[str, int], bool]) -> None:
        """Live sampling: a running job whose RSS has been flat for ``SETTLE_S`` (and for
        ``SETTLE_FRACTION`` of its age) while its
        reservation is more than ``KEEP`` x that plateau (a probe, started with all the free memory;
        a few-shot job sized conservatively) keeps ``KEEP`` x the plateau (the rule's learned
        factor once its jobs have shown how much they grow after settling: :meth:`_keep_factor`),
        and the rest is released
        (``apply(uid, new_mem_mb)`` re-budgets the job where Snakemake accounts it; False leaves it
        as it was). Its plateau is learned at once, so its rule's next jobs are packed into the
        released memory instead of waiting for it to end. A job that grows again is seen by the
        guard in :meth:`_in_use` (RSS above its reservation holds further starts)."""
        if self.live is None or self._policy is None:
            return
        for uid, r in self.running.items():
            shrink = self._shrinkable(uid, r)
            if shrink is None:
                continue
            plateau, keep = shrink
            if not apply(uid, keep):
                continue
            self.log(
                f"{r.record.label} settled at {plateau:.0f} MB: its reservation shrinks from "
                f"{r.mem_mb} to {keep} MB (live)"
            )
            self._event(
                "shrink",
                uid=uid,
                rule=r.record.rule,
                wildcards=dict(r.record.wildcards),
                mem_mb=keep,
                was_mb=r.mem_mb,
                plateau_mb=plateau,
            )
            r.mem_mb = keep
            r.plateau_mb = plateau
            if not r.provisional:
                r.provisional = True
                self._policy.observe_provisional(r.task or self._task(r.record), plateau)

    def _shrinkable(self, uid: str, r) -> tuple[float, int] | None:
        """(plateau MB, the reservation to keep) when running job ``uid`` may shrink now, else None."""
        if r.over_mb:
            return None
        plateau = self.live.settled(uid, window_s=SETTLE_S, fraction=SETTLE_FRACTION)
        if plateau is None or not self._plausible(uid, r, plateau):
            return None
        keep = int(math.ceil(max(plateau * self._keep_factor(r.record.rule), plateau + 1.0))) + r.overhead_mb
        return None if keep > (1.0 - SHRINK_MIN) * r.mem_mb else (plateau, keep)

    def _keep_factor(self, rule: str) -> float:
        """How far above its plateau a settled job of ``rule`` keeps its reservation: KEEP until
        KEEP_MIN_JOBS of the rule's jobs have shown how much they still grow after settling
        (their measured peak over their plateau), then KEEP_MARGIN x the largest such growth. A
        rule whose jobs hold a level (a tool with a fixed footprint) releases nearly all it does
        not use; one whose jobs grew again keeps more than KEEP."""
        growth = self._settle_growth.get(rule, ())
        if len(growth) < KEEP_MIN_JOBS:
            return KEEP
        return KEEP_MARGIN * max(max(growth), 1.0)

    def _plausible(self, uid: str, r: _Running, plateau: float) -> bool:
        settled_long = (
            r.predicted_mb is None
            and self.live.settled(uid, window_s=PROBE_SETTLE_S, fraction=SETTLE_FRACTION) is not None
        )
        return _plausible(plateau, r, self.live.first_sample(uid), settled_long)

    def shrink_due(self) -> set[str]:
        """The running jobs whose reservations could shrink now (asked from the sampler's thread,
        so that the adapter can wake Snakemake's scheduling loop instead of waiting for its next
        round: a shrink frees memory only when select_jobs runs)."""
        if self.live is None or self._policy is None:
            return set()
        try:
            running = list(self.running.items())
        except RuntimeError:  # changed by the main thread meanwhile: ask again at the next sample
            return set()
        return {uid for uid, r in running if self._shrinkable(uid, r) is not None}

    def _task(self, record: JobRecord) -> TaskRequest:
        features: dict[str, float] = {}
        prior_mb = self._prior_mb(record)
        calibrated = (
            prior_mb is not None
            and record.rule == self.settings.prior_rule
            and bool(record.prior_features)
            and self._prior is not None
        )
        if (
            not calibrated
            and self.settings.cold_start == "probe"
            and record.storable
            and record.rule not in self._unmeasured
        ):
            return self._unseen_task(record)
        if calibrated:
            # A calibrated RAM prior already knows what drives memory (markers, samples, window)
            # and is conservative at its level: regress the real need on the prior's own estimate,
            # so the first jobs get exactly that estimate and later ones a learned correction of it.
            features["size"] = prior_mb
            features["index"] = self._index.get(record.chrom, 0.0)
        elif record.chrom is not None and record.chrom in self._lengths:
            # Chromosome jobs: memory grows with the chromosome (the paper regresses on the index).
            features["size"] = self._lengths[record.chrom] / 1e6
            features["index"] = self._index[record.chrom]
        elif record.declared_mem_mb:
            # Other jobs: the rule's own statement of need is the best size we have; the regressor
            # learns how it maps to what the jobs really use.
            features["size"] = float(record.declared_mem_mb)
        else:
            features["size"] = float(record.input_mb)
        return TaskRequest(
            task_id=record.uid,
            kind=record.rule,
            features=features,
            size_hint=prior_mb if prior_mb is not None else features["size"],
            prior_mb=prior_mb,
            min_mb=float(record.declared_mem_mb) if record.fixed_mem and record.declared_mem_mb else None,
            # The prior (a calibrated estimate, or else the rule's declared mem_mb: what Snakemake
            # would give) is the most a job gets until a job of its rule is seen to need more, or fails.
            cap_mb=prior_mb,
            prior_is_bound=not calibrated and prior_mb is not None,
            cores=max(0, int(record.cores)),
            gpus=max(0, int(record.gpus)),
        )

    def _unseen_task(self, record: JobRecord) -> TaskRequest:
        """A job of a rule without a calibrated prior. Its declared mem_mb is no estimate: the rule
        is probed before it is packed, and the declared number caps allocations only once every
        measured job of the rule needed at most that (a too-high number then never binds below
        the prediction, because the prediction becomes the job's mem_mb)."""
        features = self._unseen_features(record)
        declared = float(record.declared_mem_mb) if record.declared_mem_mb else None
        return TaskRequest(
            task_id=record.uid,
            kind=record.rule,
            features=features,
            size_hint=features["size"],
            prior_mb=None,
            min_mb=declared if record.fixed_mem and declared else None,
            cap_mb=self._unseen_cap(record, features["size"]),
            cores=max(0, int(record.cores)),
            gpus=max(0, int(record.gpus)),
        )

    def _unseen_features(self, record: JobRecord) -> dict[str, float]:
        """Size features of a job of an unseen rule: chromosome length, input MB, and ``size`` (the
        length when there is one, else the input size). Inputs under ``MIN_INPUT_MB`` are no size
        feature: flags and small tables (a few bytes that differ by one digit) say nothing about
        memory, and a regression on them fits noise (a rule reading its upstream rule's small
        outputs was once predicted at a third of its need that way)."""
        features: dict[str, float] = {}
        length = length_mbp(record.wildcards, self._all_lengths)
        if length is not None:
            features["length"] = length
        if record.input_mb >= MIN_INPUT_MB:
            features["input"] = float(record.input_mb)
        features["size"] = features.get("length", features.get("input", 1.0))
        return features

    def _unseen_cap(self, record: JobRecord, size: float) -> float | None:
        """The declared mem_mb as a cap, only up to the size at which measured jobs agreed with it."""
        upto = self._declared_agrees.get(record.rule)
        if not record.declared_mem_mb or upto is None or size > upto:
            return None
        return float(record.declared_mem_mb)

    def _prior_mb(self, record: JobRecord) -> float | None:
        """Prior memory (MB): the RAM prior for its rule, else the rule's declared mem_mb."""
        if record.rule == self.settings.prior_rule and record.prior_features:
            prior = self.ram_prior()
            if prior is not None:
                try:
                    return prior_job_mem_mb(prior, record.prior_features, self.settings.prior_level)
                except (ChromoschedError, TypeError, KeyError, ValueError) as err:
                    if record.rule not in self._prior_warned:
                        self._prior_warned.add(record.rule)
                        self.log(f"prior not used for {record.label}: {err}")
        return float(record.declared_mem_mb) if record.declared_mem_mb else None

    def ram_prior(self):
        """The RAM prior, loaded once. A prior the user named must load (a clear error otherwise);
        without one, the built-in Beagle prior is used when it is there."""
        if not self._prior_checked:
            self._prior_checked = True
            self._prior = load_run_prior(self.settings, self.log)
        return self._prior

    # -- learning -------------------------------------------------------------------------------
    def finished(self, uid: str, measurement: Measurement | None) -> None:
        entry = self.running.pop(uid, None)
        if entry is not None:
            self._event(
                "finish",
                uid=uid,
                rule=entry.record.rule,
                wildcards=dict(entry.record.wildcards),
                mem_mb=entry.mem_mb,
                need_mb=None if measurement is None else measurement.need_mb,
                runtime_s=None if measurement is None else measurement.runtime_s,
                measured_by=None if measurement is None else measurement.source,
            )
        if entry is not None:
            self._done.add(uid)
            self._ranks_stale = self._dag is not None
        if (
            measurement is None
            and entry is not None
            and self._policy is not None
            and entry.record.storable
            and self.settings.cold_start == "probe"
            and entry.record.rule not in self._unmeasured
            and self._policy.needs_probe(entry.record.rule)
        ):
            # Nothing to learn from (no benchmark file, no outcome log, too short for the live
            # sampler): probing every job would run the rule one job at a time for nothing.
            self._unmeasured.add(entry.record.rule)
            self._policy.forget_tasks(entry.record.rule)
            self._refresh_rule(entry.record.rule)  # its ready jobs' requests (and managed-ness) change
            self.log(
                f"rule {entry.record.rule}: its probe job left no measurement (add a benchmark: file); "
                "its jobs are budgeted at their declared mem_mb from now on"
            )
        if entry is None or self._policy is None or measurement is None:
            return
        if entry.plateau_mb and measurement.need_mb > 0:
            self._settle_growth.setdefault(entry.record.rule, []).append(measurement.need_mb / entry.plateau_mb)
        if self.settings.critical_path and measurement.runtime_s is not None:
            chrom = entry.record.chrom
            self._runtimes.observe(
                entry.record.rule, measurement.runtime_s, self._lengths[chrom] / 1e6 if chrom in self._lengths else None
            )
            self._ranks_stale = self._dag is not None
        declared = entry.record.declared_mem_mb
        if declared and self.settings.cold_start == "probe":
            rule, size = entry.record.rule, self._unseen_features(entry.record)["size"]
            before = self._declared_agrees.get(rule)
            if measurement.need_mb > float(declared):
                self._declared_agrees[rule] = None
            elif rule not in self._declared_agrees or self._declared_agrees[rule] is not None:
                self._declared_agrees[rule] = max(size, self._declared_agrees.get(rule) or 0.0)
            after = self._declared_agrees.get(rule)
            if after != before:
                # Ready jobs whose size crossed the agreed bound get their cap (or lose it).
                self._refresh_rule(rule, sizes=(before, after))
        self._policy.observe_success(self._task(entry.record), measurement.need_mb, measurement.runtime_s)
        self.log(
            f"learned {entry.record.label}: {measurement.need_mb:.0f} MB ({measurement.source}) "
            f"vs {entry.mem_mb} MB given"
        )
        self._save()

    def failed(self, uid: str, oom: bool | None) -> None:
        """A job came back for another attempt. ``oom``: True/False when known, None when not."""
        entry = self.running.pop(uid, None)
        if entry is not None:
            self._event(
                "fail",
                uid=uid,
                rule=entry.record.rule,
                wildcards=dict(entry.record.wildcards),
                attempt=entry.record.attempt,
                mem_mb=max(entry.given_mb, entry.mem_mb),
                oom=oom,
            )
        if entry is None or self._policy is None:
            return
        if oom is False:
            self.log(f"{entry.record.label} failed (not out of memory): retried with a fresh prediction")
            return
        # The job ran with the mem_mb it started with: a reservation shrunk while it ran (its RSS
        # looked settled before it allocated) is not what it failed with.
        given = max(entry.given_mb, entry.mem_mb)
        self._policy.observe_failure(self._task(entry.record), given - entry.overhead_mb)
        self.log(
            f"{entry.record.label} attempt {entry.record.attempt} failed"
            f"{' out of memory' if oom else ' (cause unknown: treated as out of memory)'} with {given} MB; "
            "next attempt gets more"
        )
        self._save()

    def _event(self, kind: str, **fields) -> None:
        """Append one event line (best effort: the log must never stop scheduling)."""
        if not self.settings.events:
            return
        try:
            from ..json_lines import append_json_line  # closes a line a killed run left unfinished

            append_json_line(self.settings.events, {"time": time.time(), "event": kind, **fields})
        except OSError:
            pass

    def _save(self, force: bool = False) -> None:
        """Save the learned model. A large model (many jobs' prior points) takes a while to write:
        saves are spaced so that they cost at most ~2% of the time and come at most every
        ``SAVE_EVERY_S`` (a run that finishes several jobs a second does not write the model in
        every scheduling call; a kill loses at most those seconds of learning), and whatever is
        still unsaved is written when the process exits."""
        if self._policy is None:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < max(50.0 * self._save_cost, SAVE_EVERY_S):
            if not self._unsaved:
                self._unsaved = True
                atexit.register(self.flush)
            return
        path = Path(self.settings.model)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._policy.save_state(path)
        if self.settings.critical_path:
            self._runtimes.save(self._runtimes_path())  # carried to the next run with the model
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - now
        if self._unsaved:
            self._unsaved = False
            atexit.unregister(self.flush)

    def flush(self) -> None:
        """Write anything learned but not saved yet."""
        if self._unsaved:
            self._save(force=True)


def prior_job_mem_mb(prior, facts: Mapping[str, float], level: float | None = None) -> float:
    """A job's ``mem_mb`` from a RAM prior: the calibrated prediction at ``level`` for the job's
    facts; a prior of a Java heap (target ``min_heap_mb``) gets the JVM's overhead on top, the way
    the job turns its ``mem_mb`` back into ``-Xmx``."""
    from ..java_memory import mem_mb_for_heap
    from ..prior.beagle import prior_inputs

    features = prior_inputs(prior, facts)
    estimate = prior.calibrated_mb(features, level)
    if prior.target.get("name") == "min_heap_mb":
        return float(mem_mb_for_heap(estimate))
    return float(estimate)


def _maybe_int(value) -> int | None:
    if value is None:
        return None
    value = int(value)
    return None if value >= 2**62 else value


def _machine_memory_mb() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8000
    return int(total / 2**20 * 0.9)
