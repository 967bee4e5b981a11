"""Dry-run planning: the memory-safe batches a run would start, before anything runs.

``snakemake -n`` never constructs a scheduler plugin, so ``chromosched plan`` reads the real DAG
through Snakemake's API (:func:`read_workflow_dag`, the one function here that touches Snakemake),
predicts each job's memory exactly as the plugin would (the same
:class:`~chromosched.runtime.session.SchedulingSession`, with its prediction store in a temporary
folder, and the learned model of earlier runs when there is one) and its runtime (the job's own
benchmark file from an earlier run, else the mean of its rule's, else the rule's ``runtime``
resource), then simulates the chosen mode under the budget: each scheduling round that starts jobs
is one batch.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ChromoschedError
from .job_measurements import read_benchmark
from .job_record import JobRecord, chromosome_of, job_uid
from .session import SchedulingSession, SessionSettings

DEFAULT_RUNTIME_S = 60.0


@dataclass
class DagJob:
    """A job of the DAG as the planner needs it."""

    record: JobRecord
    depends_on: list[str] = field(default_factory=list)  # uids
    runtime_s: float | None = None  # measured earlier (benchmark), if any
    declared_runtime_s: float | None = None  # the rule's runtime resource


@dataclass
class PlannedJob:
    rule: str
    wildcards: dict[str, str]
    predicted_mem_mb: int
    start_s: float
    end_s: float
    batch: int
    source: str
    prior_features: dict | None = None  # what the RAM prior made of the job's inputs (model features, estimate)


@dataclass
class Plan:
    budget_mb: float
    mode: str
    jobs: list[PlannedJob]
    cannot_fit: list[dict]
    peak_mb: float
    makespan_estimate_s: float
    runtime_sources: dict[str, int]

    def to_json(self) -> dict:
        return {
            "budget_mb": round(self.budget_mb, 1),
            "peak_mb": round(self.peak_mb, 1),
            "makespan_estimate_s": round(self.makespan_estimate_s, 1),
            "mode": self.mode,
            "jobs": [
                {
                    "rule": j.rule,
                    "wildcards": j.wildcards,
                    "predicted_mem_mb": j.predicted_mem_mb,
                    "start_s": round(j.start_s, 3),
                    "end_s": round(j.end_s, 3),
                    "batch": j.batch,
                    "source": j.source,
                    **({"prior_features": j.prior_features} if j.prior_features else {}),
                }
                for j in self.jobs
            ],
            "cannot_fit": self.cannot_fit,
            "runtime_sources": self.runtime_sources,
        }


def plan_workflow(jobs: Sequence[DagJob], settings: SessionSettings, cores: int, budget_mb: float | None) -> Plan:
    """Simulate ``settings.mode`` over the DAG with predicted memory and runtimes."""
    with tempfile.TemporaryDirectory(prefix="chromosched-plan-") as scratch:
        session = SchedulingSession(replace(settings, store=os.path.join(scratch, "store"), events=None))
        total = {"_cores": float(cores), "_total_known": 1}
        if budget_mb is not None:
            total["mem_mb"] = float(budget_mb)
        session.begin(total, [j.record for j in jobs])
        plan = _simulate(session, jobs, cores)
        try:
            prior = session.ram_prior()  # loaded once by the session (static mode: loaded here)
        except ChromoschedError:
            prior = None
    _add_prior_views(plan, jobs, settings, prior)
    return plan


def _add_prior_views(plan: Plan, jobs: Sequence[DagJob], settings: SessionSettings, prior) -> None:
    """Attach to each planned job of the prior's rule the features ``prior`` (the one the session
    loaded; None without one) derived from its inputs (a job whose inputs do not exist yet has none;
    a prior that cannot evaluate it shows the error)."""
    facts = {
        (j.record.rule, tuple(sorted(j.record.wildcards.items()))): j.record.prior_features
        for j in jobs
        if j.record.rule == settings.prior_rule and j.record.prior_features
    }
    if not facts or prior is None:
        return
    from ..prior.beagle import prior_view

    for job in plan.jobs:
        job_facts = facts.get((job.rule, tuple(sorted(job.wildcards.items()))))
        if job_facts:
            try:
                job.prior_features = prior_view(prior, job_facts, settings.prior_level)
            except (ChromoschedError, TypeError, ValueError) as err:
                job.prior_features = {"error": str(err)}


def _runtime_table(jobs: Sequence[DagJob]) -> tuple[dict[str, float], dict[str, int]]:
    """Runtime per job uid: its own benchmark, else its rule's mean, else the declared runtime."""
    by_rule: dict[str, list[float]] = {}
    for job in jobs:
        if job.runtime_s is not None:
            by_rule.setdefault(job.record.rule, []).append(job.runtime_s)
    out, sources = {}, {"benchmark": 0, "rule-mean": 0, "declared": 0, "default": 0}
    for job in jobs:
        if job.runtime_s is not None:
            out[job.record.uid], kind = job.runtime_s, "benchmark"
        elif job.record.rule in by_rule:
            values = by_rule[job.record.rule]
            out[job.record.uid], kind = sum(values) / len(values), "rule-mean"
        elif job.declared_runtime_s is not None:
            out[job.record.uid], kind = job.declared_runtime_s, "declared"
        else:
            out[job.record.uid], kind = DEFAULT_RUNTIME_S, "default"
        sources[kind] += 1
    return out, sources


