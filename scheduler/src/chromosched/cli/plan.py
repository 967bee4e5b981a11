"""`chromosched plan`: the dry-run planner (``snakemake -n`` never calls a scheduler plugin).

Run in a workflow directory with the plugin's own settings::

    chromosched plan --mode dynamic --budget-mb 8000 --cores 4
    chromosched plan --profile profiles/local --json
    chromosched plan --mode static --ordering GRCh38 --workers 4 --budget-mb 16000
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ChromoschedError
from ..runtime.prediction_store import DEFAULT_STORE
from ..runtime.session import MODES, SessionSettings
from ..runtime.workflow_plan import DEFAULT_RUNTIME_S, plan_workflow, read_workflow_dag


def register(commands, simulate) -> None:
    p = commands.add_parser(
        "plan",
        help="dry-run planner: memory-safe batches, peak and makespan before anything runs",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("targets", nargs="*", help="targets (default: the workflow's default target)")
    p.add_argument("--snakefile", "-s", help="Snakefile (default: ./Snakefile)")
    p.add_argument("--directory", "-d", default=".", help="workflow working directory (default: .)")
    p.add_argument("--configfile", "--configfiles", nargs="+", default=[], help="config file(s), as for snakemake")
    p.add_argument(
        "--profile",
        help="a Snakemake profile folder: cores, resources mem_mb and scheduler-chromosched-* keys are read from its config.yaml",
    )
    p.add_argument("--cores", "-c", type=int, help="cores (default: the profile's, else this machine's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    # The plugin's settings, same names as --scheduler-chromosched-<field>.
    p.add_argument("--mode", choices=MODES, default=None)
    p.add_argument("--ordering", default=None, help="genome build or ordering-table path (static mode)")
    p.add_argument("--workers", type=int, default=None, help="K for static mode (default: cores)")
    p.add_argument(
        "--budget-mb", type=int, default=None, help="memory budget (default: the profile's resources mem_mb)"
    )
    p.add_argument("--prior", default=None, help="RAM prior JSON (default: the built-in Beagle prior)")
    p.add_argument("--prior-rule", default=None)
    p.add_argument("--packer", choices=("knapsack", "greedy"), default=None)
    p.add_argument("--gamma-max", type=float, default=None)
    p.add_argument("--gamma-min", type=float, default=None)
    p.add_argument("--degree", type=int, default=None)
    p.add_argument("--store", default=None, help=f"prediction store (not written by plan; default {DEFAULT_STORE})")
    p.add_argument(
        "--model", default=None, help="learned model of earlier runs to plan with (default .chromosched/model.json)"
    )
    p.set_defaults(func=run_plan)


def _profile_values(profile: str | None) -> dict:
    if not profile:
        return {}
    path = Path(profile)
    path = path / "config.yaml" if path.is_dir() else path
    if not path.is_file():
        raise ChromoschedError(f"profile {profile}: no config.yaml found")
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ChromoschedError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    out: dict = {}
    cores = data.get("cores")
    if isinstance(cores, int):
        out["cores"] = cores
    resources = data.get("resources") or []
    items = resources.items() if isinstance(resources, dict) else (str(r).split("=", 1) for r in resources)
    for item in items:
        if len(item) == 2 and item[0].strip() == "mem_mb":
            out["budget_mb"] = int(float(str(item[1]).strip()))
    for key, value in data.items():
        if str(key).startswith("scheduler-chromosched-"):
            out[str(key)[len("scheduler-chromosched-") :].replace("-", "_")] = value
    return out


def run_plan(args) -> int:
    profile = _profile_values(args.profile)
    cores = args.cores or profile.get("cores") or os.cpu_count() or 1
    budget = args.budget_mb or profile.get("budget_mb")
    fields = {}
    for name in (
        "mode",
        "ordering",
        "workers",
        "prior",
        "prior_rule",
        "packer",
        "gamma_max",
        "gamma_min",
        "degree",
        "store",
        "model",
    ):
        value = getattr(args, name)
        if value is None:
            value = profile.get(name)
        if value is not None:
            fields[name] = value
    settings = SessionSettings(**fields, budget_mb=budget)
    jobs = read_workflow_dag(
        snakefile=args.snakefile,
        workdir=args.directory,
        cores=cores,
        # No mem_mb limit for the DAG: Snakemake would silently cap larger requests to it, and a
        # job that declares more than the budget is exactly what the plan must show.
        resources=None,
        configfiles=args.configfile,
        targets=args.targets,
    )
    cwd = os.getcwd()
    os.chdir(args.directory)  # the model and benchmark paths are relative to the workflow
    try:
        plan = plan_workflow(jobs, settings, cores=cores, budget_mb=budget)
    finally:
        os.chdir(cwd)
    if args.json:
        print(json.dumps(plan.to_json(), indent=1))
        return 0
    print(
        f"chromosched plan: {settings.mode} mode, budget {plan.budget_mb:.0f} MB, {cores} cores, {len(plan.jobs)} jobs"
    )
    batches: dict[int, list] = {}
    for job in plan.jobs:
        batches.setdefault(job.batch, []).append(job)
    for number, members in sorted(batches.items()):
        total = sum(j.predicted_mem_mb for j in members)
        names = ", ".join(
            f"{j.rule}{'(' + ','.join(j.wildcards.values()) + ')' if j.wildcards else ''} {j.predicted_mem_mb} MB"
            for j in members
        )
        print(f"  batch {number:3d} at {members[0].start_s:8.1f} s: {total:7d} MB  {names}")
    viewed = [j for j in plan.jobs if j.prior_features]
    if viewed:
        print("RAM prior features (derived from each job's inputs and its chromosome's genetic length):")
        for j in viewed:
            label = f"{j.rule}({','.join(j.wildcards.values())})" if j.wildcards else j.rule
            view = j.prior_features
            if "error" in view:
                print(f"  {label}: {view['error']}")
                continue
            shown = ", ".join(f"{k}={v:g}" for k, v in view["features"].items())
            print(f"  {label}: {shown} -> heap estimate {view['estimate_mb']:.1f} MB")
    kinds = {
        "benchmark": "measured earlier",
        "rule-mean": "rule mean of measured",
        "declared": "rules' runtime limits",
        "default": f"{DEFAULT_RUNTIME_S:.0f} s default",
    }
    sources = ", ".join(f"{v} {kinds[k]}" for k, v in plan.runtime_sources.items() if v)
    note = " - an upper bound until a run has left benchmark files" if plan.runtime_sources.get("declared") else ""
    print(
        f"peak {plan.peak_mb:.0f} MB of {plan.budget_mb:.0f} MB; estimated makespan {plan.makespan_estimate_s:.0f} s "
        f"(runtimes: {sources}{note})"
    )
    for item in plan.cannot_fit:
        wc = ",".join(item["wildcards"].values())
        print(f"  cannot run: {item['rule']}{'(' + wc + ')' if wc else ''}: {item['reason']}")
    return 1 if plan.cannot_fit else 0
