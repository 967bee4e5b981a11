"""Snakemake scheduler plugin ``chromosched``: ``snakemake --scheduler chromosched``.

The thin adapter between Snakemake's job objects and :mod:`chromosched`; the only module that
knows Snakemake's jobs. It turns ready jobs into plain :class:`~chromosched.runtime.job_record.JobRecord`,
lets :class:`~chromosched.runtime.session.SchedulingSession` choose, and hands the chosen jobs
back. Around that it

- does nothing in a cluster job's own Snakemake process (``exec_mode`` is not the default one):
  plugin settings are not forwarded there, and that process runs exactly one job;
- resets a job's cached resources after its prediction is written (and on retries, where
  Snakemake keeps attempt 1's ``scheduler_resources``), so ``mem_mb`` is re-read from the store;
- notices finished jobs (``dag.finished``) and failed ones (back with a higher ``attempt``); a
  failed job that ran through Slurm is asked whether Slurm killed it for memory
  (:mod:`chromosched.runtime.slurm_outcomes`), since the executor reports only FAILED;
- logs any internal error once as a warning and returns None (Snakemake's greedy fallback).
  User errors (a corrupt ordering table, a job larger than the whole budget) stop the run with
  their one-line message.
"""

# No `from __future__ import annotations`: Snakemake builds --scheduler-chromosched-* flags from
# the settings' real type objects.
import math
from dataclasses import dataclass, field, fields, replace
from typing import Optional

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_scheduler_plugins.base import SchedulerBase
from snakemake_interface_scheduler_plugins.settings import SchedulerSettingsBase

from chromosched.errors import ChromoschedError
from chromosched.runtime import slurm_outcomes
from chromosched.runtime.job_measurements import failure_was_oom, measure_success
from chromosched.runtime.job_record import JobRecord, chromosome_of, job_uid
from chromosched.runtime.prediction_store import DEFAULT_STORE
from chromosched.runtime.session import SchedulingSession, SessionSettings