def _simulate(session: SchedulingSession, jobs: Sequence[DagJob], cores: int) -> Plan:
    runtime, sources = _runtime_table(jobs)
    by_uid = {j.record.uid: j for j in jobs}
    waiting_on = {uid: set(d for d in j.depends_on if d in by_uid) for uid, j in by_uid.items()}
    dependents: dict[str, list[str]] = {}
    for uid, deps in waiting_on.items():
        for d in deps:
            dependents.setdefault(d, []).append(uid)
    budget = float(session.budget_mb or 0.0)
    # Jobs that can never fit the budget (or the cores) do not run; nor does anything after them.
    blocked: dict[str, str] = {}
    for uid, job in by_uid.items():
        need = job.record.declared_mem_mb or 0
        if (job.record.fixed_mem or session.settings.mode == "static") and need > budget:
            blocked[uid] = f"declares {need} MB, more than the budget of {budget:.0f} MB"
        elif job.record.cores > cores:
            blocked[uid] = f"needs {job.record.cores} cores, only {cores} exist"
    ready = {uid for uid, deps in waiting_on.items() if not deps and uid not in blocked}
    running: list[tuple[float, str]] = []
    mem_of: dict[str, int] = {}
    planned: list[PlannedJob] = []
    t, batch, used_mem, used_cores, peak = 0.0, 0, 0.0, 0, 0.0
    while ready or running:
        records = [by_uid[u].record for u in sorted(ready)]
        free = {"mem_mb": budget - used_mem, "_cores": float(cores - used_cores)}
        try:
            decisions = session.select(records, free)
        except ChromoschedError as err:
            # The policy refuses a job it can never run: record it and carry on without it.
            culprit = next((u for u in sorted(ready) if u in str(err)), None)
            if culprit is None:
                raise
            blocked[culprit] = str(err)
            ready.discard(culprit)
            continue
        if decisions:
            batch += 1
        for d in decisions:
            uid = d.record.uid
            ready.discard(uid)
            if d.predicted_mb is not None and d.predicted_mb > budget:
                blocked[uid] = f"predicted {d.predicted_mb:.0f} MB, more than the budget of {budget:.0f} MB"
                session.finished(uid, None)
                continue
            end = t + runtime[uid]
            heapq.heappush(running, (end, uid))
            mem_of[uid] = d.mem_mb
            used_mem += d.mem_mb
            used_cores += d.record.cores
            planned.append(PlannedJob(d.record.rule, dict(d.record.wildcards), d.mem_mb, t, end, batch, d.source))
        peak = max(peak, used_mem)
        if not running:
            for uid in sorted(ready):
                blocked[uid] = "does not fit the free memory even with nothing else running"
            break
        t, uid = heapq.heappop(running)
        done = [uid]
        while running and running[0][0] <= t:
            done.append(heapq.heappop(running)[1])
        for uid in done:
            used_mem -= mem_of[uid]
            used_cores -= by_uid[uid].record.cores
            session.finished(uid, None)
            for nxt in dependents.get(uid, ()):
                waiting_on[nxt].discard(uid)
                if not waiting_on[nxt] and nxt not in blocked:
                    ready.add(nxt)
    # Everything downstream of a blocked job cannot run either.
    cannot = dict(blocked)
    frontier = list(blocked)
    while frontier:
        for nxt in dependents.get(frontier.pop(), ()):
            if nxt not in cannot:
                cannot[nxt] = "depends on a job that cannot run"
                frontier.append(nxt)
    cannot_fit = [
        {"rule": by_uid[u].record.rule, "wildcards": dict(by_uid[u].record.wildcards), "reason": why}
        for u, why in sorted(cannot.items())
    ]
    makespan = max((j.end_s for j in planned), default=0.0)
    return Plan(budget, session.settings.mode, planned, cannot_fit, peak, makespan, sources)


