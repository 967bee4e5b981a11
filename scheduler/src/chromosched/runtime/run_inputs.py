"""The scheduler's own inputs, checked once when a run starts, before any job runs.

A run's plugin inputs are its settings, the RAM prior file, the ordering table (static mode) and
the memory budget. Each check raises a one-line :class:`~chromosched.errors.ChromoschedError`
naming the setting or file and the problem. :func:`check_run_inputs` is what the scheduling
session calls in ``begin`` (the first scheduling round, before anything is started) and what
``chromosched plan`` calls, so both refuse the same inputs with the same line. Without these
checks a bad prior surfaced only when the first job of its rule became ready (after other jobs had
written outputs), and a budget below a Java job's floor started that job at the whole budget.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ChromoschedError
from .job_record import JobRecord

PACKERS = ("knapsack", "greedy", "firstfit")


@dataclass
class RunInputs:
    """What the checks loaded, so the session does not read the files twice."""

    prior: object | None = None  # chromosched.prior.Prior
    ordering_table: object | None = None  # chromosched.static.ordering_table.OrderingTable (static mode)


def check_settings(settings) -> None:
    """Values of the ``--scheduler-chromosched-*`` settings (SessionSettings checks mode, workers,
    budget-mb itself)."""
    if settings.packer not in PACKERS:
        raise ChromoschedError(f"setting packer: must be one of {', '.join(PACKERS)}, got {settings.packer!r}")
    for name in ("gamma_max", "gamma_min"):
        value = getattr(settings, name)
        if value is not None and not 0.0 < float(value) <= 1.0:
            raise ChromoschedError(f"setting {name.replace('_', '-')}: must be in (0, 1], got {value}")
    if settings.gamma_max is not None and settings.gamma_min is not None and settings.gamma_min > settings.gamma_max:
        raise ChromoschedError(
            f"settings gamma-min ({settings.gamma_min}) must not exceed gamma-max ({settings.gamma_max})"
        )
    if settings.degree is not None and not 1 <= int(settings.degree) <= 5:
        raise ChromoschedError(f"setting degree: must be 1 to 5, got {settings.degree}")
    level = getattr(settings, "prior_level", None)
    if level is not None and not 0.0 < float(level) < 1.0:
        raise ChromoschedError(f"setting prior-level: must be between 0 and 1, got {level}")


def load_run_prior(settings, log: Callable[[str], None] = lambda msg: None):
    """The RAM prior: the file the user named must load; without one the built-in Beagle prior."""
    from ..prior import load_builtin_prior, load_prior

    if settings.prior:
        return load_prior(settings.prior)
    try:
        return load_builtin_prior("beagle")
    except ChromoschedError as err:
        log(f"no RAM prior ({err}); rule {settings.prior_rule} starts from its declared mem_mb")
        return None


def load_ordering_table(settings):
    """Static mode's ordering table (a genome build's built-in table or a file)."""
    from ..static.ordering_table import OrderingTable, load_builtin_table

    source = settings.ordering
    if looks_like_path(source):
        return OrderingTable.load(source)
    return load_builtin_table(source)


def job_floor_mb(record: JobRecord, prior, prior_rule: str) -> tuple[float, str] | None:
    """The least memory (MB) a job can run with, and why, when that is known before it runs.

    A job of the prior's rule whose prior is a Java heap (``min_heap_mb``) needs at least the JVM's
    overhead plus the smallest heap; with its features known, at least the prior's point estimate
    (no calibration margin) as a heap. (A job's declared mem_mb says nothing here: Snakemake caps
    it at the budget.)"""
    if prior is None or record.rule != prior_rule:
        return None
    if prior.target.get("name") != "min_heap_mb":
        return None
    from ..java_memory import HEAP_FLOOR_MB, mem_mb_for_heap

    heap, why = float(HEAP_FLOOR_MB), f"the JVM's overhead plus a {HEAP_FLOOR_MB} MB heap"
    if record.prior_features:
        estimate = _prior_point_estimate(prior, record.prior_features)
        if estimate is not None and estimate > heap:
            heap, why = estimate, f"the RAM prior's point estimate of a {estimate:.0f} MB heap"
    return float(mem_mb_for_heap(heap)), why


def _prior_point_estimate(prior, facts) -> float | None:
    from ..prior.beagle import prior_inputs

    try:
        features = prior_inputs(prior, facts)
        value = float(prior.raw_mb(features))
    except (ChromoschedError, KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_budget(
    budget_mb: float, records: Sequence[JobRecord], prior, prior_rule: str, budget_source: str = ""
) -> None:
    """No job needs more than the whole budget (else it would start at the budget and fail)."""
    worst = None
    for record in records:
        floor = job_floor_mb(record, prior, prior_rule)
        if floor is not None and floor[0] > budget_mb and (worst is None or floor[0] > worst[1]):
            worst = (record, floor[0], floor[1])
    if worst is not None:
        record, need, why = worst
        source = f" ({budget_source})" if budget_source else ""
        raise ChromoschedError(
            f"job {record.label} needs at least {need:.0f} MB ({why}), more than the whole memory budget of "
            f"{budget_mb:.0f} MB{source}: raise the budget (--resources mem_mb=N or --scheduler-chromosched-budget-mb N)"
        )


def check_run_inputs(
    settings,
    budget_mb: float | None = None,
    records: Sequence[JobRecord] = (),
    log: Callable[[str], None] = lambda msg: None,
    budget_source: str = "",
) -> RunInputs:
    """Every plugin input, in the order a user fixes them: settings, prior, ordering table, budget."""
    check_settings(settings)
    loaded = RunInputs()
    if settings.mode == "static":
        loaded.ordering_table = load_ordering_table(settings)
    else:
        loaded.prior = load_run_prior(settings, log)
        if budget_mb is not None:
            check_budget(budget_mb, records, loaded.prior, settings.prior_rule, budget_source)
    return loaded


def looks_like_path(value: str) -> bool:
    return os.sep in value or value.endswith((".tsv", ".txt")) or os.path.exists(value)
