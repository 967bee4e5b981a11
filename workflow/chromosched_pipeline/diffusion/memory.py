"""Memory-scaled inference (AutoChunk-like): peak = a + b x rows, measured; chunk size from the
job's allocation so it never exceeds it.

A row is one image in one batched forward; with classifier-free guidance (cond_scale != 1) each
sample row costs two forward rows. ``a`` holds everything that does not scale with the batch
(interpreter, torch, weights, the job's inputs), ``b`` the activations and sampler state per row.

Measured, not assumed: on CUDA the peak is ``torch.cuda.max_memory_allocated`` (reset before each
probe); on the CPU the process's RSS high-water mark ``VmHWM``, which Linux resets when "5" is
written to ``/proc/self/clear_refs``. Two probes (one sampling step at two chunk sizes, the larger
last so that freed-but-kept allocator pages do not hide it) fit a and b.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

HEADROOM = 0.9  # use at most this share of the allocation (allocator slack, the shell around us)


class AllocationTooSmall(MemoryError):
    """Not even one chain fits the allocation: a clear failure before any sampling instead of an
    OOM kill. A MemoryError, so the job's outcome line says "oom" and its retry gets more memory."""


def reset_process_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def process_peak_mb() -> float:
    from chromosched_pipeline.step_outcome import own_peak_kib

    return own_peak_kib() / 1024.0


def measure_peak_mb(fn: Callable[[], object], device: torch.device | str = "cpu") -> float:
    """Peak memory (MB) while ``fn`` runs: CUDA allocator peak on a GPU, process RSS peak on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    reset_process_peak()
    fn()
    return process_peak_mb()


@dataclass(frozen=True)
class MemoryModel:
    a_mb: float
    b_mb_per_row: float

    def peak_mb(self, rows: int) -> float:
        return self.a_mb + self.b_mb_per_row * rows

    @classmethod
    def fit(cls, rows: tuple[int, int], peaks: tuple[float, float]) -> MemoryModel:
        (r1, r2), (p1, p2) = rows, peaks
        b = max((p2 - p1) / (r2 - r1), 1e-6)
        return cls(a_mb=p2 - b * r2, b_mb_per_row=b)

    def to_dict(self) -> dict:
        return {"a_mb": round(self.a_mb, 2), "b_mb_per_row": round(self.b_mb_per_row, 4)}


def rows_per_sample(n_tiles: int, cond_scale: float) -> int:
    return n_tiles * (1 if cond_scale == 1.0 else 2)


def choose_chunk(
    model: MemoryModel, allocation_mb: float, rows_each: int, total_samples: int, headroom: float = HEADROOM
) -> int:
    """Samples per chunk: the most whose predicted peak stays within headroom x allocation."""
    usable = allocation_mb * headroom
    fit = math.floor((usable - model.a_mb) / (model.b_mb_per_row * rows_each))
    if fit < 1:
        need = model.peak_mb(rows_each) / headroom
        raise AllocationTooSmall(
            f"one chain ({rows_each} rows) needs ~{need:.0f} MB with headroom, the allocation is {allocation_mb:.0f} MB"
        )
    return max(1, min(total_samples, fit))


def calibrate(
    run_rows: Callable[[int], object],
    rows_each: int,
    device: torch.device | str = "cpu",
    probe_samples: tuple[int, int] = (1, 4),
) -> MemoryModel:
    """Fit a + b x rows from ``run_rows(samples)`` (one sampling step of that many chains)."""
    peaks = tuple(measure_peak_mb(lambda n=n: run_rows(n), device) for n in probe_samples)
    return MemoryModel.fit(tuple(n * rows_each for n in probe_samples), peaks)
