"""Progress bars: drawn on a terminal (a real pseudo-terminal here), absent from logs and CI."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from chromosched.progress import ProgressBar, interactive


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CHROMOSCHED_NO_PROGRESS")}
    return dict(env, COLUMNS="100", **extra)


def _on_a_terminal(cmd: list[str], env: dict) -> tuple[int, str]:
    """Run ``cmd`` with stderr on a pseudo-terminal; return (exit status, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


SIMULATE = [
    sys.executable,
    "-m",
    "chromosched",
    "simulate",
    "dynamic",
    "--seeds",
    "3",
    "--task-size",
    "0.1",
    "--policies",
    "knapsack,chromosched",
]


def test_simulate_dynamic_draws_a_bar_on_a_terminal():
    status, screen = _on_a_terminal(SIMULATE, _env())
    assert status == 0, screen
    assert "simulate dynamic" in screen and "3/3" in screen and "\r" in screen


def test_no_bar_in_a_log_or_in_ci():
    plain = subprocess.run(SIMULATE, capture_output=True, text=True, env=_env(), timeout=120)
    assert plain.returncode == 0 and "\r" not in plain.stderr and "simulate dynamic" not in plain.stderr
    status, screen = _on_a_terminal(SIMULATE, _env(CI="true"))
    assert status == 0 and "3/3" not in screen


def test_tables_bar_on_a_terminal_and_result_lines_in_logs():
    cmd = [sys.executable, "-m", "chromosched", "tables", "--genome", "GRCh37", "--workers", "2-4", "--budget", "200"]
    status, screen = _on_a_terminal(cmd, _env())
    assert status == 0, screen
    assert "optimising orders" in screen and "3/3" in screen and "K=4" in screen
    plain = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert "K=2" in plain.stderr and "K=4" in plain.stderr and "\r" not in plain.stderr


def test_progress_bar_object():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen, log = Terminal(), io.StringIO()
    os.environ.pop("CHROMOSCHED_NO_PROGRESS", None)
    ci = os.environ.pop("CI", None)
    try:
        assert interactive(screen) and not interactive(log)
        with ProgressBar(2, "work", stream=screen) as bar, ProgressBar(2, "work", stream=log) as quiet:
            for b in (bar, quiet):
                b.write("a result line")
                b.update(2, note="done")
        assert "work" in screen.getvalue() and "2/2" in screen.getvalue()
        assert log.getvalue() == "a result line\n"
    finally:
        if ci is not None:
            os.environ["CI"] = ci


def test_demo_simulation_bar_on_a_terminal(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "chromosched_pipeline.demo_data.simulate",
        "--out",
        str(tmp_path / "a"),
        "--scale",
        "2000",
        "--chromosomes",
        "chr21",
        "chr22",
        "--n-ref",
        "40",
        "--n-target",
        "10",
    ]
    status, screen = _on_a_terminal(cmd, _env())
    assert status == 0, screen
    assert "simulating" in screen and "2/2" in screen and "simulate: [2/2] chr22" in screen
    cmd[4] = str(tmp_path / "b")
    plain = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert plain.returncode == 0 and "simulate: [2/2] chr22" in plain.stderr and "\r" not in plain.stderr


def test_beagle_profile_bar_on_a_terminal(tmp_path, monkeypatch):
    """One real design point (tiny Beagle run) with stderr on a terminal: a bar over the points,
    the profiler's log lines above it."""
    from chromosched_pipeline.imputation.beagle_design import TINY_BASE, TINY_SPACE
    from chromosched_pipeline.imputation.beagle_profile import profile

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CHROMOSCHED_NO_PROGRESS", raising=False)
    rows = profile(
        tmp_path / "runs.tsv",
        tmp_path / "work",
        n_fit=2,
        n_heldout=1,
        seed=11,
        space=TINY_SPACE,
        base=TINY_BASE,
        limit=1,
    )
    assert len(rows) == 1
    text = screen.getvalue()
    assert "beagle profile" in text and "1/1" in text and "beagle_profile: 3 design points" in text
