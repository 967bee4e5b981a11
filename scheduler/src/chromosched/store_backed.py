"""Store-backed ``mem_mb`` for any Snakemake rule (the pipeline's rules use their own resource model,
which reads the same store).

    from chromosched.store_backed import predicted_mem_mb

    rule work:
        resources:
            mem_mb=predicted_mem_mb("work", fallback=lambda wildcards, input, attempt: 2000 * attempt)

With ``snakemake --scheduler chromosched`` the plugin writes each job's predicted memory to the
prediction store before the job starts; this callable returns it, so the number the scheduler
packs with is the job's ``mem_mb`` (and ``sbatch --mem``). Without an entry (other schedulers,
DAG build, dry runs) the fallback answers: an int, or a callable ``(wildcards, input, attempt)``.
"""

from __future__ import annotations

from collections.abc import Callable

from .runtime.prediction_store import PredictionStore


def predicted_mem_mb(rule: str, fallback: int | Callable[..., int], store: str | None = None) -> Callable[..., int]:
    def mem_mb(wildcards, input, attempt):
        entry = PredictionStore(store).get(rule, {str(k): str(v) for k, v in dict(wildcards.items()).items()}, attempt)
        if entry is not None:
            return entry.mem_mb
        return int(fallback(wildcards, input, attempt)) if callable(fallback) else int(fallback)

    mem_mb.__name__ = f"predicted_mem_mb_{rule}"
    return mem_mb