#: params keys a rule may set for chromosched (see README "Using the scheduler plugin on any Snakemake workflow").
PARAM_FEATURES = "chromosched_features"
PARAM_OUTCOME = "chromosched_outcome"
_GPU_NAMES = ("gpu", "nvidia_gpu", "gpus")
#: A cluster job's own Snakemake process (measured on Slurm 22.05: ~150 MB RSS in the batch step)
#: plus the job step's launcher, which count against the job's --mem with the tool.
CLUSTER_JOB_OVERHEAD_MB = 250


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class SchedulerSettings(SchedulerSettingsBase):
    mode: Optional[str] = field(
        default="dynamic",
        metadata=_help(
            "static: start chromosome jobs in the ordering table's order, K at a time; dynamic: predict "
            "each job's memory and knapsack-pack ready jobs into the free memory (default)."
        ),
    )
    ordering: Optional[str] = field(
        default="GRCh37",
        metadata=_help("Genome build (GRCh37, GRCh38) or path of an ordering table (chromosched tables)."),
    )
    workers: Optional[int] = field(
        default=None, metadata=_help("K, chromosome jobs per rule at once in static mode (default: the run's cores).")
    )
    budget_mb: Optional[int] = field(default=None, metadata=_help("Memory budget in MB (default: --resources mem_mb)."))
    prior: Optional[str] = field(
        default=None, metadata=_help("RAM prior JSON (chromosched prior fit); default: the built-in Beagle prior.")
    )
    prior_rule: Optional[str] = field(
        default="impute", metadata=_help("The rule the prior describes (its jobs give params chromosched_features).")
    )
    packer: Optional[str] = field(
        default="knapsack", metadata=_help("knapsack (most memory used) or greedy (most jobs).")
    )
    gamma_max: Optional[float] = field(
        default=None, metadata=_help("Bias percentile early on (default: chromosched's).")
    )
    gamma_min: Optional[float] = field(default=None, metadata=_help("Bias percentile late (default: chromosched's)."))
    degree: Optional[int] = field(default=None, metadata=_help("Polynomial degree of the online regressor."))
    store: Optional[str] = field(
        default=DEFAULT_STORE, metadata=_help("Prediction store directory (the rules' mem_mb read it).")
    )
    model: Optional[str] = field(
        default=".chromosched/model.json",
        metadata=_help("Where the learned model is saved after each update and loaded at start (warm start)."),
    )
    events: Optional[str] = field(
        default=".chromosched/events.jsonl",
        metadata=_help("Event log (one JSON line per job start, finish and failure) for the report's plots."),
    )
    critical_path: bool = field(
        default=False,
        metadata=_help(
            "Prefer ready jobs on the longest remaining chain (HEFT upward rank, runtimes learned per rule "
            "and kept next to the model)."
        ),
    )
    reserve_head: Optional[str] = field(
        default="off",
        metadata=_help(
            "on/off. Keep memory for the longest ready job: it starts first when it fits; when it does not, "
            "other jobs start only if they do not delay it (EASY backfilling on predicted runtimes). Off by default: "
            "no gain measured on the unseen-workflow family (docs/dynamic.md)."
        ),
    )
    job_overhead_mb: Optional[int] = field(
        default=None,
        metadata=_help(
            "MB added to each predicted job's memory for the job's own Snakemake process, which shares "
            f"the job's --mem under a cluster executor (default: {CLUSTER_JOB_OVERHEAD_MB} there, 0 locally)."
        ),
    )
    cold_start: Optional[str] = field(
        default=None,
        metadata=_help(
            "Rules without a calibrated prior: probe (smallest job first, then packed from what it "
            "measured; declared mem_mb trusted only once a job agrees) or sequential (the paper's; the "
            "declared mem_mb is the first allocation). Default: probe locally, sequential under a cluster "
            "executor (a probe would ask sbatch for the whole budget; a kill there hurts no other job)."
        ),
    )
    override_mem: Optional[str] = field(
        default="on",
        metadata=_help(
            "on/off. Make the predicted memory the job's own mem_mb ({resources.mem_mb}, what Snakemake "
            "budgets, sbatch --mem) for rules whose mem_mb is fixed or not declared."
        ),
    )
    live_memory: Optional[str] = field(
        default="on",
        metadata=_help(
            "on/off. Local runs: sample the running jobs' process trees (psutil); do not start jobs while "
            "measured memory plus predicted growth would pass the budget; learn peaks of jobs without "
            "benchmark files. Off on a cluster."
        ),
    )

    def session_settings(self) -> SessionSettings:
        values = {
            f.name: getattr(self, f.name) for f in fields(SessionSettings) if getattr(self, f.name, None) is not None
        }
        if "reserve_head" in values:  # on/off on the command line, a flag in the session
            values["reserve_head"] = _on(values["reserve_head"])
        return SessionSettings(**values)


