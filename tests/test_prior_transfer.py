"""A RAM prior that transfers across chromosome lengths: per-window features, monotone estimates over
the whole stated range, a floor, input checks, and real Beagle at the estimate of a corner point."""

import json
import shutil
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from chromosched.cli import main
from chromosched.errors import ChromoschedError
from chromosched.prior import load_builtin_prior, load_prior
from chromosched.prior.derivation import beagle_derivation, genetic_length_cm
from chromosched.prior.monotone import check_monotone

REPO = Path(__file__).resolve().parents[1]
PRIOR = REPO / "config" / "priors" / "beagle.json"
JOB = dict(
    threads=2,
    burnin=3,
    iterations=12,
    window_cm=10.0,
    target_variants=1200,
    target_samples=40,
    ref_variants=9000,
    ref_samples=200,
    overlap_cm=2.0,
)


# -- the derivation, on hand-checked cases ---------------------------------------------------------
def test_a_window_longer_than_the_chromosome_takes_it_whole():
    d = beagle_derivation()
    # 29.8 + 2 cM on a 14.33 cM chromosome: one window of 14.33 cM with every marker
    f = d.derive({**JOB, "window_cm": 29.8, "chrom_cm": 14.33})
    assert f == {
        "threads": 2,
        "effective_window_cm": 14.33,
        "ref_markers_per_window": 9000,
        "target_markers_per_window": 1200,
        "target_samples": 40,
        "ref_samples": 200,
    }
    # ... the same job as any other window from 12.33 cM up: window 14.5 and window 29.8 are one job
    assert d.derive({**JOB, "window_cm": 14.5, "chrom_cm": 14.33}) == f
    # inside a 60 cM chromosome: (10 + 2) / 60 = 0.2 of the markers, 12 cM
    g = d.derive({**JOB, "chrom_cm": 60.0})
    assert g["effective_window_cm"] == 12.0
    assert g["ref_markers_per_window"] == 1800 and g["target_markers_per_window"] == 240
    # no genetic length: the window is taken to hold the whole chromosome (an upper bound)
    h = d.derive(JOB)
    assert h["effective_window_cm"] == 12.0 and h["ref_markers_per_window"] == 9000


def test_one_marker_is_one_marker_per_window():
    f = beagle_derivation().derive(
        {**JOB, "target_variants": 1, "ref_variants": 1, "window_cm": 3.0, "chrom_cm": 290.0}
    )
    assert f["ref_markers_per_window"] == 1 and f["target_markers_per_window"] == 1
    # 7 markers, 5/290 of the chromosome per window: 0.12 expected, still at least one
    f = beagle_derivation().derive({**JOB, "ref_variants": 7, "window_cm": 3.0, "chrom_cm": 290.0})
    assert f["ref_markers_per_window"] == 1


def test_genetic_length_of_a_map_with_one_bin():
    one_bin = ["chr7 rs1 0.5 1000\n", "chr7 rs2 3.75 90000\n"]
    assert genetic_length_cm(one_bin) == pytest.approx(3.25)
    f = beagle_derivation().derive({**JOB, "window_cm": 1.0, "chrom_cm": genetic_length_cm(one_bin)})
    assert f["effective_window_cm"] == pytest.approx(3.0)
    assert f["ref_markers_per_window"] == int(np.ceil(9000 * 3.0 / 3.25))
    with pytest.raises(ChromoschedError, match="no genetic length"):
        genetic_length_cm(["chr7 rs1 0.5 1000\n"])
    with pytest.raises(ChromoschedError, match="line 2: cM decreases"):
        genetic_length_cm(["chr7 rs1 2 1000\n", "chr7 rs2 1 2000\n"])


