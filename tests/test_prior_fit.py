"""Fitting a prior end to end (teacher -> formula -> calibration), its file, the CLI contract, engines."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chromosched.cli import main
from chromosched.errors import ChromoschedError
from chromosched.prior import BEAGLE_FEATURES, get_engine, load_builtin_prior, load_prior
from chromosched.prior.engines import GplearnEngine, SearchBudget
from chromosched.prior.fitting import fit_prior

REPO = Path(__file__).resolve().parents[1]
NAMES = [f.name for f in BEAGLE_FEATURES]


def synthetic_runs(path: Path, n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A runs table shaped like the profiler's: heap ~ markers per window x samples, noisy, with splits."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({
        "design_id": [f"r{i}" for i in range(n)],
        "split": np.where(np.arange(n) % 4 == 3, "heldout", "fit"),
        "threads": rng.integers(1, 5, n), "burnin": rng.integers(1, 5, n), "iterations": rng.integers(2, 11, n),
        "window_cm": np.round(np.exp(rng.uniform(np.log(4.5), np.log(30), n)), 2),
        "target_samples": np.round(np.exp(rng.uniform(np.log(8), np.log(160), n))).astype(int),
        "ref_variants": np.round(np.exp(rng.uniform(np.log(1500), np.log(30000), n))).astype(int),
        "ref_samples": np.round(np.exp(rng.uniform(np.log(40), np.log(800), n))).astype(int),
    })
    d["target_variants"] = (d.ref_variants * rng.uniform(0.03, 0.3, n)).astype(int)
    per_window = d.ref_variants * np.minimum(1, (d.window_cm + 2) / 14.3)
    heap = 10 + 8e-6 * per_window * d.target_samples * (1 + 0.2 * d.threads)
    d["min_heap_mb"] = np.round(heap * np.exp(rng.normal(0, 0.04, n)), 1)
    d["peak_rss_mb"] = d.min_heap_mb + 60
    d["status"] = "ok"
    d.loc[5, "status"] = "error"
    d.to_csv(path, sep="\t", index=False)
    return d


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Fit once through the CLI (tiny symbolic-regression budget) and share the files."""
    where = tmp_path_factory.mktemp("prior")
    runs = where / "runs.tsv"
    synthetic_runs(runs)
    out = where / "p.json"
    rc = main(["prior", "fit", "--runs", str(runs), "--engine", "operon", "--level", "0.9", "--out", str(out),
               "--budget", "tiny", "--synthetic", "512", "--seed", "3"])
    assert rc == 0
    return where, runs, out


def test_fit_writes_a_valid_prior_and_teacher(fitted):
    where, runs, out = fitted
    data = json.loads(out.read_text())
    assert data["format"] == "chromosched-prior/1"
    assert [f["name"] for f in data["features"]] == NAMES
    assert data["level"] == 0.9 and set(data["calibration"]) == {"0.8", "0.9", "0.95"}
    assert data["provenance"]["engine"] == "operon"
    assert data["provenance"]["n_fit_runs"] == 67  # 68 fit rows, one with status error
    assert len(data["provenance"]["runs_sha256"]) == 64
    assert (where / data["teacher"]["file"]).is_file()
    assert 0 < data["teacher"]["cv_pearson"] <= 1
    prior = load_prior(out)
    # round trip: saving the loaded prior gives the same document
    assert json.loads(prior.dumps()) == data


def test_prior_predicts_and_calibration_is_conservative(fitted):
    _, runs, out = fitted
    prior = load_prior(out)
    row = dict(zip(NAMES, [2, 3, 8, 10.0, 2000, 100, 20000, 400]))
    raw = prior.raw_mb(row)
    assert raw > 0
    assert prior.calibrated_mb(row, 0.8) <= prior.calibrated_mb(row, 0.9) <= prior.calibrated_mb(row, 0.95)
    table = pd.read_csv(runs, sep="\t")
    table = table[table.status == "ok"]
    X = table[NAMES].to_numpy(float)
    raw_all = prior.raw_many(X)
    assert np.corrcoef(raw_all, table.min_heap_mb)[0, 1] > 0.5  # tiny budget, but it learnt something
    calibrated = prior.calibrator(0.9).apply(raw_all)
    assert np.all(np.diff(calibrated[np.argsort(raw_all)]) >= -1e-9)


