"""Resource requests (``mem_mb``, ``runtime``, ``threads``) for the pipeline's rules.

Rules use the factories here and nothing else::

    threads: resources.threads("impute")
    resources:
        mem_mb=resources.mem_mb("impute"),
        runtime=resources.runtime("impute"),

Each factory returns a Snakemake resource callable ``f(wildcards, input, attempt)``. Snakemake
evaluates it when it builds the DAG (inputs made by other rules do not exist yet), again when the
job becomes ready, and again on every retry with a higher ``attempt``. All of them delegate to
one :class:`ResourceModel` - the single swap point: :func:`use_model` installs another model
(e.g. the chromosched prediction store keyed by rule, wildcards and attempt), and the rules do
not change. A model that cannot answer for a job returns None and the heuristic answers instead.

The built-in :class:`HeuristicModel` (documented numbers, not learned):

* ``impute`` (Beagle): minimum heap ~ 25 MB + 3.6 bytes x reference markers per window x target
  samples (measured for Beagle 5.4); we ask for twice that (GC headroom, and the fit is a
  minimum), at least 64 MB, plus the JVM overhead of :func:`chromosched_pipeline.imputation.beagle.mem_mb_for_heap`.
  Reference markers come from the panel's tabix index statistics (exact and cheap; falls back to
  file size / 50 bytes), markers per window = markers x min(1, (window + overlap) / map length in
  cM), target samples from the target VCF header. Runtime ~ 2 s + 4 us x markers x samples per
  thread, x3 safety, at least 5 minutes.
* the Python steps (prepare, prs, report): a fixed base for the interpreter and libraries plus a
  term in the input size when it is known (0 while it is not).
* ``resources: {<rule>: {mem_mb, runtime}}`` in the config replaces the first attempt's numbers.
* retries: memory and runtime double with every attempt (``x 2**(attempt-1)``);
  memory is capped at the configured ``memory_budget_mb``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from chromosched.errors import ChromoschedError
from chromosched.runtime.prediction_store import PredictionStore

from .imputation.beagle import mem_mb_for_heap
from .vcfio import indexed_record_counts, match_contig, read_header_lines

# (base MB, MB per MB of input) for the Python steps; input sizes are 0 while unknown.
PYTHON_STEP_MEMORY = {
    "prepare_target": (200, 2.0),
    "prs_partial": (250, 4.0),
    "prs_combine": (200, 1.0),
    "imputation_quality": (100, 0.5),
    "imputation_accuracy": (300, 4.0),
    "plot_prs": (300, 1.0),
    "job_resources": (300, 1.0),
    "scheduler_plots": (300, 1.0),
    # diffusion: the job fits its chunk size to whatever it is given (diffusion/memory.py), so this
    # only has to hold torch, the model and one chain; the scheduler learns the real need
    "diffusion_sample": (1024, 2.0),
    "diffusion_merge": (500, 4.0),
    "diffusion_plots": (400, 1.0),
}
DEFAULT_STEP = (256, 1.0)
BEAGLE_HEAP_BASE_MB = 25.0
BEAGLE_BYTES_PER_MARKER_SAMPLE = 3.6
BEAGLE_HEAP_SAFETY = 2.0
BEAGLE_MIN_HEAP_MB = 64
BEAGLE_SECONDS_BASE = 2.0
BEAGLE_SECONDS_PER_MARKER_SAMPLE = 4e-6
PANEL_BYTES_PER_MARKER = 50  # rough bgzipped-VCF size per record when the index has no counts


@dataclass(frozen=True)
class ResourceRequest:
    """What one attempt of one job asks for."""

    mem_mb: int
    runtime: int  # minutes
    threads: int = 1
    # The part of mem_mb the job's tool may use (a cluster job's own Snakemake shares its --mem);
    # None = all of it.
    tool_mem_mb: int | None = None


@dataclass(frozen=True)
class JobInfo:
    """The job as the models see it (no Snakemake objects)."""

    rule: str
    wildcards: Mapping[str, str]
    inputs: Sequence[str]
    attempt: int

    @property
    def input_mb(self) -> float:
        """Total size of the inputs that exist now (others count 0)."""
        total = 0
        for path in self.inputs:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
        return total / 2**20


class ResourceModel(Protocol):
    def request(self, job: JobInfo) -> ResourceRequest | None:
        """The request for ``job``, or None to defer to the heuristic."""


@dataclass
class PipelineFacts:
    """What the heuristic needs to know about the run (filled by :func:`configure`)."""

    panel: Callable[[str], str] | None = None
    genetic_map: Callable[[str], str] | None = None
    target_samples: int | None = None
    window_cm: float | None = 40.0
    overlap_cm: float | None = 2.0
    threads: Mapping[str, int] | None = None
    memory_budget_mb: int | None = None
    overrides: Mapping[str, Mapping[str, int]] | None = None  # rule -> {mem_mb, runtime} for attempt 1


class HeuristicModel:
    """The documented heuristic of this module's docstring."""

    def __init__(self, facts: PipelineFacts | None = None):
        self.facts = facts or PipelineFacts()
        self._cache: dict[tuple, Any] = {}

    # -- facts that are expensive enough to cache per chromosome --
    def panel_markers(self, chrom: str) -> int | None:
        key = ("markers", chrom)
        if key not in self._cache:
            self._cache[key] = self._panel_markers(chrom)
        return self._cache[key]

    def _panel_markers(self, chrom: str) -> int | None:
        if self.facts.panel is None:
            return None
        panel = self.facts.panel(chrom)
        counts = indexed_record_counts(panel)
        if counts:
            name = match_contig(chrom, counts)
            if name is not None:
                return counts[name]
        try:
            return max(1, os.path.getsize(panel) // PANEL_BYTES_PER_MARKER)
        except OSError:
            return None

    def map_length_cm(self, chrom: str) -> float | None:
        key = ("map_cm", chrom)
        if key not in self._cache:
            self._cache[key] = self._map_length_cm(chrom)
        return self._cache[key]

    def _map_length_cm(self, chrom: str) -> float | None:
        if self.facts.genetic_map is None:
            return None
        return map_file_length_cm(str(self.facts.genetic_map(chrom)), chrom)

    def threads_for(self, rule: str) -> int:
        return max(1, int((self.facts.threads or {}).get(rule, 1)))

    # -- requests --
    def request(self, job: JobInfo) -> ResourceRequest:
        threads = self.threads_for(job.rule)
        if job.rule == "impute":
            mem, runtime = self._beagle(job, threads)
        else:
            base, per_mb = PYTHON_STEP_MEMORY.get(job.rule, DEFAULT_STEP)
            mem, runtime = base + per_mb * job.input_mb, 5 + job.input_mb / 100
        fixed = (self.facts.overrides or {}).get(job.rule, {})
        mem = fixed.get("mem_mb", mem)
        runtime = fixed.get("runtime", runtime)
        scale = 2 ** max(0, job.attempt - 1)
        mem = int(math.ceil(mem * scale))
        if self.facts.memory_budget_mb:
            mem = min(mem, int(self.facts.memory_budget_mb))
        return ResourceRequest(mem_mb=mem, runtime=int(math.ceil(runtime * scale)), threads=threads)

    def _beagle(self, job: JobInfo, threads: int) -> tuple[float, float]:
        chrom = str(job.wildcards.get("chrom", ""))
        markers = self.panel_markers(chrom) if chrom else None
        samples = self.facts.target_samples or 100
        if markers is None:
            markers = 1_000_000  # unknown panel: assume a large chromosome rather than fail late
        per_window = markers
        length_cm = self.map_length_cm(chrom) if chrom else None
        if length_cm and self.facts.window_cm:
            span = self.facts.window_cm + (self.facts.overlap_cm or 0.0)
            per_window = markers * min(1.0, span / length_cm)
        heap = BEAGLE_HEAP_BASE_MB + BEAGLE_BYTES_PER_MARKER_SAMPLE * per_window * samples / 1e6
        heap = max(BEAGLE_MIN_HEAP_MB, BEAGLE_HEAP_SAFETY * heap)
        seconds = BEAGLE_SECONDS_BASE + BEAGLE_SECONDS_PER_MARKER_SAMPLE * markers * samples / max(1, threads)
        return mem_mb_for_heap(heap), max(5.0, 3 * seconds / 60)


class PredictionStoreModel:
    """``mem_mb`` from the chromosched prediction store, everything else from the heuristic.

    The scheduler plugin writes one prediction per (rule, wildcards, attempt) before it starts a
    job; reading it here makes the job's ``mem_mb`` resource - hence the local budget, ``sbatch
    --mem`` and Beagle's ``-Xmx`` - that same number, also in a cluster job's own Snakemake
    process. Jobs without an entry (no plugin, or not yet predicted) defer to the heuristic.
    """

    def __init__(self, store: PredictionStore | None = None):
        self.store = store

    def request(self, job: JobInfo) -> ResourceRequest | None:
        store = self.store or PredictionStore()  # location may come from the environment
        prediction = store.get(job.rule, job.wildcards, job.attempt)
        if prediction is None:
            return None
        return replace(_heuristic.request(job), mem_mb=int(prediction.mem_mb), tool_mem_mb=prediction.tool_mem_mb)


_heuristic = HeuristicModel()
_model: ResourceModel | None = None


def configure(facts: PipelineFacts) -> None:
    """Give the heuristic the run's facts (the Snakefile calls this once after loading the config)."""
    global _heuristic
    _heuristic = HeuristicModel(facts)


def use_model(model: ResourceModel | None) -> None:
    """Install ``model`` in front of the heuristic (None removes it). The one swap point."""
    global _model
    _model = model


def request_for(rule: str, wildcards: Any, input: Any, attempt: int) -> ResourceRequest:
    """The request for one job: the installed model's answer, else the heuristic's."""
    job = JobInfo(rule=rule, wildcards=_as_dict(wildcards), inputs=_as_paths(input), attempt=max(1, int(attempt or 1)))
    if _model is not None:
        answer = _model.request(job)
        if answer is not None:
            return answer
    return _heuristic.request(job)


def _as_dict(wildcards: Any) -> dict[str, str]:
    if wildcards is None:
        return {}
    if hasattr(wildcards, "items"):
        return {str(k): str(v) for k, v in wildcards.items()}
    return dict(wildcards)


def _as_paths(input: Any) -> list[str]:
    if input is None:
        return []
    if isinstance(input, (str, Path)):
        return [str(input)]
    try:
        return [str(p) for p in input]
    except TypeError:
        return []


def mem_mb(rule: str) -> Callable[..., int]:
    """Snakemake callable for ``resources: mem_mb=``."""

    def _mem_mb(wildcards, input, attempt):
        return request_for(rule, wildcards, input, attempt).mem_mb

    _mem_mb.__name__ = f"mem_mb_{rule}"
    return _mem_mb


def tool_mem_mb(rule: str) -> Callable[..., int]:
    """Snakemake callable for the memory a job's tool may use (e.g. Beagle's heap is sized from it):
    ``mem_mb`` less the overhead the scheduler added for a cluster job's own Snakemake process, which
    shares the job's ``--mem``. Without a stored prediction it equals ``mem_mb``."""

    def _tool_mem_mb(wildcards, input, attempt):
        request = request_for(rule, wildcards, input, attempt)
        return request.tool_mem_mb or request.mem_mb

    _tool_mem_mb.__name__ = f"tool_mem_mb_{rule}"
    return _tool_mem_mb


def runtime(rule: str) -> Callable[..., int]:
    """Snakemake callable for ``resources: runtime=`` (minutes)."""

    def _runtime(wildcards, input, attempt):
        return request_for(rule, wildcards, input, attempt).runtime

    _runtime.__name__ = f"runtime_{rule}"
    return _runtime


def threads(rule: str) -> Callable[..., int]:
    """Snakemake callable for ``threads:``."""

    def _threads(wildcards, input, attempt):
        return request_for(rule, wildcards, input, attempt).threads

    _threads.__name__ = f"threads_{rule}"
    return _threads


# Beagle's documented defaults, for parameters the config leaves unset (null).
BEAGLE_DEFAULTS = {"burnin": 3, "iterations": 12, "window": 40.0, "overlap": 2.0}


def prior_features(rule: str, beagle: Mapping[str, Any] | None = None) -> Callable[..., dict]:
    """Snakemake params callable: the RAM prior's features for one job (``params:
    chromosched_features=...``); the scheduler plugin feeds them to the prior.

    For Beagle (``impute``): threads, burnin, iterations, window_cm, overlap_cm, the genetic
    length of the chromosome (chrom_cm) and the marker and sample counts of the job's own target
    and reference VCFs (from tabix index statistics and headers, so cheap). Inputs that do not exist yet (at DAG build) give an empty mapping; Snakemake
    evaluates params again when the job is ready.
    """
    settings = {k: v for k, v in dict(beagle or {}).items() if v is not None}

    def _features(wildcards, input, threads):
        if rule != "impute":
            return {}
        try:
            gt, ref = str(input.gt), str(input.ref)
            chrom = str(_as_dict(wildcards).get("chrom", ""))
            target_counts = indexed_record_counts(gt) or {}
            panel_counts = indexed_record_counts(ref) or {}
            target_name = match_contig(chrom, target_counts) if chrom else None
            panel_name = match_contig(chrom, panel_counts) if chrom else None
            features = {
                "threads": int(threads),
                "burnin": settings.get("burnin", BEAGLE_DEFAULTS["burnin"]),
                "iterations": settings.get("iterations", BEAGLE_DEFAULTS["iterations"]),
                "window_cm": settings.get("window", BEAGLE_DEFAULTS["window"]),
                "target_variants": target_counts.get(target_name) if target_name else sum(target_counts.values()),
                "target_samples": target_sample_count(gt),
                "ref_variants": panel_counts.get(panel_name) if panel_name else sum(panel_counts.values()),
                "ref_samples": target_sample_count(ref),
            }
        except (AttributeError, OSError, ValueError, TypeError):
            return {}
        if any(v in (None, 0) for v in features.values()):
            return {}
        # The chromosome's genetic length (this job's own map, else the reference map) places the
        # window on it; the prior derives its per-window features from these inputs. They are added
        # here too, so the plan and the job's params show what the prior sees.
        features["overlap_cm"] = settings.get("overlap", BEAGLE_DEFAULTS["overlap"])
        length_cm = _job_map_length_cm(input, chrom) or (_heuristic.map_length_cm(chrom) if chrom else None)
        if length_cm:
            features["chrom_cm"] = length_cm
        try:
            from chromosched.prior.derivation import beagle_derivation

            features.update(beagle_derivation().derive(features, f"rule {rule}"))
        except ChromoschedError:
            return {}
        return {k: float(v) for k, v in features.items()}

    _features.__name__ = f"prior_features_{rule}"
    return _features


def _job_map_length_cm(input, chrom: str) -> float | None:
    """Genetic length of the job's own ``map`` input (None when it has none or it cannot be read)."""
    path = getattr(input, "map", None)
    return map_file_length_cm(str(path), chrom) if path else None


def map_file_length_cm(path: str, chrom: str) -> float | None:
    """Genetic length (cM) of ``chrom`` in a PLINK map file (all of it when ``chrom`` is empty); None
    when the file cannot be read or gives no length (one position, cM not numbers or decreasing)."""
    from chromosched.prior.derivation import genetic_length_cm

    try:
        with open(path) as handle:
            lines = [
                line for line in handle if not chrom or match_contig(chrom, [line.split()[0]] if line.split() else [])
            ]
        return genetic_length_cm(lines, source=path)
    except (OSError, ChromoschedError):
        return None


def target_sample_count(vcf: str | os.PathLike) -> int | None:
    """Samples in a VCF header (cheap: reads only the header)."""
    try:
        return len(read_header_lines(vcf)[-1].split("\t")) - 9
    except Exception:  # noqa: BLE001 - a resource estimate must not fail the DAG
        return None