class Scheduler(SchedulerBase):
    def __post_init__(self) -> None:
        self._session: Optional[SchedulingSession] = None
        self._active = _is_main_process(self.dag)
        self._warned = False
        self._fixed_rules: set[str] = set()  # rules whose mem_mb does not read the store
        self._jobs: dict[str, object] = {}  # uid -> job object we started
        self._attempt: dict[str, int] = {}  # uid -> attempt we started
        # The ready set as the session holds it: per-job records are built once, when a job
        # becomes ready (or comes back for another attempt), not in every round.
        self._ready_jobs: set = set()  # job objects (for set algebra with Snakemake's ready set)
        self._ready_by_uid: dict[str, object] = {}  # uid -> job object (decisions come by uid)
        self._started_jobs: set = set()  # job objects we started and have not seen finish
        self._refresh = False  # a rule turned out to set its own mem_mb: rebuild the ready records
        self._overridden: dict[str, object] = {}  # uid -> the ResourceList we put on the job
        self._sampler = None  # LiveMemory (local runs with live_memory)
        self._woken: set[str] = set()  # running jobs a scheduling round was started for (shrinks)

    # -- Snakemake's entry point ------------------------------------------------------------------
    def select_jobs(self, selectable_jobs, remaining_jobs, available_resources, input_sizes):
        if not self._active:
            return None
        try:
            return self._select(selectable_jobs, remaining_jobs, available_resources, input_sizes)
        except ChromoschedError as err:
            # A user error with a clear message: stop rather than run into an OOM. As a
            # WorkflowError, Snakemake prints the one line (and a few lines of context), no traceback.
            raise WorkflowError(f"chromosched: {err}") from None
        except Exception as err:  # noqa: BLE001 - never let a scheduler bug abort the workflow
            if not self._warned:
                self._warned = True
                self.logger.warning(
                    f"chromosched: internal error ({type(err).__name__}: {err}); "
                    "falling back to Snakemake's greedy scheduler for this selection"
                )
            return None

    # -- internals --------------------------------------------------------------------------------
    def _select(self, selectable, remaining, pool, input_sizes):
        """``pool``: Snakemake's own free-resource dict (changed only by :meth:`_rebudget`)."""
        available = dict(pool)
        session = self._session_for(available, remaining)
        ready = selectable if isinstance(selectable, (set, frozenset)) else set(selectable)
        added = ready - self._ready_jobs  # set algebra on job objects: no per-job Python work
        # Jobs leave Snakemake's ready set mostly by being started, which _select itself records:
        # the second difference is needed only when the sizes say some job went another way.
        gone = self._ready_jobs - ready if len(ready) - len(added) != len(self._ready_jobs) else set()
        self._learn(added & self._started_jobs)
        if self._sampler is not None and session.running:
            session.shrink_reservations(lambda uid, mem_mb: self._rebudget(uid, mem_mb, pool, available))
        removed = []
        for job in gone:
            uid = self._uid(job)  # rare: most jobs leave the ready set by being started
            if self._ready_by_uid.get(uid) is job:
                del self._ready_by_uid[uid]
                removed.append(uid)
        records = []
        for job in sorted(added, key=_sort_key):
            record = self._record(job, input_sizes)
            self._ready_by_uid[record.uid] = job
            records.append(record)
        self._ready_jobs -= gone
        self._ready_jobs |= added
        session.update_ready(records, removed)
        free = _numeric(available)
        left = dict(free)
        by_uid = self._ready_by_uid

        def admit(decision) -> bool:
            job = by_uid[decision.record.uid]
            if decision.source != "static":
                _reset_resources(job)  # mem_mb is re-read from the store
            # Snakemake subtracts the job's scheduler resources without checking: they must fit.
            # They equal the decision for store-backed rules; a rule with a fixed mem_mb keeps its own.
            needs = _numeric(_resources(job))
            if (
                decision.source != "static"
                and needs.get("mem_mb") != decision.mem_mb
                and self._may_override()
                and _set_mem_mb(job, decision.mem_mb)
            ):
                # Not store-backed: the prediction becomes the job's own mem_mb.
                self._overridden[decision.record.uid] = job._resources
                needs = _numeric(_resources(job))
            if any(needs.get(k, 0) > v for k, v in left.items() if k != "_job_count"):
                return False
            for k in left:
                left[k] -= needs.get(k, 0) if k != "_job_count" else 1
            if needs.get("mem_mb") not in (None, decision.mem_mb) and decision.record.rule not in self._fixed_rules:
                self._fixed_rules.add(decision.record.rule)
                # Its ready jobs' records change (fixed_mem) only where the override is off.
                self._refresh = self._refresh or not self._may_override()
                self.logger.info(
                    f"chromosched: rule {decision.record.rule} sets its own mem_mb ({needs['mem_mb']} MB), not "
                    f"the predicted {decision.mem_mb} MB: use store-backed mem_mb callables (README)"
                )
            return True

        chosen = []
        for decision in session.select_ready(free, admit):
            uid = decision.record.uid
            job = by_uid.pop(uid)
            self._ready_jobs.discard(job)
            self._jobs[uid] = job
            self._attempt[uid] = decision.record.attempt
            self._started_jobs.add(job)
            if self._sampler is not None:
                self._sampler.start(uid, _job_paths(job))
            chosen.append(job)
        if self._refresh:
            # A rule turned out to set its own mem_mb: its ready jobs' records are built again.
            self._refresh = False
            session.update_ready((), list(by_uid))
            by_uid.clear()
            self._ready_jobs = set()
        return chosen

    def _rebudget(self, uid: str, mem_mb: int, pool, available) -> bool:
        """Lower a running job's mem_mb and give the difference back to Snakemake's free pool at
        once: Snakemake adds the job's (new) scheduler resources back when it ends, so its books
        stay balanced. The running process is not touched. False where that cannot be done."""
        job = self._jobs.get(uid)
        if job is None or "mem_mb" not in pool or not self._may_override():
            return False
        before = _numeric(_resources(job))
        if before.get("mem_mb") is None or mem_mb >= before["mem_mb"] or not _set_mem_mb(job, mem_mb):
            return False
        after = _numeric(_resources(job))
        for name in ("mem_mb", "mem_mib"):  # _set_mem_mb changes both; Snakemake adds back both
            if name in pool and name in before:
                pool[name] += before[name] - after.get(name, before[name])
                available[name] = pool[name]
        self._overridden[uid] = job._resources
        return True

    def _wake_for_shrinks(self, workflow) -> None:
        """Sampler thread: when a running job's reservation has become shrinkable, start a
        scheduling round now. Snakemake runs select_jobs when a job ends and otherwise about once
        a second; the memory a shrink frees is only given out in select_jobs. Its scheduling loop
        waits on a semaphore (``JobScheduler._open_jobs``, snakemake 9) that job ends release too;
        releasing it once more only adds a round. Without that attribute nothing happens."""
        session = self._session
        if session is None:
            return
        due = session.shrink_due() - self._woken
        if not due:
            return
        self._woken |= due
        gate = getattr(getattr(workflow, "scheduler", None), "_open_jobs", None)
        release = getattr(gate, "release", None)
        if callable(release):
            release()

    def _may_override(self) -> bool:
        return not isinstance(self.settings, SchedulerSettings) or _on(self.settings.override_mem)

    def _session_for(self, available, remaining) -> SchedulingSession:
        if self._session is None:
            settings = (
                self.settings.session_settings() if isinstance(self.settings, SchedulerSettings) else SessionSettings()
            )
            if getattr(self.settings, "job_overhead_mb", None) is None and _cluster_executor(self.dag):
                settings = replace(settings, job_overhead_mb=CLUSTER_JOB_OVERHEAD_MB)
            if getattr(self.settings, "cold_start", None) is None and _cluster_executor(self.dag):
                settings = replace(settings, cold_start="sequential")
            self._session = SchedulingSession(settings, log=lambda msg: self.logger.info(f"chromosched: {msg}"))
            total = dict(available)
            workflow = getattr(self.dag, "workflow", None)
            for name in ("mem_mb", "_cores"):
                value = _global_resource(workflow, name)
                if value is not None:
                    total[name] = value
                    total["_total_known"] = 1
            expected = [j for j in remaining if _is_single(j)]
            self._session.begin(total, [self._record(j, {}) for j in expected])
            self._announce(expected, workflow)
            live = not isinstance(self.settings, SchedulerSettings) or _on(self.settings.live_memory)
            if live and _local_exec(workflow) and self._session.settings.mode == "dynamic":
                from chromosched.runtime.live_memory import LiveMemory

                self._sampler = LiveMemory()
                self._session.live = self._sampler
                self._sampler.on_sample = lambda: self._wake_for_shrinks(workflow)
            if self._session.settings.critical_path:
                self._session.set_dag(*self._dag_data(remaining))
        return self._session

    def _announce(self, jobs, workflow) -> None:
        """One line per rule whose mem_mb is not store-backed: what chromosched does about it."""
        seen = {}
        for job in jobs:
            rule = getattr(getattr(job, "rule", None), "name", None)
            if rule is None or rule in seen:
                continue
            seen[rule] = _declared_mem(job)
        local = _local_exec(workflow)
        for rule, declared in sorted(seen.items()):
            what = "declares no mem_mb" if declared is None else "declares its own mem_mb"
            if not self._may_override():
                self.logger.info(
                    f"chromosched: rule {rule} {what}: Snakemake budgets that number, not the prediction "
                    "(override-mem is off); use chromosched.store_backed.predicted_mem_mb"
                )
            elif not local and declared is not None:
                self.logger.warning(
                    f"chromosched: rule {rule} {what}: sbatch --mem gets the prediction, but inside the cluster job "
                    "{resources.mem_mb} is re-evaluated (at most the prediction); for the exact number use "
                    "mem_mb=chromosched.store_backed.predicted_mem_mb(...)"
                )
            else:
                self.logger.info(
                    f"chromosched: rule {rule} {what}: learned from measured peaks; each job's mem_mb "
                    "(what Snakemake budgets and {resources.mem_mb}) is the prediction"
                )

    def _learn(self, back) -> None:
        """Finished jobs feed the model; jobs we started that are ready again (``back``) with a
        higher attempt are failures."""
        retried = {}
        for job in back:
            uid = self._uid(job)
            if uid in self._attempt and getattr(job, "attempt", 1) > self._attempt[uid]:
                retried[uid] = job
        for uid, job in list(self._jobs.items()):
            record_attempt = self._attempt[uid]
            if uid in retried:
                outcome = _param(job, PARAM_OUTCOME)
                oom = self._slurm_oom(job, failure_was_oom(outcome, record_attempt))
                self._session.failed(uid, oom)
                _reset_resources(job)  # Snakemake keeps attempt 1's scheduler resources otherwise
            elif _finished(self.dag, job):
                benchmark = _benchmark(job)
                outcome = _param(job, PARAM_OUTCOME)
                measurement = measure_success(benchmark, outcome, record_attempt)
                if measurement is None and self._sampler is not None:
                    measurement = self._sampler.measurement(uid)  # no benchmark file: the sampled peak
                self._session.finished(uid, measurement)
            else:
                continue
            if self._sampler is not None:
                self._sampler.stop(uid)
                self._woken.discard(uid)
            self._overridden.pop(uid, None)
            del self._jobs[uid]
            del self._attempt[uid]
            self._started_jobs.discard(job)

    def _dag_data(self, remaining):
        """(uid -> rule, uid -> uids it depends on, uid -> chromosome) of the jobs still to run,
        from Snakemake's DAG."""
        rule_of, depends_on, chrom_of = {}, {}, {}
        for job in remaining:
            if not _is_single(job):
                continue
            uid = self._uid(job)
            rule_of[uid] = getattr(getattr(job, "rule", None), "name", None) or "job"
            try:
                deps = list(self.dag.job_dependencies(job))
            except Exception:  # noqa: BLE001 - no dependencies known: the job ranks by itself
                deps = []
            depends_on[uid] = [self._uid(d) for d in deps]
            chrom_of[uid] = chromosome_of(_wildcards(job))
        return rule_of, depends_on, chrom_of

    def _slurm_oom(self, job, oom):
        """A kill by Slurm's cgroup outranks the job's own outcome log (the tool's wrapper may
        survive its child's OOM kill and log a plain crash): treat it like Beagle's exit 3."""
        rule = getattr(getattr(job, "rule", None), "name", None)
        if rule is None or not _cluster_executor(self.dag):  # a local run: old Slurm logs say nothing
            return oom
        verdict = slurm_outcomes.failure_was_oom(_slurm_log_dir(self.dag), rule, list(_wildcards(job).values()))
        if verdict is None:  # not a Slurm job
            return oom
        if verdict.oom:
            self.logger.info(
                f"chromosched: Slurm job {verdict.job_id} ({rule} {_wildcards(job)}) was killed "
                f"for memory ({verdict.evidence})"
            )
            return True
        return oom if oom is not None else verdict.oom

    def _declared(self, job, resources):
        """The rule's own mem_mb (not our override, not Snakemake's default)."""
        if not hasattr(job, "rule") or not hasattr(job, "_resources"):
            return resources.get("mem_mb")
        uid = self._uid(job)
        if self._overridden.get(uid) is not None and job._resources is self._overridden[uid]:
            return None  # running with our number; its declared one was read when it was ready
        return _declared_mem(job)

    def _uid(self, job) -> str:
        rule = getattr(getattr(job, "rule", None), "name", None)
        if rule is None:
            return f"job{id(job)}"
        return job_uid(rule, _wildcards(job))

    def _record(self, job, input_sizes) -> JobRecord:
        rule = getattr(getattr(job, "rule", None), "name", None) or "job"
        wildcards = _wildcards(job)
        resources = _numeric(_resources(job))
        gpus = next((resources[n] for n in _GPU_NAMES if n in resources), 0)
        inputs = list(getattr(job, "input", []) or [])
        input_bytes = sum(int(input_sizes.get(f, 0) or 0) for f in inputs) if input_sizes else 0
        features = _param(job, PARAM_FEATURES)
        return JobRecord(
            uid=self._uid(job),
            rule=rule,
            wildcards=wildcards,
            attempt=int(getattr(job, "attempt", 1) or 1),
            cores=int(resources.get("_cores", getattr(job, "threads", 1) or 1)),
            gpus=int(gpus),
            declared_mem_mb=self._declared(job, resources),
            resources=resources,
            chrom=chromosome_of(wildcards),
            input_mb=input_bytes / 2**20,
            benchmark=_benchmark(job),
            outcome_log=_param(job, PARAM_OUTCOME),
            prior_features=dict(features) if isinstance(features, dict) else None,
            priority=int(getattr(job, "priority", 0) or 0),
            storable=hasattr(job, "rule"),
            fixed_mem=not hasattr(job, "rule") or (rule in self._fixed_rules and not self._may_override()),
        )