def test_cli_predict_text_and_json(fitted, capsys):
    _, _, out = fitted
    feats = ["threads=2", "burnin=3", "iterations=8", "window_cm=10", "target_variants=2000",
             "target_samples=100", "ref_variants=20000", "ref_samples=400"]
    assert main(["prior", "predict", "--prior", str(out), "--features", *feats]) == 0
    text = capsys.readouterr().out
    assert "raw_mb" in text and "calibrated_mb" in text
    assert main(["prior", "predict", "--prior", str(out), "--json", "--features", *feats]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"raw_mb", "calibrated_mb", "level"}
    assert result["calibrated_mb"] == pytest.approx(load_prior(out).calibrated_mb(
        {k: float(v) for k, v in (f.split("=") for f in feats)}), rel=1e-3)
    # a missing or unknown feature is a one-line error, exit 2
    assert main(["prior", "predict", "--prior", str(out), "--features", *feats[:-1]]) == 2
    assert "missing feature(s) ref_samples" in capsys.readouterr().err
    assert main(["prior", "predict", "--prior", str(out), "--features", *feats, "ram=5"]) == 2
    assert "unknown feature 'ram'" in capsys.readouterr().err


def test_cli_report_prints_exactly_the_contract(fitted, capsys):
    _, runs, out = fitted
    assert main(["prior", "report", "--prior", str(out), "--runs", str(runs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["n_heldout", "pearson_teacher", "pearson_formula", "coverage", "oom_rate"]
    assert result["n_heldout"] == 22
    assert result["coverage"] + result["oom_rate"] == pytest.approx(1.0)
    assert -1 <= result["pearson_formula"] <= 1 and -1 <= result["pearson_teacher"] <= 1


def test_report_refuses_a_teacher_whose_hash_differs(fitted, tmp_path, capsys):
    where, runs, out = fitted
    copy = tmp_path / "p.json"
    shutil.copy(out, copy)
    teacher = json.loads(out.read_text())["teacher"]["file"]
    (tmp_path / teacher).write_bytes((where / teacher).read_bytes() + b"tampered")
    assert main(["prior", "report", "--prior", str(copy), "--runs", str(runs), "--json"]) == 2
    assert "does not match" in capsys.readouterr().err


def test_malicious_prior_file_is_rejected(fitted, tmp_path, capsys):
    _, _, out = fitted
    data = json.loads(out.read_text())
    data["expression"] = "__import__('os').system('touch pwned')"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ChromoschedError, match="rejected"):
        load_prior(bad)
    assert main(["prior", "predict", "--prior", str(bad), "--features", "threads=1"]) == 2
    assert "rejected" in capsys.readouterr().err
    assert not Path("pwned").exists()
    data["expression"] = "threads"
    data["features"][0]["name"] = "log"
    bad.write_text(json.dumps(data))
    with pytest.raises(ChromoschedError, match="not allowed"):
        load_prior(bad)


def test_bad_runs_table_names_file_and_line(tmp_path, capsys):
    runs = tmp_path / "runs.tsv"
    d = synthetic_runs(runs, n=30)
    d["min_heap_mb"] = d["min_heap_mb"].astype(object)
    d.loc[3, "min_heap_mb"] = "lots"
    d.to_csv(runs, sep="\t", index=False)
    assert main(["prior", "fit", "--runs", str(runs), "--out", str(tmp_path / "p.json"), "--budget", "tiny"]) == 2
    err = capsys.readouterr().err
    assert f"{runs} line 5: column min_heap_mb has non-numeric value 'lots'" in err
    assert not (tmp_path / "p.json").exists()


def test_engine_selection_and_missing_engine_message(monkeypatch, tmp_path, capsys):
    assert get_engine("operon").name == "operon"
    assert get_engine("gplearn").name == "gplearn"
    with pytest.raises(ChromoschedError, match="unknown symbolic-regression engine 'eureqa'"):
        get_engine("eureqa")
    monkeypatch.setenv("PATH", str(tmp_path))  # no julia anywhere
    with pytest.raises(ChromoschedError, match=r"engine pysr needs a Julia installation, but `julia` is not on PATH"):
        get_engine("pysr")
    assert main(["prior", "fit", "--runs", "x.tsv", "--engine", "pysr", "--out", str(tmp_path / "p.json")]) == 2
    assert "julia" in capsys.readouterr().err


def test_gplearn_engine_returns_a_parsable_formula():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 100, size=(300, 2))
    y = 5 + 0.5 * X[:, 0] * X[:, 1]
    text = GplearnEngine().fit(X, y, ["a", "b"], SearchBudget(generations=10, population=200), seed=1)
    from chromosched.prior.expression import SafeExpression

    pred = SafeExpression(text, ["a", "b"]).evaluate_matrix(X)
    assert np.corrcoef(pred, y)[0, 1] > 0.8


def test_fit_needs_enough_runs(tmp_path):
    runs = tmp_path / "runs.tsv"
    synthetic_runs(runs, n=20)
    with pytest.raises(ChromoschedError, match="too few fit runs"):
        fit_prior(runs, budget="tiny")


def test_shipped_beagle_prior_is_packaged_identically_and_loads():
    shipped = REPO / "config" / "priors" / "beagle.json"
    packaged = REPO / "scheduler" / "src" / "chromosched" / "data" / "priors" / "beagle.json"
    assert shipped.read_bytes() == packaged.read_bytes()
    prior = load_builtin_prior("beagle")
    assert prior.feature_names == NAMES
    features = {"threads": 2, "burnin": 3, "iterations": 10, "window_cm": 40, "target_variants": 3000,
                "target_samples": 100, "ref_variants": 17000, "ref_samples": 500}
    assert 0 < prior.raw_mb(features) < prior.calibrated_mb(features, 0.95) < 10000
    data = json.loads(shipped.read_text())
    assert data["provenance"]["runs_file"] == "config/priors/beagle_runs.tsv"
    from chromosched.prior.runs import file_sha256

    assert data["provenance"]["runs_sha256"] == file_sha256(REPO / "config" / "priors" / "beagle_runs.tsv")
    assert data["teacher"]["sha256"]
    assert (REPO / "config" / "priors" / data["teacher"]["file"]).is_file()


def test_beagle_features_maps_a_job_onto_the_profiled_chromosome(fitted):
    from chromosched.prior import beagle_features

    _, _, out = fitted
    prior = load_prior(out)
    prior.provenance["profile_genetic_length_cm"] = 14.0
    lo, hi = prior.feature_ranges["window_cm"]
    job = dict(threads=2, target_variants=3000, target_samples=100, ref_variants=17000, ref_samples=500)
    # Beagle's defaults fill unset parameters; a 40 cM window on a 3 cM chromosome = the whole chromosome
    whole = beagle_features(prior, **job, chrom_cm=3.0)
    assert whole["burnin"] == 3 and whole["iterations"] == 12
    assert whole["window_cm"] == pytest.approx(min(hi, 12.0))
    # half of a 20 cM chromosome per window -> half of the profiled one
    half = beagle_features(prior, **job, window_cm=8.0, overlap_cm=2.0, chrom_cm=20.0)
    assert half["window_cm"] == pytest.approx(max(lo, 0.5 * 14.0 - 2.0))
    assert set(whole) == set(NAMES)
