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
MODEL_NAMES = [
    "threads",
    "effective_window_cm",
    "ref_markers_per_window",
    "target_markers_per_window",
    "target_samples",
    "ref_samples",
]


def synthetic_runs(path: Path, n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A runs table shaped like the profiler's: heap ~ markers per window x samples, noisy, with splits."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(
        {
            "design_id": [f"r{i}" for i in range(n)],
            "split": np.where(np.arange(n) % 4 == 3, "heldout", "fit"),
            "threads": rng.integers(1, 5, n),
            "burnin": rng.integers(1, 5, n),
            "iterations": rng.integers(2, 11, n),
            "window_cm": np.round(np.exp(rng.uniform(np.log(4.5), np.log(30), n)), 2),
            "target_samples": np.round(np.exp(rng.uniform(np.log(8), np.log(160), n))).astype(int),
            "ref_variants": np.round(np.exp(rng.uniform(np.log(1500), np.log(30000), n))).astype(int),
            "ref_samples": np.round(np.exp(rng.uniform(np.log(40), np.log(800), n))).astype(int),
        }
    )
    d["target_variants"] = (d.ref_variants * rng.uniform(0.03, 0.3, n)).astype(int)
    d["chrom_cm"] = np.where(np.arange(n) % 3 == 0, 40.0, 14.3)  # two chromosome lengths
    per_window = d.ref_variants * np.minimum(1, (d.window_cm + 2) / d.chrom_cm)
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
    rc = main(
        ["prior", "fit", "--runs", str(runs), "--level", "0.9", "--out", str(out), "--synthetic", "512", "--seed", "3"]
    )
    assert rc == 0
    return where, runs, out


def test_fit_writes_a_valid_prior_and_teacher(fitted):
    where, runs, out = fitted
    data = json.loads(out.read_text())
    assert data["format"] == "chromosched-prior/2"
    assert [f["name"] for f in data["derivation"]["inputs"]] == NAMES
    assert [f["name"] for f in data["features"]] == MODEL_NAMES
    assert data["derivation"]["name"] == "beagle-per-window/1"
    assert data["level"] == 0.9 and set(data["calibration"]) == {"0.8", "0.9", "0.95"}
    assert data["provenance"]["engine"] == "monotone"
    assert data["provenance"]["chromosome_lengths_cm"] == [14.3, 40.0]
    assert data["monotone"]["violations"] == 0 and data["monotone"]["grid_points"] > 1000
    assert data["floor_mb"]["mb"] == data["floor_mb"]["smallest_success_mb"] + 2
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
    raw_all = prior.raw_many(prior.model_matrix(table))
    assert np.corrcoef(raw_all, table.min_heap_mb)[0, 1] > 0.8
    calibrated = prior.calibrated_many(raw_all, 0.9)
    assert np.all(np.diff(calibrated[np.argsort(raw_all)]) >= -1e-9)


def test_cli_predict_text_and_json(fitted, capsys):
    _, _, out = fitted
    feats = [
        "threads=2",
        "burnin=3",
        "iterations=8",
        "window_cm=10",
        "target_variants=2000",
        "target_samples=100",
        "ref_variants=20000",
        "ref_samples=400",
    ]
    assert main(["prior", "predict", "--prior", str(out), "--features", *feats]) == 0
    text = capsys.readouterr().out
    assert "raw_mb" in text and "calibrated_mb" in text
    assert main(["prior", "predict", "--prior", str(out), "--json", "--features", *feats]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"raw_mb", "calibrated_mb", "level"}
    assert result["calibrated_mb"] == pytest.approx(
        load_prior(out).calibrated_mb({k: float(v) for k, v in (f.split("=") for f in feats)}), rel=1e-3
    )
    # a missing or unknown feature is a one-line error, exit 2
    assert main(["prior", "predict", "--prior", str(out), "--features", *feats[:-1]]) == 2
    assert "missing feature(s) ref_samples" in capsys.readouterr().err
    assert main(["prior", "predict", "--prior", str(out), "--features", *feats, "ram=5"]) == 2
    assert "unknown feature 'ram'" in capsys.readouterr().err


def test_cli_report_prints_exactly_the_contract(fitted, capsys):
    _, runs, out = fitted
    assert main(["prior", "report", "--prior", str(out), "--runs", str(runs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # the original five fields, in order, then the extensions
    assert list(result) == [
        "n_heldout",
        "pearson_teacher",
        "pearson_formula",
        "coverage",
        "oom_rate",
        "over_reservation",
    ]
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


def test_a_formula_that_decreases_where_memory_cannot_is_refused(tmp_path):
    """Operon's free-form formulas can dip between runs; fit checks the grid and refuses them."""
    runs = tmp_path / "runs.tsv"
    synthetic_runs(runs)
    try:
        fitted = fit_prior(runs, engine="operon", budget="tiny", n_synthetic=256, seed=3, progress=lambda m: None)
    except ChromoschedError as err:
        assert "decreases in" in str(err) and "--engine monotone" in str(err)
    else:  # a formula that happens to be monotone is accepted, and recorded as checked
        assert fitted.prior.monotone["violations"] == 0


def test_engine_selection_and_missing_engine_message(monkeypatch, tmp_path, capsys):
    assert get_engine("monotone").name == "monotone"
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
    assert prior.feature_names == NAMES and prior.model_feature_names == MODEL_NAMES
    features = {
        "threads": 2,
        "burnin": 3,
        "iterations": 10,
        "window_cm": 40,
        "target_variants": 3000,
        "target_samples": 100,
        "ref_variants": 17000,
        "ref_samples": 500,
        "chrom_cm": 60.0,
    }
    assert 0 < prior.raw_mb(features) < prior.calibrated_mb(features, 0.95) < 10000
    data = json.loads(shipped.read_text())
    assert data["provenance"]["runs_file"] == "config/priors/beagle_runs_multi.tsv"
    assert len(data["provenance"]["chromosome_lengths_cm"]) >= 3
    from chromosched.prior.runs import file_sha256

    assert data["provenance"]["runs_sha256"] == file_sha256(REPO / "config" / "priors" / "beagle_runs_multi.tsv")
    assert data["teacher"]["sha256"]
    assert (REPO / "config" / "priors" / data["teacher"]["file"]).is_file()


def test_beagle_features_checks_inputs_and_fills_beagle_defaults(fitted):
    from chromosched.prior import beagle_features

    _, _, out = fitted
    prior = load_prior(out)
    job = dict(threads=2, target_variants=3000, target_samples=100, ref_variants=17000, ref_samples=500)
    inputs = beagle_features(prior, **job, chrom_cm=3.0)
    assert (
        inputs["burnin"] == 3 and inputs["iterations"] == 12 and inputs["window_cm"] == 40 and inputs["overlap_cm"] == 2
    )
    # a 40 cM window on a 3 cM chromosome takes it whole: every marker in one window of 3 cM
    whole = prior.model_features(inputs)
    assert whole["effective_window_cm"] == 3.0 and whole["ref_markers_per_window"] == 17000
    # half of a 20 cM chromosome per window
    half = prior.model_features(beagle_features(prior, **job, window_cm=8.0, overlap_cm=2.0, chrom_cm=20.0))
    assert half["effective_window_cm"] == 10.0 and half["ref_markers_per_window"] == 8500
    assert half["target_markers_per_window"] == 1500
    with pytest.raises(ChromoschedError, match=r"threads=2.5 is not a whole number"):
        beagle_features(prior, **{**job, "threads": 2.5})