# -- helpers over Snakemake's job objects (guarded: the interface's test jobs lack most of this) --
def _is_main_process(dag) -> bool:
    workflow = getattr(dag, "workflow", None)
    mode = getattr(workflow, "exec_mode", None)
    if mode is None:
        return True
    return getattr(mode, "name", str(mode)).upper().endswith("DEFAULT")


def _cluster_executor(dag) -> bool:
    """True when jobs run elsewhere (Slurm and other non-local executors)."""
    plugin = getattr(getattr(dag, "workflow", None), "executor_plugin", None)
    return bool(getattr(getattr(plugin, "common_settings", None), "non_local_exec", False))


def _slurm_log_dir(dag) -> str:
    """Where Snakemake's Slurm executor writes job logs (``--slurm-logdir``, else its default)."""
    workflow = getattr(dag, "workflow", None)
    logdir = getattr(getattr(workflow, "executor_settings", None), "logdir", None)
    return str(logdir) if logdir else slurm_outcomes.DEFAULT_LOG_DIR


def _is_single(job) -> bool:
    return not hasattr(job, "jobs") or not callable(job.jobs)


def _sort_key(job):
    rule = getattr(getattr(job, "rule", None), "name", "")
    return (rule, sorted(_wildcards(job).items()), id(job))


def _wildcards(job) -> dict[str, str]:
    wildcards = getattr(job, "wildcards_dict", None) or {}
    try:
        return {str(k): str(v) for k, v in dict(wildcards).items()}
    except (TypeError, ValueError):
        return {}


