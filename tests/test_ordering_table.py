"""Ordering tables: round trip, validation of corrupt files, the shipped tables and their package copies."""

from pathlib import Path

import pytest

from chromosched.errors import ChromoschedError
from chromosched.genomes import AUTOSOMES
from chromosched.static.ordering_table import OrderingRow, OrderingTable, load_builtin_table
from chromosched.static.peak_lower_bound import list_lower_bound
from chromosched.static.peak_memory import PeakEvaluator
from chromosched.static.task_model import genome_taskset

REPO = Path(__file__).resolve().parents[1]
NAMES = ("chrA", "chrB", "chrC")


def _table():
    rows = [
        OrderingRow(1, NAMES, 5.0, 5.0, 5.0, "trivial", 0),
        OrderingRow(2, ("chrC", "chrA", "chrB"), 7.25, 9.5, 7.0, "anneal", 3),
        OrderingRow(3, NAMES, 12.0, 12.0, 12.0, "trivial", 0),
    ]
    return OrderingTable(rows, {"source": "test", "model": "list", "memory_unit": "MB"})


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "t.tsv"
    _table().write(path)
    loaded = OrderingTable.load(path)
    assert loaded.rows == _table().rows
    assert loaded.metadata == {"source": "test", "model": "list", "memory_unit": "MB"}
    assert loaded.order_for(2) == ["chrC", "chrA", "chrB"] and loaded.peak_for(2) == 7.25
    assert loaded.order_for(7) == list(NAMES)  # more workers than chromosomes: all at once
    assert loaded.order_for(2, ["chrB", "chrC", "chrZ"]) == ["chrC", "chrB", "chrZ"]
    assert not list(tmp_path.glob("sub/.*tmp"))  # atomic write leaves no temporary file


def _corrupt(tmp_path, old, new):
    text = _table().to_text()
    assert old in text
    path = tmp_path / "bad.tsv"
    path.write_text(text.replace(old, new))
    with pytest.raises(ChromoschedError) as err:
        OrderingTable.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_corrupt_tables_name_file_and_line(tmp_path):
    # lines: 1-4 comments, 5 header, 6 K=1, 7 K=2, 8 K=3
    assert "line 7: chromosome chrA appears 2 times" in _corrupt(tmp_path, "chrC,chrA,chrB", "chrA,chrA,chrB")
    assert "line 7: chromosome chrB missing" in _corrupt(tmp_path, "chrC,chrA,chrB", "chrC,chrA")
    assert "line 7: K is not an integer: 'two'" in _corrupt(tmp_path, "2\tchrC", "two\tchrC")
    assert "line 8: K=3 appears twice (first on line 7)" in _corrupt(tmp_path, "2\tchrC", "3\tchrC")
    assert "line 7: K=4 exceeds the 3 chromosomes" in _corrupt(tmp_path, "2\tchrC", "4\tchrC")
    assert "line 7: peak is not a number: 'abc'" in _corrupt(tmp_path, "7.250000", "abc")
    assert "line 7: expected 7 tab-separated fields, got 3" in _corrupt(tmp_path, "\t9.500000\t7.000000\tanneal\t3", "")
    assert "line 7: lower_bound 8.0 exceeds peak 7.25" in _corrupt(tmp_path, "\t7.000000\t", "\t8.000000\t")
    assert "line 5: expected the header" in _corrupt(tmp_path, "K\torder", "workers\torder")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ChromoschedError, match="cannot read ordering table"):
        OrderingTable.load(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("# nothing\n")
    with pytest.raises(ChromoschedError, match="not an ordering table"):
        OrderingTable.load(tmp_path / "empty.tsv")
    with pytest.raises(ChromoschedError, match="no row for K=2"):
        OrderingTable([OrderingRow(1, NAMES, 5, 5, 5, "trivial", 0)]).row(2)


@pytest.mark.parametrize("genome", ["GRCh37", "GRCh38"])
def test_shipped_tables(genome):
    shipped = REPO / "config" / "orderings" / f"{genome}.tsv"
    packaged = REPO / "scheduler" / "src" / "chromosched" / "data" / "orderings" / f"{genome}.tsv"
    assert shipped.read_bytes() == packaged.read_bytes(), "package copy differs from config/orderings"
    table = load_builtin_table(genome)
    assert table.workers() == list(range(1, 23)) and set(table.chromosomes) == set(AUTOSOMES)
    assert table.model == "list"
    ts = genome_taskset(genome)
    for row in table.rows:
        ev = PeakEvaluator(ts, row.workers)
        # Every stored peak is the real peak of the stored order, never above sequential.
        assert ev.peak(ts.order_indices(row.order)) == pytest.approx(row.peak, abs=1e-6)
        assert ev.peak(ts.sequential_order()) == pytest.approx(row.sequential_peak, abs=1e-6)
        assert row.lower_bound <= row.peak <= row.sequential_peak
        _check_bound(row, ts)


def _check_bound(row, ts):
    """The stored bound is at least the analytic one (the exact branch and bound and the configuration
    MILP only raise it) and at most the peak; tests/test_exact_list_search.py checks the proofs."""
    analytic = min(row.peak, list_lower_bound(ts.memory, ts.duration, row.workers))
    assert analytic - 1e-6 <= row.lower_bound <= row.peak


def test_builtin_alias_and_unknown():
    assert load_builtin_table("hg38").rows == load_builtin_table("GRCh38").rows
    with pytest.raises(ChromoschedError, match="no built-in ordering table for genome 'T2T'"):
        load_builtin_table("T2T")


MM10_FAI = REPO / "tests" / "data" / "mm10_autosomes.fa.fai"


def _fai_tasks():
    from chromosched.static.task_inputs import load_tasks

    return load_tasks(None, str(MM10_FAI), None, None)


@pytest.mark.parametrize("name", ["GRCh37", "GRCh38", "mm10"])
def test_shipped_table_headers_name_method_budget_and_bound(name):
    table = OrderingTable.load(REPO / "config" / "orderings" / f"{name}.tsv")
    meta = table.metadata
    assert "peak evaluations per K" in meta["search"] and "--budget" in meta["command"]
    assert "lower bound" in meta["bound"] or "relaxation" in meta["bound"]
    proven = [r.workers for r in table.rows if r.peak <= r.lower_bound]
    assert meta["proven_optimal_K"].split(",")[0].startswith(str(proven[0]))


def test_custom_genome_table_from_fai():
    shipped = REPO / "config" / "orderings" / "mm10.tsv"
    packaged = REPO / "scheduler" / "src" / "chromosched" / "data" / "orderings" / "mm10.tsv"
    assert shipped.read_bytes() == packaged.read_bytes(), "package copy differs from config/orderings"
    table = load_builtin_table("mm10")
    ts = _fai_tasks()
    assert len(ts) == 19 and table.workers() == list(range(1, 20))
    for row in table.rows:
        ev = PeakEvaluator(ts, row.workers)
        assert ev.peak(ts.order_indices(row.order)) == pytest.approx(row.peak, abs=1e-6)
        _check_bound(row, ts)


def test_built_table_round_trips(tmp_path):
    from chromosched.static.optimiser import build_table

    table = build_table(_fai_tasks(), [1, 2, 3, 19], budget=2_000, seed=1, command="test", progress=False)
    path = tmp_path / "mm10.tsv"
    table.write(path)
    loaded = OrderingTable.load(path)
    assert loaded.rows == table.rows and loaded.metadata == table.metadata
    assert loaded.to_text() == table.to_text()
    assert "2000 peak evaluations per K, seed 1" in loaded.metadata["search"]
