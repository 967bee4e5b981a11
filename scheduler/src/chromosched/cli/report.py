"""`chromosched report`: an HTML page for a finished run, from the scheduler's stored events.

    chromosched report                       # the run in this directory
    chromosched report RUN_DIR --out DIR     # writes DIR/report.html, the PNGs and summary.json
    chromosched report RUN_DIR --json        # the summary numbers only

It reads only ``.chromosched/events.jsonl`` (or ``--events``), which the plugin writes in the main
Snakemake process for local and Slurm runs alike: no ``snakemake --report``, no benchmark files.
The page shows the jobs over time (Gantt), memory over time (reserved, measured, budget),
predicted vs measured memory per rule, the out-of-memory retries, the static ordering if one was
used, and the summary numbers (makespan, peaks, over-reservation, retries).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..atomic_files import write_text_atomic
from ..runtime.run_events import load_run_events, summary

DEFAULT_EVENTS = ".chromosched/events.jsonl"
DEFAULT_OUT = "chromosched_report"


def register(commands, simulate) -> None:
    p = commands.add_parser(
        "report",
        help="HTML report of a finished run from the scheduler's event log",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("run_dir", nargs="?", default=".", help="the run's working directory (default: .)")
    p.add_argument("--events", default=None, help=f"event log (default: RUN_DIR/{DEFAULT_EVENTS})")
    p.add_argument("--out", default=None, help=f"output folder (default: RUN_DIR/{DEFAULT_OUT})")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (and still write the report)")
    p.set_defaults(func=run_report)


def run_report(args) -> int:
    from ..runtime.report_figures import write_figures

    run_dir = Path(args.run_dir)
    run = load_run_events(args.events or run_dir / DEFAULT_EVENTS)
    out = Path(args.out) if args.out else run_dir / DEFAULT_OUT
    numbers = summary(run)
    figures = write_figures(run, out)
    write_text_atomic(out / "summary.json", json.dumps(numbers, indent=1) + "\n")
    write_text_atomic(out / "report.html", render_html(numbers, figures))
    if args.json:
        print(json.dumps(numbers, indent=1))
    else:
        print(
            f"chromosched report: {out / 'report.html'} ({numbers['attempts']} job attempts, makespan "
            f"{numbers['makespan_s']:.1f} s, peak reserved {numbers['peak_reserved_mb']:.0f} MB, "
            f"{numbers['oom_retries']} out-of-memory retries)"
        )
    return 0


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(numbers: dict, figures: dict[str, bytes]) -> str:
    """One self-contained page (figures inlined)."""

    def img(name: str, alt: str) -> str:
        data = base64.b64encode(figures[name]).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    over = numbers["over_reservation"]
    headline = [
        ["mode", numbers["mode"]],
        ["makespan (s)", numbers["makespan_s"]],
        ["jobs / attempts", f"{numbers['jobs']} / {numbers['attempts']}"],
        ["retries (out of memory)", f"{numbers['retries']} ({numbers['oom_retries']})"],
        ["budget (MB)", numbers["budget_mb"]],
        ["peak reserved (MB)", numbers["peak_reserved_mb"]],
        ["peak measured need (MB)", numbers["peak_measured_mb"]],
        ["over-reservation (reserved / measured MB x s)", "n/a" if over is None else f"{over:.2f} x"],
    ]
    if numbers["unfinished"]:
        headline.append(
            ["attempts without an end in the log (the run's last job, or a killed run)", numbers["unfinished"]]
        )
    rules = [
        [
            rule,
            r["attempts"],
            r["oom_retries"],
            r["mean_reserved_mb"],
            r["mean_measured_mb"],
            r["median_predicted_over_measured"],
        ]
        for rule, r in numbers["per_rule"].items()
    ]
    ooms = [
        [
            a["rule"],
            ",".join(map(str, a["wildcards"].values())),
            a["attempt"],
            a["mem_mb"],
            a["source"],
            round(a["start_s"], 1),
            round(a["end_s"], 1),
        ]
        for a in numbers["oom_attempts"]
    ]
    order = numbers["static_order"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>chromosched run report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}img{max-width:100%}</style></head><body>",
        "<h1>chromosched run report</h1>",
        f"<p>From the event log <code>{html.escape(str(numbers['events']))}</code>.</p>",
        "<h2>Summary</h2>",
        _table(headline, ["", ""]),
        "<h2>Jobs over time</h2>",
        img("gantt", "Gantt chart of job attempts"),
        "<h2>Memory over time</h2>",
        img("memory", "reserved vs measured memory vs budget"),
        "<h2>Predicted vs measured, per rule</h2>",
        img("predicted_vs_measured", "predicted vs measured memory"),
        _table(
            rules,
            [
                "rule",
                "attempts",
                "out-of-memory retries",
                "mean reserved MB",
                "mean measured MB",
                "median predicted / measured",
            ],
        ),
        "<h2>Out-of-memory retries</h2>",
        _table(ooms, ["rule", "wildcards", "attempt", "reserved MB", "source", "start s", "end s"])
        if ooms
        else "<p>None.</p>",
        "<h2>Static ordering</h2>",
        f"<p>{html.escape(' '.join(order))}</p>" if order else "<p>None (dynamic mode).</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