def _resources(job) -> dict:
    return dict(getattr(job, "scheduler_resources", {}) or {})


def _numeric(resources: dict) -> dict[str, int]:
    out = {}
    for name, value in resources.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[str(name)] = value
    return out


def _reset_resources(job) -> None:
    """Drop Snakemake's cached resources so the next read re-evaluates the rule's callables.

    Only on Snakemake's own job objects (both caches present); other job types keep theirs."""
    if hasattr(job, "_scheduler_resources") and hasattr(job, "_resources") and hasattr(job, "rule"):
        job._resources = None
        job._scheduler_resources = None


def _on(value) -> bool:
    """An on/off setting (Snakemake passes plugin flags as strings)."""
    if value is None or isinstance(value, bool):
        return bool(value) if value is not None else True
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ChromoschedError(f"chromosched: expected on or off, got {value!r}")


def _set_mem_mb(job, mem_mb: int) -> bool:
    """Make ``mem_mb`` the job's own: Snakemake budgets it, ``{resources.mem_mb}`` expands to it,
    executors (sbatch --mem) read it. Replaces the job's cached ResourceList (Snakemake 9 rebuilds
    it only on a new attempt) and drops the cached scheduler resources; returns False when the
    job object does not allow it."""
    if not (hasattr(job, "_resources") and hasattr(job, "_scheduler_resources") and hasattr(job, "rule")):
        return False
    try:
        current = job.resources
        values = dict(current.items())
        values["mem_mb"] = int(mem_mb)
        if "mem_mib" in values:
            values["mem_mib"] = int(math.ceil(mem_mb * 1e6 / 2**20))
        if "mem" in values:
            values["mem"] = f"{int(mem_mb)} MB"
        job._resources = type(current)(fromdict=values)
        job._scheduler_resources = None
        return job.resources["mem_mb"] == int(mem_mb)
    except Exception:  # noqa: BLE001 - an unexpected job object: keep Snakemake's numbers
        return False


