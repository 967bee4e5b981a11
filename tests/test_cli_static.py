"""`chromosched order`, `simulate static` and `tables`: the command-line contract and its errors."""

import json
import subprocess
import sys

import pytest

from chromosched.cli import main
from chromosched.static.ordering_table import OrderingTable

ORDER_KEYS = ["workers", "order", "peak", "sequential_peak", "lower_bound"]
SIMULATE_KEYS = ["workers", "sequential_peak", "optimised_peak", "hill_climb_peak", "lower_bound", "order"]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_order_json(capsys):
    code, out, _ = run(capsys, "order", "--genome", "GRCh37", "--workers", "5", "--json", "--budget", "3000")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ORDER_KEYS
    assert data["workers"] == 5 and sorted(data["order"], key=lambda c: int(c[3:])) == [f"chr{i}" for i in range(1, 23)]
    assert round(data["sequential_peak"], 2) == 1062.54
    assert data["lower_bound"] <= data["peak"] < data["sequential_peak"]


def test_order_readable_and_from_table(capsys, tmp_path):
    code, out, _ = run(capsys, "order", "--genome", "GRCh38", "--workers", "3", "--budget", "2000")
    assert code == 0 and out.startswith("K = 3: peak ") and "order: chr" in out
    table = tmp_path / "t.tsv"
    assert (
        run(capsys, "tables", "--genome", "GRCh38", "--workers", "1-4", "--budget", "1000", "--out", str(table))[0] == 0
    )
    code, out, _ = run(capsys, "order", "--table", str(table), "--workers", "4", "--json")
    data = json.loads(out)
    assert code == 0 and list(data) == ORDER_KEYS and data["peak"] == OrderingTable.load(table).peak_for(4)


def test_simulate_static_json_both_models(capsys):
    for model in ("list", "waves"):
        code, out, err = run(
            capsys,
            "simulate",
            "static",
            "--genome",
            "GRCh37",
            "--workers",
            "2-4",
            "--model",
            model,
            "--json",
            "--budget",
            "2000",
        )
        assert code == 0
        rows = json.loads(out)
        assert [r["workers"] for r in rows] == [2, 3, 4]
        for r in rows:
            assert list(r) == SIMULATE_KEYS
            assert r["lower_bound"] <= r["optimised_peak"] <= r["sequential_peak"]
            assert r["lower_bound"] <= r["hill_climb_peak"]
        assert "K=4" in err  # progress on stderr
    # waves at K=2 reaches the paper's 297.38 (chr1 + chr21)
    assert round(rows[0]["optimised_peak"], 2) == 297.38


def test_simulate_static_table_output(capsys):
    code, out, _ = run(capsys, "simulate", "static", "--genome", "GRCh37", "--workers", "2,3", "--budget", "1000")
    lines = out.splitlines()
    assert code == 0 and "hill_climb" in lines[1] and lines[2].split()[:2] == ["2", "492.45"]


def test_tables_writes_valid_table(capsys, tmp_path):
    out_file = tmp_path / "orderings" / "GRCh38.tsv"
    code, _, err = run(
        capsys, "tables", "--genome", "GRCh38", "--workers", "1-3", "--budget", "1000", "--out", str(out_file)
    )
    assert code == 0 and "wrote" in err
    table = OrderingTable.load(out_file)
    assert table.workers() == [1, 2, 3] and table.metadata["source"] == "GRCh38"
    assert table.metadata["command"].startswith("chromosched tables --genome GRCh38 --workers 1-3")
    assert table.metadata["model"] == "list" and table.metadata["memory_unit"] == "Mbp"


def test_tables_from_fai(capsys, tmp_path):
    fai = tmp_path / "ref.fa.fai"
    fai.write_text("".join(f"chr{i}\t{(30 - i) * 1000}\t0\t60\t61\n" for i in range(1, 7)))
    code, out, _ = run(capsys, "tables", "--lengths", str(fai), "--workers", "2-3", "--budget", "500")
    assert code == 0
    table = OrderingTable.parse(out)
    assert table.workers() == [2, 3] and len(table.chromosomes) == 6


def test_tables_reprove_keeps_orders_and_proves_again(capsys, tmp_path):
    fai = tmp_path / "ref.fa.fai"
    lengths = [249, 243, 198, 191, 181, 171, 159, 146, 141, 135, 90, 81]  # Mbp, chromosome-like
    fai.write_text("".join(f"chr{i + 1}\t{v * 1_000_000 + 7 * i}\t0\t60\t61\n" for i, v in enumerate(lengths)))
    first = tmp_path / "t.tsv"
    argv = ["tables", "--lengths", str(fai), "--workers", "2-5", "--budget", "20", "--out"]
    assert run(capsys, *argv, str(first))[0] == 0  # 160 nodes of proof: next to nothing
    again = tmp_path / "again.tsv"
    code, _, _ = run(
        capsys, "tables", "--lengths", str(fai), "--reprove", str(first), "--budget", "50000", "--out", str(again)
    )
    assert code == 0
    old, new = OrderingTable.load(first), OrderingTable.load(again)
    assert [r.workers for r in new.rows] == [2, 3, 4, 5]
    assert new.metadata["command"] == old.metadata["command"]  # the orders' own command
    assert "--reprove" in new.metadata["bounds_reproven"]
    for a, b in zip(old.rows, new.rows):
        assert b.peak <= a.peak and b.lower_bound >= a.lower_bound and b.lower_bound <= b.peak
        if b.peak == a.peak:
            assert b.order == a.order
    assert sum(b.lower_bound > a.lower_bound for a, b in zip(old.rows, new.rows)) >= 2
    wrong = tmp_path / "other.fa.fai"
    wrong.write_text("chrA\t1000\t0\t60\t61\nchrB\t900\t0\t60\t61\n")
    code = main(["tables", "--lengths", str(wrong), "--reprove", str(first)])
    assert code == 2 and "are not those of the task input" in capsys.readouterr().err


