"""Real Snakemake runs with ``--scheduler chromosched`` on a small workflow whose jobs allocate a
known amount of memory per chromosome (tests/data/memory_workflow)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

from chromosched.genomes import genome_lengths
from chromosched.runtime.prediction_store import PredictionStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import unseen_workflows as family  # noqa: E402  (its run_snakemake runs every small test workflow)

WORKFLOW = Path(__file__).parent / "data" / "memory_workflow"
CHROMS = [f"chr{i}" for i in range(1, 7)]
LENGTHS = genome_lengths("GRCh37")
# True need proportional to chromosome length (125 MB for chr1); the rule declares 70% of it.
NEED = {c: round(0.5 * LENGTHS[c] / 1e6) for c in CHROMS}
LOW = {c: round(0.7 * NEED[c]) for c in CHROMS}
BUDGET = 300


def run(workdir: Path, config: dict, *extra: str, scheduler: str = "chromosched", budget: int = BUDGET, cores: int = 4):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return family.run_snakemake(
        workdir, scheduler, budget, cores=cores, extra=extra, snakefile=WORKFLOW / "Snakefile", latency_wait=None
    )


def ledger(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "ledger.jsonl").read_text().splitlines()]


def peak_true_memory(entries: list[dict]) -> float:
    """Largest sum of the true needs of jobs running at once (half-open intervals)."""
    events = sorted([(e["start"], 1, e["need"]) for e in entries] + [(e["end"], 0, -e["need"]) for e in entries])
    level = peak = 0.0
    for _, _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def config(**kw) -> dict:
    base = {"chroms": CHROMS, "need": NEED, "declared": LOW, "hold": 1.5, "outcome": False, "enforce": False}
    base.update(kw)
    return base


def write_prior(path: Path) -> Path:
    """A RAM prior for rule `work`: need ~ 0.5 MB per Mbp of chromosome, calibrated +10 %."""
    path.write_text(
        json.dumps(
            {
                "format": "chromosched-prior/1",
                "tool": "work",
                "target": {"name": "mem_mb", "unit": "MB"},
                "features": [{"name": "length_mb", "unit": "Mbp", "description": "chromosome length"}],
                "feature_ranges": {"length_mb": [40, 250]},
                "expression": "0.5 * length_mb",
                "level": 0.9,
                "calibration": {"0.9": {"level": 0.9, "n_calibration": 100, "knots": [[1, 1.1], [300, 330]]}},
            }
        )
    )
    return path


def test_no_overcommit_where_greedy_overcommits(tmp_path):
    cfg = config(outcome=True, length_mb={c: LENGTHS[c] / 1e6 for c in CHROMS})
    greedy = run(tmp_path / "greedy", cfg, scheduler="greedy")
    assert greedy.returncode == 0, greedy.stderr
    prior = write_prior(tmp_path / "work-prior.json")
    ours = run(
        tmp_path / "ours",
        cfg,
        "--scheduler-chromosched-prior",
        str(prior),
        "--scheduler-chromosched-prior-rule",
        "work",
    )
    assert ours.returncode == 0, ours.stderr
    assert peak_true_memory(ledger(tmp_path / "greedy")) > BUDGET  # declared 70 %: greedy packs too much
    assert peak_true_memory(ledger(tmp_path / "ours")) <= BUDGET
    # One source of truth: each job's mem_mb (what it was started with) is the store's entry.
    store = PredictionStore(tmp_path / "ours" / ".chromosched" / "predictions")
    for entry in ledger(tmp_path / "ours"):
        chrom = Path(entry["out"]).stem
        assert store.get("work", {"chrom": chrom}, 1).mem_mb == entry["limit"]
    assert "chromosched: start" in ours.stderr


def test_retry_escalates_after_an_oom_exit(tmp_path):
    chroms = ["chr1", "chr2"]
    cfg = config(chroms=chroms, declared={c: NEED[c] // 2 for c in chroms}, enforce=True, outcome=True, hold=1.0)
    # cold-start sequential: the declared (too low) mem_mb is taken as the prior, so the first
    # attempts run out of memory; the default (probe) would not trust it and not fail.
    result = run(tmp_path, cfg, "--retries", "3", "--scheduler-chromosched-cold-start", "sequential", budget=1000)
    assert result.returncode == 0, result.stderr
    store = PredictionStore(tmp_path / ".chromosched" / "predictions")
    for chrom in chroms:
        attempts = [e for e in ledger(tmp_path) if Path(e["out"]).stem == chrom]
        assert not attempts[0]["ok"] and attempts[-1]["ok"]
        for number, entry in enumerate(attempts, start=1):
            # the job ran with exactly this attempt's stored prediction (stale resources were reset)
            assert store.get("work", {"chrom": chrom}, number).mem_mb == entry["limit"]
        for before, after in zip(attempts, attempts[1:]):
            assert after["limit"] >= 1.3 * before["limit"] - 1
    assert "out of memory" in result.stderr


def test_regressor_learns_from_benchmark_files_and_starts_warm(tmp_path):
    first = run(tmp_path, config(chroms=CHROMS[:4]), budget=1000)
    assert first.returncode == 0, first.stderr
    learned = [line for line in first.stderr.splitlines() if "chromosched: learned work" in line]
    assert len(learned) == 4 and all("(max_rss)" in line for line in learned)
    for line in learned:  # "learned work chr3: 104 MB (max_rss) vs ..." - RSS includes Python itself
        chrom, measured = re.search(r"learned work (chr\d+): (\d+) MB", line).groups()
        measured = float(measured)
        assert NEED[chrom] <= measured <= NEED[chrom] + 80
    model = tmp_path / ".chromosched" / "model.json"
    assert model.is_file() and json.loads(model.read_text())
    for path in (tmp_path / "out").iterdir():
        path.unlink()
    second = run(tmp_path, config(chroms=CHROMS[:4]), budget=1000)
    assert second.returncode == 0, second.stderr
    assert "warm start" in second.stderr


def test_internal_error_falls_back_to_greedy(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    result = run(
        tmp_path, config(chroms=CHROMS[:2]), "--scheduler-chromosched-store", "not-a-folder/store", budget=1000
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("falling back to Snakemake's greedy scheduler") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["chr1.txt", "chr2.txt"]


def _started_order(stderr: str) -> list[str]:
    """Chromosomes in the order the plugin admitted them (its one log line per batch)."""
    order = []
    for line in stderr.splitlines():
        if "chromosched: start" in line:
            order += re.findall(r"work (chr\d+) ", line)
    return order


def test_static_mode_follows_the_ordering_table(tmp_path):
    from chromosched.static.ordering_table import load_builtin_table

    result = run(tmp_path, config(hold=1.0), "--scheduler-chromosched-mode", "static", budget=1000, cores=2)
    assert result.returncode == 0, result.stderr
    expected = load_builtin_table("GRCh37").order_for(2, CHROMS)
    assert _started_order(result.stderr) == expected
    entries = ledger(tmp_path)
    events = sorted([(e["start"], 1) for e in entries] + [(e["end"], -1) for e in entries])
    running = most = 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    assert most <= 2  # K = cores = 2 chromosome jobs at once