def _declared_mem(job):
    """The mem_mb the rule states (None when it states none and Snakemake's default applies)."""
    try:
        own = job.rule.resources
        defaults = job.dag.workflow.resource_settings._parsed_default_resources
    except Exception:  # noqa: BLE001
        own = defaults = None
    if own is not None and defaults is not None:
        try:
            mine = own._data.get("mem_mb") if hasattr(own, "_data") else own.get("mem_mb")
            theirs = defaults._data.get("mem_mb") if hasattr(defaults, "_data") else defaults.get("mem_mb")
        except Exception:  # noqa: BLE001
            mine = theirs = None
        if mine is None:
            return None
        if theirs is not None and _same_resource(mine, theirs):
            return None
    try:
        value = job.resources.get("mem_mb") if hasattr(job.resources, "get") else None
    except Exception:  # noqa: BLE001
        value = _resources(job).get("mem_mb")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _same_resource(a, b) -> bool:
    raw_a, raw_b = getattr(a, "raw", None), getattr(b, "raw", None)
    if raw_a is not None or raw_b is not None:
        return isinstance(raw_a, str) and raw_a == raw_b
    return getattr(a, "_evaluator", a) is getattr(b, "_evaluator", b)


def _local_exec(workflow) -> bool:
    return bool(getattr(workflow, "local_exec", True)) if workflow is not None else True


def _job_paths(job) -> list[str]:
    """Strings that appear on a local job's command line (outputs, logs): how the live sampler
    tells which process tree belongs to which job."""
    out = []
    for name in ("output", "log"):
        try:
            out.extend(str(f) for f in (getattr(job, name, None) or []))
        except Exception:  # noqa: BLE001
            pass
    return out


def _param(job, name: str):
    if not hasattr(job, "rule"):
        return None
    try:
        params = job.params
        return params.get(name) if hasattr(params, "get") else getattr(params, name, None)
    except Exception:  # noqa: BLE001 - params may fail to evaluate; features are optional
        return None


def _benchmark(job) -> Optional[str]:
    if not hasattr(job, "rule"):
        return None
    try:
        value = job.benchmark
    except Exception:  # noqa: BLE001
        return None
    return str(value) if value else None


def _finished(dag, job) -> bool:
    try:
        return bool(dag.finished(job))
    except Exception:  # noqa: BLE001
        return False


def _global_resource(workflow, name: str):
    try:
        value = workflow.global_resources[name]
    except Exception:  # noqa: BLE001
        return None
    value = getattr(value, "value", value)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