# -- input checks: one line naming the input --------------------------------------------------------
@pytest.mark.parametrize(
    "name, value, message",
    [
        ("threads", 2.5, "threads=2.5 is not a whole number"),
        ("target_samples", 0, "target_samples=0 must be at least 1"),
        ("ref_variants", -40, "ref_variants=-40 must be at least 1"),
        ("target_variants", 0, "target_variants=0 must be at least 1"),
        ("ref_samples", 1.5, "ref_samples=1.5 is not a whole number"),
        ("burnin", -1, "burnin=-1 must not be negative"),
        ("window_cm", 0, "window_cm=0 must be positive"),
        ("chrom_cm", -3, "chrom_cm=-3 must be positive"),
        ("window_cm", float("nan"), "is not finite"),
    ],
)
def test_bad_inputs_are_refused_naming_the_input(name, value, message):
    prior = load_prior(PRIOR)
    with pytest.raises(ChromoschedError, match=message) as err:
        prior.calibrated_mb({**JOB, name: value})
    assert "\n" not in str(err.value)


def test_cli_predict_refuses_fractional_threads_and_zero_samples(capsys):
    feats = [
        "threads=2",
        "target_variants=1200",
        "target_samples=40",
        "ref_variants=9000",
        "ref_samples=200",
        "window_cm=10",
        "chrom_cm=60",
    ]
    assert main(["prior", "predict", "--prior", str(PRIOR), "--json", "--features", *feats]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calibrated_mb"] >= result["raw_mb"] > 0
    assert main(["prior", "predict", "--prior", str(PRIOR), "--features", *feats[1:], "threads=2.5"]) == 2
    err = capsys.readouterr().err
    assert "threads=2.5 is not a whole number" in err and len(err.strip().splitlines()) == 1
    assert (
        main(
            [
                "prior",
                "predict",
                "--prior",
                str(PRIOR),
                "--features",
                *[f for f in feats if not f.startswith("target_samples")],
                "target_samples=0",
            ]
        )
        == 2
    )
    assert "target_samples=0 must be at least 1" in capsys.readouterr().err


def test_a_format_1_prior_is_refused_with_how_to_refit(tmp_path):
    data = json.loads(PRIOR.read_text())
    data["format"] = "chromosched-prior/1"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    with pytest.raises(
        ChromoschedError,
        match=r"old.json: prior format 'chromosched-prior/1' is no longer supported.*chromosched prior fit",
    ):
        load_prior(old)
    # a format-1 prior of another tool had its inputs as features all along: read as identity
    other = tmp_path / "work.json"
    other.write_text(
        json.dumps(
            {
                "format": "chromosched-prior/1",
                "tool": "work",
                "target": {"name": "mem_mb", "unit": "MB"},
                "features": [{"name": "length_mb", "unit": "Mbp"}],
                "expression": "0.5 * length_mb",
                "level": 0.9,
                "calibration": {"0.9": {"level": 0.9, "knots": [[1, 1.1], [300, 330]]}},
            }
        )
    )
    prior = load_prior(other)
    assert prior.feature_names == prior.model_feature_names == ["length_mb"]
    assert prior.calibrated_mb({"length_mb": 100}) == pytest.approx(55.0)
    assert json.loads(prior.dumps())["derivation"]["name"] == "identity"


# -- safety over the whole stated range -------------------------------------------------------------
def test_shipped_prior_never_decreases_in_markers_samples_threads_or_window():
    prior = load_builtin_prior("beagle")
    check = check_monotone(prior)
    assert check.violations == [] and check.grid_points > 10_000
    assert set(check.axes) >= {"ref_markers_per_window", "target_markers_per_window", "target_samples", "ref_samples"}
    # and in the inputs a user gives, on a grid over their stated range, windows inside and beyond
    # chromosomes of every measured length
    ranges = prior.feature_ranges
    axes = {
        name: np.round(np.geomspace(*ranges[name], 4)) for name in ("ref_variants", "target_samples", "ref_samples")
    }
    axes["threads"] = np.arange(ranges["threads"][0], ranges["threads"][1] + 1)
    axes["window_cm"] = np.geomspace(ranges["window_cm"][0], ranges["window_cm"][1], 5)
    axes["chrom_cm"] = np.geomspace(ranges["chrom_cm"][0], ranges["chrom_cm"][1], 3)
    names = list(axes)
    grid = np.array(list(product(*axes.values())))
    shape = [len(v) for v in axes.values()]
    for level in (0.8, 0.9, 0.95):
        est = np.array(
            [
                prior.calibrated_mb(
                    {**JOB, **dict(zip(names, np.round(row, 3))), "target_variants": max(1, int(0.1 * row[0]))}, level
                )
                for row in grid
            ]
        ).reshape(shape)
        for axis, name in enumerate(names):
            if name != "chrom_cm":  # (a longer chromosome: fewer markers but more cM per window, either way)
                assert np.all(np.diff(est, axis=axis) >= -1e-9), f"estimate falls along {name} at level {level}"
        assert est.min() >= prior.floor_mb
    # every window from the chromosome's length up is the same job, so the same estimate
    for chrom_cm in axes["chrom_cm"]:
        longest = [
            prior.calibrated_mb({**JOB, "window_cm": w, "chrom_cm": chrom_cm})
            for w in np.linspace(chrom_cm - 2.0, 3 * chrom_cm, 6)
            if w > 0
        ]
        assert max(longest) == min(longest)


def test_the_floor_is_the_smallest_success_plus_the_heap_step():
    prior = load_builtin_prior("beagle")
    from chromosched.prior.runs import read_runs

    runs = read_runs(REPO / prior.provenance["runs_file"], prior.feature_names, "min_heap_mb")
    smallest = float(runs[runs["split"] == "fit"]["min_heap_mb"].min())
    assert prior.floor == {**prior.floor, "smallest_success_mb": smallest, "heap_step_mb": 2.0, "mb": smallest + 2.0}
    # the smallest job there is gets the floor, not the formula's value below it
    tiny = {
        **JOB,
        "threads": 1,
        "target_variants": 1,
        "target_samples": 1,
        "ref_variants": 1,
        "ref_samples": 1,
        "window_cm": 0.1,
        "chrom_cm": 300.0,
    }
    assert prior.raw_mb(tiny) < prior.floor_mb
    for level in (0.8, 0.9, 0.95):
        assert prior.calibrated_mb(tiny, level) == prior.floor_mb


def test_session_and_plan_take_the_pipeline_facts():
    from chromosched.prior.beagle import prior_view
    from chromosched.runtime.session import prior_job_mem_mb

    prior = load_builtin_prior("beagle")
    facts = {**{k: float(v) for k, v in JOB.items()}, "chrom_cm": 60.0}
    view = prior_view(prior, facts, 0.9)
    assert view["features"]["ref_markers_per_window"] == 1800
    assert view["estimate_mb"] == pytest.approx(prior.calibrated_mb(facts, 0.9), abs=1e-3)
    # mem_mb for the job: the estimate plus the JVM's overhead; a longer chromosome never needs more
    assert prior_job_mem_mb(prior, facts) >= view["estimate_mb"] + 100
    assert prior_job_mem_mb(prior, {**facts, "chrom_cm": 200.0}) <= prior_job_mem_mb(prior, facts)


# -- real Beagle at the estimate of a corner point --------------------------------------------------
@pytest.mark.skipif(shutil.which("bcftools") is None, reason="needs bcftools")
def test_real_beagle_succeeds_at_the_estimate_for_the_small_array_long_window_corner(tmp_path):
    """The corner where the one-chromosome prior ran out of heap: the smallest arrays with a window
    longer than the chromosome. Beagle runs at the calibrated 0.9 estimate (rounded down to a KB)."""
    from chromosched_pipeline.imputation.beagle_design import TINY_BASE, TINY_SPACE, corner_design
    from chromosched_pipeline.imputation.beagle_profile import at_estimates, prepare_base

    work = tmp_path / "work"
    base = prepare_base(work, TINY_BASE, lambda m: None)
    assert base.genetic_length_cm < TINY_SPACE.window_cm[1]  # the long window exceeds the chromosome
    corners = corner_design(TINY_SPACE, len(base.common_ids), len(base.panel_ids))
    corner = next(
        p
        for p in corners
        if p.ref_variants == TINY_SPACE.ref_variants[0]
        and p.window_cm == TINY_SPACE.window_cm[1]
        and p.threads == 1
        and p.target_samples == TINY_SPACE.target_samples[0]
    )
    out = tmp_path / "at_estimate.tsv"
    rows = at_estimates(
        out, work, [corner], PRIOR, levels=[0.9], repeats=1, seed=11, base=TINY_BASE, progress=lambda m: None
    )
    assert len(rows) == 1 and rows[0]["outcome"] == "ok", rows
    estimate = load_prior(PRIOR).calibrated_mb({**corner.features(), "chrom_cm": base.genetic_length_cm}, 0.9)
    assert float(rows[0]["estimate_mb"]) == pytest.approx(estimate, abs=1e-3)
    # resumable: a second call runs nothing
    assert (
        at_estimates(
            out, work, [corner], PRIOR, levels=[0.9], repeats=1, seed=11, base=TINY_BASE, progress=lambda m: None
        )
        == rows
    )


# -- the runs tables the prior is fitted on -------------------------------------------------------------
def test_merge_gives_every_row_its_chromosome_length(tmp_path):
    from chromosched_pipeline.imputation.beagle_runs_table import COLUMNS, LEGACY_COLUMNS, merge, read_table

    legacy = tmp_path / "legacy.tsv"
    row = [
        "fit-0000",
        "fit",
        "2",
        "2",
        "7",
        "7.48",
        "477",
        "18",
        "13101",
        "61",
        "20",
        "18",
        "21",
        "2.4",
        "3.2",
        "83.6",
        "5",
        "15.4",
        "ok",
    ]
    legacy.write_text(
        "# design space: {}; seed 11; genetic length 14.33 cM\n"
        + "\t".join(LEGACY_COLUMNS)
        + "\n"
        + "\t".join(row)
        + "\n"
        + "\t".join(["heldout-0000", "heldout", *row[2:]])
        + "\n"
    )
    new = tmp_path / "new.tsv"
    new.write_text("\t".join(COLUMNS) + "\n" + "\t".join(["c05-fit-0000", "fit", *row[2:], "5.003"]) + "\n")
    out = tmp_path / "merged.tsv"
    merge(out, [f"{legacy}:c14-:fit", str(new)])
    _, rows = read_table(out)
    assert [(r["design_id"], r["split"], r["chrom_cm"]) for r in rows] == [
        ("c14-fit-0000", "fit", "14.33"),
        ("c14-heldout-0000", "fit", "14.33"),
        ("c05-fit-0000", "fit", "5.003"),
    ]
    with pytest.raises(ChromoschedError, match="design ids repeat"):
        merge(out, [str(new), str(new)])


def test_the_job_map_gives_the_genetic_length(tmp_path):
    from types import SimpleNamespace

    from chromosched_pipeline.resources import _job_map_length_cm

    genetic_map = tmp_path / "genetic.map"
    genetic_map.write_text("chr7\t.\t1.0\t100\nchr7\t.\t18.5\t90000\n")
    assert _job_map_length_cm(SimpleNamespace(map=str(genetic_map)), "chr7") == pytest.approx(17.5)
    assert _job_map_length_cm(SimpleNamespace(map=str(tmp_path / "missing.map")), "chr7") is None
    assert _job_map_length_cm(SimpleNamespace(), "chr7") is None


def test_plan_shows_the_features_the_prior_derived(tmp_path, capsys):
    """`chromosched plan` simulates a workflow: an impute job with its facts gets the prior's view."""
    from chromosched.runtime.job_record import JobRecord, job_uid
    from chromosched.runtime.session import SessionSettings
    from chromosched.runtime.workflow_plan import DagJob, plan_workflow

    facts = {**{k: float(v) for k, v in JOB.items()}, "chrom_cm": 60.0}
    jobs = [
        DagJob(
            JobRecord(
                uid=job_uid("impute", {"chrom": c}),
                rule="impute",
                wildcards={"chrom": c},
                declared_mem_mb=100,
                prior_features=facts,
            ),
            runtime_s=10.0,
        )
        for c in ("chr1", "chr2")
    ]
    plan = plan_workflow(
        jobs, SessionSettings(mode="dynamic", model=str(tmp_path / "model.json")), cores=2, budget_mb=4000
    )
    views = [j.prior_features for j in plan.jobs]
    assert len(views) == 2 and all(v["features"]["ref_markers_per_window"] == 1800 for v in views)
    assert plan.to_json()["jobs"][0]["prior_features"]["estimate_mb"] == pytest.approx(
        load_builtin_prior("beagle").calibrated_mb(facts, None), abs=1e-3
    )