# -- reading a workflow's DAG (the one place here that uses Snakemake) ---------------------------------
def read_workflow_dag(
    snakefile: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    cores: int = 1,
    resources: Mapping[str, int] | None = None,
    configfiles: Sequence[str] = (),
    config: Mapping[str, object] | None = None,
    targets: Sequence[str] = (),
) -> list[DagJob]:
    """The jobs a ``snakemake`` run would execute now, with their resources and dependencies."""
    try:
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, Quietness, ResourceSettings
    except ImportError as err:  # pragma: no cover - snakemake is a dependency of the plugin
        raise ChromoschedError(f"chromosched plan needs snakemake ({err})") from None
    workdir = Path(workdir or ".").resolve()
    snakefile = Path(snakefile) if snakefile else None
    if snakefile is None:
        for candidate in ("Snakefile", "workflow/Snakefile", "snakefile"):
            if (workdir / candidate).is_file():
                snakefile = workdir / candidate
                break
    if snakefile is None or not Path(snakefile).is_file():
        raise ChromoschedError(f"no Snakefile found in {workdir} (give --snakefile)")
    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=cores, resources=dict(resources or {})),
                config_settings=ConfigSettings(configfiles=[Path(c) for c in configfiles], config=dict(config or {})),
                snakefile=Path(snakefile).resolve(),
                workdir=workdir,
            )
            workflow_api.dag(dag_settings=DAGSettings(targets=frozenset(targets)))
            workflow = workflow_api._workflow
            workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True, nolock=True)
            workflow._build_dag()
            dag = workflow.dag
            return [_dag_job(job, dag) for job in dag.needrun_jobs()]
    except ChromoschedError:
        raise
    except SystemExit as err:
        raise ChromoschedError(f"the workflow in {workdir} stopped while loading: {err}") from None
    except Exception as err:
        message = " ".join(str(err).split()) or type(err).__name__
        raise ChromoschedError(f"cannot build the DAG of {snakefile}: {message}") from None
    finally:
        os.chdir(cwd)


def _dag_job(job, dag) -> DagJob:
    rule = job.rule.name
    wildcards = {str(k): str(v) for k, v in dict(job.wildcards_dict).items()}
    resources = {}
    for name, value in dict(job.resources).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            resources[name] = value
    params = {}
    try:
        params = dict(job.params.items())
    except Exception:  # noqa: BLE001 - params may need inputs that do not exist yet
        pass
    benchmark = str(job.benchmark) if job.benchmark else None
    measured = read_benchmark(benchmark)[1] if benchmark and os.path.exists(benchmark) else None
    declared_runtime = resources.get("runtime")
    record = JobRecord(
        uid=job_uid(rule, wildcards),
        rule=rule,
        wildcards=wildcards,
        attempt=1,
        cores=int(resources.get("_cores", job.threads) or 1),
        declared_mem_mb=resources.get("mem_mb"),
        resources={k: v for k, v in resources.items() if k in ("mem_mb", "_cores")},
        chrom=chromosome_of(wildcards),
        benchmark=benchmark,
        prior_features=params.get("chromosched_features")
        if isinstance(params.get("chromosched_features"), dict)
        else None,
    )
    deps = [job_uid(d.rule.name, dict(d.wildcards_dict)) for d in dag.dependencies[job]]
    return DagJob(record, deps, measured, None if declared_runtime is None else 60.0 * float(declared_runtime))