def test_tables_start_from_a_table_is_never_worse_than_it(capsys, tmp_path):
    fai = tmp_path / "ref.fa.fai"
    lengths = [249, 243, 198, 191, 181, 171, 159, 146, 141, 135, 90, 81]
    fai.write_text("".join(f"chr{i + 1}\t{v * 1_000_000 + 7 * i}\t0\t60\t61\n" for i, v in enumerate(lengths)))
    good, poor, started = tmp_path / "good.tsv", tmp_path / "poor.tsv", tmp_path / "started.tsv"
    base = ["tables", "--lengths", str(fai), "--workers", "2-6"]
    assert run(capsys, *base, "--budget", "200000", "--out", str(good))[0] == 0
    assert run(capsys, *base, "--budget", "3", "--seed", "1", "--out", str(poor))[0] == 0
    code, _, _ = run(capsys, *base, "--budget", "3", "--seed", "1", "--start-from", str(good), "--out", str(started))
    assert code == 0
    g, p, s = (OrderingTable.load(x) for x in (good, poor, started))
    assert all(b.peak <= a.peak for a, b in zip(g.rows, s.rows))  # the good table's orders are the starts
    assert any(b.peak < c.peak for b, c in zip(s.rows, p.rows))  # ...which 3 evaluations alone do not reach
    assert f"--start-from {started.parent / 'good.tsv'}" in s.metadata["command"]
    assert "starts from" in s.metadata["search"]
    other = tmp_path / "other.fa.fai"
    other.write_text("chrA\t1000\t0\t60\t61\nchrB\t900\t0\t60\t61\nchrC\t800\t0\t60\t61\n")
    assert main(["tables", "--lengths", str(other), "--workers", "2", "--start-from", str(good)]) == 2
    assert "are not those of" in capsys.readouterr().err
    assert main([*base, "--reprove", str(good), "--start-from", str(good)]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["order", "--genome", "GRCh99", "--workers", "5"], "unknown genome 'GRCh99'"),
        (["order", "--genome", "GRCh37", "--workers", "2-10"], "expected one number of workers"),
        (["order", "--workers", "3"], "no task input"),
        (["simulate", "static", "--genome", "GRCh37", "--workers", "x"], "expected a number or a range"),
        (["simulate", "static", "--genome", "GRCh37", "--workers", "0-3"], "at least 1"),
        (["simulate", "static", "--genome", "GRCh37", "--workers", "2", "--model", "wave"], "invalid choice"),
        (["simulate", "static", "--genome", "GRCh37", "--workers", "2", "--budget", "0"], "positive integer"),
        (["tables", "--genome", "GRCh37", "--workers", "20-23"], "K=23 exceeds the 22 chromosomes"),
        (["order", "--lengths", "/nonexistent/ref.fai", "--workers", "2"], "no such file"),
    ],
)
def test_bad_arguments_one_line_exit_2(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and "error:" in err


def test_corrupt_table_from_console(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text(
        "K\torder\tpeak\tsequential_peak\tlower_bound\tmethod\tseed\n"
        "1\tchr1,chr2\t2.0\t2.0\t2.0\ttrivial\t0\n"
        "2\tchr1,chr1\t3.0\t3.0\t3.0\ttrivial\t0\n"
    )
    run_ = subprocess.run(
        [sys.executable, "-m", "chromosched", "order", "--table", str(bad), "--workers", "2"],
        capture_output=True,
        text=True,
    )
    assert run_.returncode == 2 and run_.stdout == ""
    assert run_.stderr.strip() == f"chromosched: error: {bad} line 3: chromosome chr1 appears 2 times"


def test_order_from_benchmark_tsvs(capsys, tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for i, (mb, sec) in enumerate(((900.0, 50.0), (300.0, 20.0), (700.0, 40.0), (200.0, 10.0)), 1):
        (tmp_path / f"impute_chr{i}.tsv").write_text(header + f"{sec}\t0:00:{int(sec)}\t{mb}\t1\t1\t1\t0\t0\t1\t1\n")
    code, out, _ = run(capsys, "order", "--benchmarks", str(tmp_path), "--workers", "2", "--json", "--budget", "500")
    data = json.loads(out)
    assert code == 0 and sorted(data["order"]) == ["chr1", "chr2", "chr3", "chr4"]
    # chr1 (900 MB, 50 s) and chr2 start together; chr3 (700 MB) starts at 20 s beside chr1 (MB units)
    assert data["sequential_peak"] == 1600.0
    assert data["lower_bound"] <= data["peak"] <= 1600.0
