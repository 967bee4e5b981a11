"""Demo-cohort simulator: determinism, file formats, realism checks."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from cyvcf2 import VCF

from chromosched.errors import ChromoschedError
from chromosched_pipeline.demo_data import simulate
from chromosched_pipeline.prs.scores import read_scoring_file
from chromosched_pipeline.vcfio import header_contig_lengths, read_header_lines


def _records(path):
    with gzip.open(path, "rt") as fh:
        return [line.rstrip("\n").split("\t") for line in fh if not line.startswith("#")]


def test_cohort_files_and_manifest(tiny_cohort):
    out = tiny_cohort.out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["chrom"] for c in manifest["chromosomes"]] == ["chr21", "chr22"] and manifest["seed"] == 7
    for files in tiny_cohort.chromosomes:
        for path in (files.panel, files.target, files.truth):
            assert path.with_name(path.name + ".tbi").is_file()
        # GRCh37 length / 200, in the panel's ##contig line
        expected = int({"chr21": 48129895, "chr22": 51304566}[files.chrom] / 200)
        assert header_contig_lengths(read_header_lines(files.panel)) == {files.chrom: expected}
    # the cohort target has plain contig names here (target_contig_style="plain") and both chromosomes
    assert header_contig_lengths(read_header_lines(tiny_cohort.target)) == {"21": 240649, "22": 256522}
    samples = (out / "samples.tsv").read_text().splitlines()
    assert samples[0] == "sample\tpopulation\trole" and len(samples) == 351
    assert {line.split("\t")[1] for line in samples[1:]} == set(simulate.POPULATIONS)


def test_panel_is_phased_target_unphased_sparse_with_missing(tiny_cohort):
    files = tiny_cohort.chromosomes[0]
    panel = _records(files.panel)
    target = _records(files.target)
    assert len(VCF(str(files.panel)).samples) == 300 and len(VCF(str(files.target)).samples) == 50
    assert all("|" in g for g in panel[0][9:]) and all("/" in g for g in target[0][9:])
    assert len(target) < 0.2 * len(panel)  # array-like: a sparse subset
    panel_keys = {(r[1], r[3], r[4]) for r in panel}
    assert all((r[1], r[3], r[4]) in panel_keys for r in target)
    calls = [g for r in target for g in r[9:]]
    missing = calls.count("./.") / len(calls)
    assert 0.002 < missing < 0.03
    positions = [int(r[1]) for r in panel]
    assert positions == sorted(positions) and positions[-1] <= files.length_bp


def test_hky_keeps_strand_ambiguous_snps_a_minority(tiny_cohort):
    panel = _records(tiny_cohort.chromosomes[1].panel)
    pairs = [(r[3], r[4]) for r in panel if len(r[3]) == len(r[4]) == 1]
    ambiguous = sum(simulate.COMPLEMENT[a] == b for a, b in pairs) / len(pairs)
    transitions = sum({a, b} in ({"A", "G"}, {"C", "T"}) for a, b in pairs) / len(pairs)
    assert ambiguous < 0.25 and transitions > 0.5  # kappa=4 favours transitions


def test_map_is_plink_format_with_hotspots(tiny_cohort):
    rows = [line.split("\t") for line in tiny_cohort.chromosomes[0].map.read_text().splitlines()]
    assert all(len(r) == 4 and r[0] == "chr21" and r[1] == "." for r in rows)
    cm = np.array([float(r[2]) for r in rows])
    bp = np.array([int(r[3]) for r in rows])
    assert np.all(np.diff(bp) > 0) and np.all(np.diff(cm) >= 0)
    rates = np.diff(cm) / np.diff(bp) * 1e6  # cM/Mb per interval
    assert rates.max() > 20 * np.median(rates)  # hotspots stand out from the background
    mean_rate = (cm[-1] - cm[0]) / (bp[-1] - bp[0]) * 1e6
    assert 0.8 < mean_rate < 1.5


def test_scoring_file_is_pgs_catalog_format(tiny_cohort):
    text = tiny_cohort.scores.read_text()
    assert text.startswith("###PGS CATALOG SCORING FILE") and "#genome_build=GRCh37" in text
    rows = read_scoring_file(tiny_cohort.scores)
    assert {r.chr_name for r in rows} == {"21", "22"}
    assert len(rows) == sum(f.n_score_variants for f in tiny_cohort.chromosomes)


def test_deterministic_per_seed_and_per_chromosome(tmp_path, tiny_cohort):
    kw = dict(n_ref=20, n_target=8, seed=3)
    a = simulate.simulate_chromosome("chr22", 60_000, tmp_path / "a", **kw)
    b = simulate.simulate_chromosome("22", 60_000, tmp_path / "b", **kw)
    c = simulate.simulate_chromosome("chr22", 60_000, tmp_path / "c", **{**kw, "seed": 4})
    assert a.panel.read_bytes() == b.panel.read_bytes() and a.map.read_text() == b.map.read_text()
    assert a.panel.read_bytes() != c.panel.read_bytes()
    # the same chromosome in a cohort with other chromosomes is identical to simulating it alone
    cohort = simulate.simulate_cohort(tmp_path / "d", scale=800, chromosomes=["chr22", "chr21"], **kw)
    alone = simulate.simulate_chromosome("chr22", int(51304566 / 800), tmp_path / "e", **kw)
    assert cohort.chromosomes[1].chrom == "chr22"
    assert cohort.chromosomes[1].panel.read_bytes() == alone.panel.read_bytes()


def test_bad_parameters_are_one_line_errors(tmp_path):
    with pytest.raises(ChromoschedError, match="too short"):
        simulate.simulate_chromosome("chr1", 500, tmp_path)
    with pytest.raises(ChromoschedError, match="array_density"):
        simulate.simulate_chromosome("chr1", 50_000, tmp_path, array_density=0)
    with pytest.raises(ChromoschedError, match="not an autosome"):
        simulate.simulate_cohort(tmp_path, chromosomes=["chrX"])


def test_cli_if_missing_skips_existing(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--scale", "1000", "--chromosomes", "22", "--n-ref", "10", "--n-target", "4"]
    assert simulate.main(args) == 0
    first = (tmp_path / "panel" / "chr22.vcf.gz").stat().st_mtime_ns
    assert simulate.main(args + ["--if-missing"]) == 0
    assert (tmp_path / "panel" / "chr22.vcf.gz").stat().st_mtime_ns == first
    assert "up to date" in capsys.readouterr().err
