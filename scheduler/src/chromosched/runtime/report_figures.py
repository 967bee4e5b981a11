"""The figures of ``chromosched report`` (matplotlib, PNG), drawn from :mod:`chromosched.runtime.run_events`.

- ``gantt``: one bar per job attempt over time, coloured by rule; OOM attempts outlined red.
- ``memory``: memory of the running jobs over time: reserved by the scheduler, measured need
  (each job's measured peak held over its run), and the budget.
- ``schedule``: the two above on one time axis (the pipeline report draws this one).
- ``predicted_vs_measured``: per rule, each job's prediction (and what it was given) against its
  measured need.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..atomic_files import write_bytes_atomic  # noqa: E402
from .run_events import RunEvents, memory_steps  # noqa: E402


def _colours(run: RunEvents) -> dict[str, tuple]:
    rules = sorted({a.rule for a in run.attempts})
    return {r: plt.cm.tab20(i % 20) for i, r in enumerate(rules)}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return buffer.getvalue()


def _draw_gantt(ax, run: RunEvents, colour: dict[str, tuple]) -> None:
    for i, a in enumerate(run.attempts):
        oom = a.outcome in ("oom", "failed")
        ax.barh(
            i,
            max(a.end_s - a.start_s, 0.01),
            left=a.start_s,
            color=colour[a.rule],
            edgecolor="red" if oom else "none",
            linewidth=1.5,
            hatch="//" if a.outcome == "unfinished" else None,
        )
    if len(run.attempts) <= 60:
        ax.set_yticks(range(len(run.attempts)), [f"{a.label} #{a.attempt}" for a in run.attempts], fontsize=7)
    ax.invert_yaxis()
    ax.set_title(f"jobs over time ({len(run.attempts)} attempts; red edge: failed, out of memory unless stated)")
    ax.legend(
        handles=[Patch(color=c, label=r) for r, c in colour.items()],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=7,
    )


def _draw_memory(ax, run: RunEvents) -> None:
    for what, style in (("reserved", dict(color="black")), ("measured", dict(color="tab:blue", alpha=0.8))):
        times, levels = memory_steps(run.attempts, what)
        label = "reserved by the scheduler" if what == "reserved" else "measured need (each job's peak over its run)"
        ax.step(times, levels, where="post", label=label, **style)
    if run.budget_mb:
        ax.axhline(run.budget_mb, color="red", linestyle="--", label=f"budget {run.budget_mb:.0f} MB")
    ax.set_ylabel("MB")
    ax.set_title("memory of the running jobs")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def _gantt_height(run: RunEvents) -> float:
    return min(max(3.0, 0.22 * len(run.attempts) + 1.5), 14.0)


def gantt(run: RunEvents) -> bytes:
    fig, ax = plt.subplots(figsize=(10, _gantt_height(run)))
    _draw_gantt(ax, run, _colours(run))
    ax.set_xlabel("seconds since the first job started")
    return _png(fig)


def memory(run: RunEvents) -> bytes:
    fig, ax = plt.subplots(figsize=(10, 3.8))
    _draw_memory(ax, run)
    ax.set_xlabel("seconds since the first job started")
    return _png(fig)


def schedule(run: RunEvents) -> bytes:
    """The gantt above the memory curve on one time axis: the pipeline report's one-picture schedule."""
    height = _gantt_height(run)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, height + 3.8), sharex=True, gridspec_kw={"height_ratios": [height, 3.8]}
    )
    _draw_gantt(top, run, _colours(run))
    _draw_memory(bottom, run)
    bottom.set_xlabel("seconds since the first job started")
    return _png(fig)


def predicted_vs_measured(run: RunEvents) -> bytes:
    colour = _colours(run)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    top = 1.0
    for rule, c in colour.items():
        mine = [a for a in run.attempts if a.rule == rule and a.need_mb]
        if not mine:
            continue
        predicted = [(a.need_mb, a.predicted_mb) for a in mine if a.predicted_mb]
        if predicted:
            ax.scatter(*zip(*predicted), color=c, marker="o", s=28, label=f"{rule}: predicted")
        ax.scatter(
            [a.need_mb for a in mine], [a.mem_mb for a in mine], color=c, marker="+", s=40, label=f"{rule}: reserved"
        )
        top = max(top, *(a.need_mb for a in mine), *(a.mem_mb for a in mine), *(p for _, p in predicted))
    ax.plot([0, top * 1.05], [0, top * 1.05], color="grey", linewidth=1, label="= measured")
    ax.set_xlabel("measured need (MB)")
    ax.set_ylabel("predicted / reserved (MB)")
    ax.set_title("predicted vs measured memory, per rule")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _png(fig)


FIGURES = {"gantt": gantt, "memory": memory, "predicted_vs_measured": predicted_vs_measured}


def write_figures(run: RunEvents, out_dir: str | Path) -> dict[str, bytes]:
    """Draw every figure, write ``<name>.png`` into ``out_dir`` (atomically); return the PNG bytes."""
    out = {}
    for name, draw in FIGURES.items():
        out[name] = draw(run)
        write_bytes_atomic(Path(out_dir) / f"{name}.png", out[name])
    return out
