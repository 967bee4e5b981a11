"""The design Beagle is profiled over: its eight memory features, their ranges, the simulated base
chromosome every point is cut from, and the points (a scrambled Sobol sequence, or the 16 corners of the ranges).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

FEATURES = (
    "threads",
    "burnin",
    "iterations",
    "window_cm",
    "target_variants",
    "target_samples",
    "ref_variants",
    "ref_samples",
)


@dataclass(frozen=True)
class DesignSpace:
    """Ranges of the eight axes (inclusive). Counts are sampled log-uniformly."""

    threads: tuple[int, int] = (1, 4)
    burnin: tuple[int, int] = (1, 4)
    iterations: tuple[int, int] = (2, 10)
    window_cm: tuple[float, float] = (4.5, 30.0)  # Beagle's overlap stays at its default 2 cM
    array_density: tuple[float, float] = (0.03, 0.3)  # target_variants / ref_variants
    target_samples: tuple[int, int] = (8, 160)
    ref_variants: tuple[int, int] = (1500, 30000)
    ref_samples: tuple[int, int] = (40, 800)
    min_target_variants: int = 50


@dataclass(frozen=True)
class BaseData:
    """The simulated chromosome every design point is cut from."""

    chrom: str = "chr1"
    length_bp: int = 12_462_531  # GRCh37 chr1 / 20: ~14 cM, so windows below that split it
    n_ref: int = 1000
    n_target: int = 160
    seed: int = 7


@dataclass
class DesignPoint:
    design_id: str
    split: str
    threads: int
    burnin: int
    iterations: int
    window_cm: float
    target_variants: int
    target_samples: int
    ref_variants: int
    ref_samples: int

    def features(self) -> dict:
        return {k: getattr(self, k) for k in FEATURES}


def _log_uniform(u: float, lo: float, hi: float) -> float:
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def _int_uniform(u: float, lo: int, hi: int) -> int:
    return int(min(hi, lo + math.floor(u * (hi - lo + 1))))


def make_design(
    n: int, seed: int, split: str, space: DesignSpace, n_common: int, n_panel: int | None = None
) -> list[DesignPoint]:
    """``n`` points of a scrambled Sobol sequence mapped onto ``space`` (reference markers capped at
    the ``n_panel`` markers the base chromosome has)."""
    import warnings

    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Sobol prefers powers of two; any n is still space-filling
        u = qmc.Sobol(d=8, scramble=True, seed=seed).random(n)
    points = []
    for i, row in enumerate(u):
        ref_variants = int(round(_log_uniform(row[6], *space.ref_variants)))
        if n_panel is not None:
            ref_variants = min(ref_variants, n_panel)
        density = _log_uniform(row[4], *space.array_density)
        target_variants = int(
            min(n_common, ref_variants, max(space.min_target_variants, round(density * ref_variants)))
        )
        points.append(
            DesignPoint(
                design_id=f"{split}-{i:04d}",
                split=split,
                threads=_int_uniform(row[0], *space.threads),
                burnin=_int_uniform(row[1], *space.burnin),
                iterations=_int_uniform(row[2], *space.iterations),
                window_cm=round(_log_uniform(row[3], *space.window_cm), 2),
                target_variants=target_variants,
                target_samples=int(round(_log_uniform(row[5], *space.target_samples))),
                ref_variants=ref_variants,
                ref_samples=int(round(_log_uniform(row[7], *space.ref_samples))),
            )
        )
    return points


def interleave(fit: Sequence[DesignPoint], heldout: Sequence[DesignPoint], ratio: int = 3) -> list[DesignPoint]:
    """fit[0:3], heldout[0], fit[3:6], heldout[1], ... (any prefix holds both splits)."""
    out: list[DesignPoint] = []
    f, h = list(fit), list(heldout)
    while f or h:
        out.extend(f[:ratio])
        del f[:ratio]
        if h:
            out.append(h.pop(0))
    return out


def corner_design(space: DesignSpace, n_common: int, n_panel: int, prefix: str = "") -> list[DesignPoint]:
    """The adversarial corners of ``space``: every combination of {smallest, largest} arrays (reference
    markers, array density and reference samples together), {shortest, longest} window, {fewest, most}
    target samples and {1, most} threads: 16 points; burn-in and iterations at their smallest (CPU only).
    Smallest arrays with the longest windows is the corner where the old prior ran out of heap."""
    points = []
    for i, (big_arrays, long_window, many_samples, many_threads) in enumerate(product((False, True), repeat=4)):
        ref_variants = min(n_panel, space.ref_variants[1] if big_arrays else space.ref_variants[0])
        density = space.array_density[1] if big_arrays else space.array_density[0]
        target_variants = int(
            min(n_common, ref_variants, max(space.min_target_variants, round(density * ref_variants)))
        )
        points.append(
            DesignPoint(
                design_id=f"{prefix}corner-{i:02d}",
                split="corner",
                threads=space.threads[1] if many_threads else space.threads[0],
                burnin=space.burnin[0],
                iterations=space.iterations[0],
                window_cm=float(space.window_cm[1] if long_window else space.window_cm[0]),
                target_variants=target_variants,
                target_samples=space.target_samples[1] if many_samples else space.target_samples[0],
                ref_variants=ref_variants,
                ref_samples=space.ref_samples[1] if big_arrays else space.ref_samples[0],
            )
        )
    return points


TINY_SPACE = DesignSpace(
    threads=(1, 2),
    burnin=(1, 2),
    iterations=(1, 2),
    window_cm=(4.5, 10.0),
    array_density=(0.1, 0.3),
    target_samples=(5, 20),
    ref_variants=(300, 1000),
    ref_samples=(20, 60),
    min_target_variants=20,
)
TINY_BASE = BaseData(chrom="chr22", length_bp=600_000, n_ref=60, n_target=20, seed=3)
