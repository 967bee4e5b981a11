"""A Snakemake job as chromosched's algorithms see it: plain data, no Snakemake objects.

The plugin adapter (``snakemake_scheduler_plugin_chromosched``) is the only place that builds these
from Snakemake jobs; everything below it works on :class:`JobRecord`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..genomes import canonical_chrom
from .prediction_store import wildcards_key

#: Wildcard names that carry a chromosome (the first one present wins).
CHROMOSOME_WILDCARDS = ("chrom", "chromosome", "chr", "contig")


@dataclass(frozen=True)
class JobRecord:
    """One ready (or running) job.

    ``uid`` is stable across retries (rule + wildcards); ``attempt`` counts from 1.
    ``resources`` are the job's numeric scheduler resources as Snakemake will subtract them.
    ``outcome_log`` is a JSON-lines file the job appends one line per attempt to (optional, see
    :mod:`chromosched.runtime.job_measurements`); ``prior_features`` feed the RAM prior (optional).
    """

    uid: str
    rule: str
    wildcards: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    cores: int = 1
    gpus: int = 0
    declared_mem_mb: int | None = None
    resources: Mapping[str, int] = field(default_factory=dict)
    chrom: str | None = None
    input_mb: float = 0.0
    benchmark: str | None = None
    outcome_log: str | None = None
    prior_features: Mapping[str, float] | None = None
    priority: int = 0
    storable: bool = True  # False for job objects without rule/wildcards (no stable store key)
    fixed_mem: bool = False  # the job's mem_mb is its own (not store-backed): Snakemake budgets that

    @property
    def label(self) -> str:
        """Short human-readable name for logs (``impute chr1``)."""
        if not self.wildcards:
            return self.rule
        return f"{self.rule} {','.join(str(v) for v in self.wildcards.values())}"


def job_uid(rule: str, wildcards: Mapping[str, object]) -> str:
    return f"{rule}[{wildcards_key(wildcards)}]"


def chromosome_of(wildcards: Mapping[str, object]) -> str | None:
    """The canonical chromosome (``chr1``) named by a job's wildcards, if any."""
    for name in CHROMOSOME_WILDCARDS:
        if name in wildcards and str(wildcards[name]).strip():
            return canonical_chrom(str(wildcards[name]))
    return None
