"""Keeping memory for the longest ready job (EASY backfilling over predicted runtimes).

A packer that fills the free memory at every round starves big jobs: memory comes free a little at
a time, smaller jobs take it at once, and the longest jobs start last, where they end the run
alone (seen in the unseen-workflow family: chr1 and chr2 of a quadratic law ran one after the
other for the last 10 s). The head, the ready job with the longest predicted remaining work (its
critical-path rank, else its runtime), therefore starts first whenever it fits. When it does not,
the time T at which it will fit is computed from the running jobs' predicted ends, and another
job may start now only if it does not push T later: it is predicted to end by T, or it fits in
the memory left over at T beside the head (EASY backfilling; Lifka 1995, on predicted runtimes).

Everything here is plain arrays; nothing knows Snakemake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OVERDUE = 0.5  # a job past its predicted end: expected to need this fraction of its age again


@dataclass(frozen=True)
class HeadPlan:
    """What a round may do around the head (``head`` indexes the ready arrays).

    ``fits``: the head fits now and starts first. Otherwise ``short`` marks the jobs predicted to
    end by ``at`` (the head's reserved start), which may use any free memory, and ``spare`` is
    the memory left over at ``at`` beside the head, which the other jobs may share."""

    head: int
    fits: bool
    at: float = math.inf
    spare: float = 0.0
    short: np.ndarray | None = None


def plan_head(
    mem: np.ndarray,
    length: np.ndarray,
    runtime: np.ndarray,
    free_mem: float,
    running_ends: Sequence[tuple[float, float, float]],
    now: float,
) -> HeadPlan | None:
    """The plan for one round, or None when no reservation applies.

    ``mem``: each ready job's allocation; ``length``: its priority (remaining path or runtime;
    NaN unknown); ``runtime``: its own predicted runtime (NaN unknown); ``running_ends``:
    (predicted end, memory freed, start) of each running job (end inf when unknown); ``now``:
    the clock the ends are on. Ties in ``length`` go to the lowest index (preference order).

    A running job past its predicted end is expected to need half its age again (it ran long
    once, it may run long again): a head must not hold every other job back on a prediction
    that has already failed."""
    known = ~np.isnan(length)
    if len(mem) == 0 or not known.any():
        return None
    head = int(np.flatnonzero(known)[np.argmax(length[known])])
    need = float(mem[head])
    if need <= free_mem:
        return HeadPlan(head, True)
    avail, at = float(free_mem), None
    for end, freed in sorted((e if e > now else now + OVERDUE * (now - s), m) for e, m, s in running_ends):
        if not math.isfinite(end):
            break  # unknown ends: no later time can be promised
        avail += freed
        if avail >= need:
            at = end
            break
    if at is None:
        return None
    with np.errstate(invalid="ignore"):
        short = now + runtime <= at  # NaN runtime compares False: not known to be short
    short[head] = False
    return HeadPlan(head, False, at, avail - need, short)
