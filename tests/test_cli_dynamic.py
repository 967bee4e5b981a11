import json
import subprocess
import sys

import pytest

from chromosched.cli import build_parser, main
from chromosched.cli.dynamic import build_settings

CONTRACT = [
    "knapsack",
    "knapsack+bias",
    "knapsack+bias+smallest",
    "knapsack+bias+smallest+prior",
    "sizey",
    "greedy-declared",
    "chromosched",
    "optimum",
]
FAST = ["--optimum-time-limit", "0.3", "--optimum-search", "30", "--quiet"]


def test_json_contract(capsys):
    code = main(["simulate", "dynamic", "--seeds", "2", "--task-size", "0.4", "--json", *FAST])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    names = [p["name"] for p in out["policies"]]
    for name in CONTRACT:
        assert name in names
    for p in out["policies"]:
        for key in ("name", "makespan_mean", "makespan_sd", "overcommits_mean", "utilisation_mean", "wasted_mean"):
            assert key in p
        assert p["makespan_mean"] > 0 and p["overcommits_mean"] >= 0
    opt = out["optimum_makespan_mean"]
    assert isinstance(opt, float)
    assert opt == pytest.approx(next(p for p in out["policies"] if p["name"] == "optimum")["makespan_mean"])
    assert all(p["makespan_mean"] >= opt - 1e-6 for p in out["policies"])
    assert out["optimum"]["statuses"] and out["settings"]["n_seeds"] == 2


def test_table_and_progress_on_stderr():
    cmd = [
        sys.executable,
        "-m",
        "chromosched",
        "simulate",
        "dynamic",
        "--seeds",
        "1",
        "--task-size",
        "0.1",
        "--policies",
        "knapsack,chromosched,optimum",
        "--optimum-time-limit",
        "0.3",
        "--optimum-search",
        "20",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "chromosched" in res.stdout and "makespan" in res.stdout and "x opt" in res.stdout
    assert "seed" not in res.stderr and "\r" not in res.stderr  # no progress in a log (stderr is not a TTY)


def test_semantics_and_workload_flags(capsys):
    code = main(
        [
            "simulate",
            "dynamic",
            "--seeds",
            "1",
            "--task-size",
            "0.7",
            "--semantics",
            "system",
            "--policies",
            "chromosched,greedy-declared",
            "--tasks",
            "8",
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["semantics"] == "system" and out["settings"]["profile"]["n_tasks"] == 8
    assert out["optimum_makespan_mean"] is None


@pytest.mark.parametrize("flag, expected", [("0", None), ("3", 3)])
def test_max_parallel_zero_means_no_cap(flag, expected):
    args = build_parser().parse_args(["simulate", "dynamic", "--profile", "paper-cal", "--max-parallel", flag])
    assert build_settings(args).profile.max_parallel == expected  # paper-cal's own cap is 10


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policies", "knapsack,nope"], "unknown policy 'nope'"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--relative-sizes", "1,x"], "--relative-sizes must be comma-separated numbers"),
        (["--task-size", "-1"], "task size must be > 0"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    code = main(["simulate", "dynamic", "--quiet", *argv])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("chromosched: error:")
