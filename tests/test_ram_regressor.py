import json

import numpy as np
import pytest

from chromosched.dynamic.ram_regressor import OnlineRamRegressor, RegressorRegistry, RegressorSettings
from chromosched.errors import ChromoschedError


def line(x):
    return 1000.0 - 40.0 * x


def test_fit_recovers_a_line_and_refits_on_each_observation():
    reg = OnlineRamRegressor(RegressorSettings(bias="none"))
    reg.observe("a", 1, line(1))
    assert reg.predict(1) == pytest.approx(line(1))  # one point: constant
    reg.observe("b", 5, line(5))
    assert reg.predict(3) == pytest.approx(line(3))
    reg.observe("c", 4, line(4) + 40)
    assert reg.predict(3) > line(3)


def test_floor_keeps_predictions_above_smallest_point():
    reg = OnlineRamRegressor(RegressorSettings(bias="none"))
    reg.observe("a", 1, 100.0)
    reg.observe("b", 2, 60.0)  # the line goes negative at x=5
    assert reg.predict(5) == pytest.approx(60.0)
    # "positive" only relaxes the floor when prior points back the line up.
    pos = OnlineRamRegressor(RegressorSettings(bias="none", floor="positive"))
    pos.observe("a", 1, 100.0)
    pos.observe("b", 2, 60.0)
    assert pos.predict(5) == pytest.approx(60.0)
    for x in range(1, 6):
        pos.add_prior(f"p{x}", x, 140.0 - 25.0 * x)
    assert 0 < pos.predict(5) < 60.0


def test_a_failure_with_a_tiny_allocation_does_not_pull_the_fit_down():
    reg = OnlineRamRegressor(RegressorSettings(bias="none"))
    for x in (1, 2, 3):
        reg.observe(f"t{x}", x, line(x))
    before = reg.predict(4)
    reg.observe_censored("t4", 4, 10.0)  # failed with 10 MB: only says "more than 13"
    assert reg.predict(4) == pytest.approx(before)
    reg.observe_censored("t5", 5, 2000.0)  # failed with 2000 MB: pushes the fit up
    assert reg.predict(4) > before


def make_with_residuals(bias: str, n_obs: int, total: int = 20) -> OnlineRamRegressor:
    """Same residual magnitudes, different numbers of observed tasks."""
    reg = OnlineRamRegressor(RegressorSettings(bias=bias), expected_tasks=total)
    rng = np.random.default_rng(0)
    errs = np.linspace(-0.08, 0.08, n_obs)
    rng.shuffle(errs)
    for i, e in enumerate(errs):
        y = line(i % 20 + 1) * (1 + e)
        reg.observe(f"t{i}", i % 20 + 1, y, predicted_mb=line(i % 20 + 1))
    return reg


@pytest.mark.parametrize("bias", ["absolute", "relative"])
def test_bias_is_more_conservative_early_than_late(bias):
    """The same 10 observed residuals: when they are 10 of 40 expected tasks (early) the bias uses a
    higher percentile of them than when they are all 10 tasks (late)."""
    regs = {}
    for label, total in (("early", 40), ("late", 10)):
        reg = OnlineRamRegressor(RegressorSettings(bias=bias), expected_tasks=total)
        for i in range(10):
            x = i + 1
            reg.observe(f"t{i}", x, line(x) * (1 + 0.01 * (i + 1)), predicted_mb=line(x))
        regs[label] = reg
    assert regs["early"].gamma() == pytest.approx(0.95 - 0.15 * 10 / 40)
    assert regs["late"].gamma() == pytest.approx(0.80)
    x = 3.0
    assert regs["early"].bias_mb(x) > regs["late"].bias_mb(x) > 0


def test_gamma_interpolates_from_max_to_min():
    reg = OnlineRamRegressor(RegressorSettings(gamma_max=0.95, gamma_min=0.8), expected_tasks=4)
    assert reg.gamma() == pytest.approx(0.95)
    for i in range(4):
        reg.observe(str(i), i, 10.0 + i)
    assert reg.gamma() == pytest.approx(0.80)


def test_censored_observation_enters_above_the_failed_allocation_and_is_replaced():
    reg = OnlineRamRegressor(RegressorSettings(bias="none", escalation=1.3))
    for i in range(1, 6):
        reg.add_prior(f"t{i}", i, line(i))
    before = reg.predict(3)
    reg.observe_censored("t3", 3, 1000.0)  # failed with 1000 MB: needs more than that
    assert reg.predict(3) > before
    assert reg._points["t3"].y == pytest.approx(1300.0)
    # A second failure with less memory never lowers the censored point.
    reg.observe_censored("t3", 3, 900.0)
    assert reg._points["t3"].y == pytest.approx(1300.0)
    reg.observe("t3", 3, 1100.0)
    assert reg._points["t3"].kind == "observed" and reg._points["t3"].y == 1100.0
    reg.observe_censored("t3", 3, 2000.0)  # a real observation is never overwritten
    assert reg._points["t3"].y == 1100.0


def test_prior_seeds_the_fit_and_observations_replace_it():
    reg = OnlineRamRegressor(RegressorSettings(bias="none"))
    assert not reg.ready()
    for i in range(1, 11):
        reg.add_prior(f"t{i}", i, line(i))
    assert reg.ready() and reg.n_observed == 0
    assert reg.predict(4) == pytest.approx(line(4))
    for i in range(1, 11):
        reg.observe(f"t{i}", i, line(i) * 1.1)
    assert reg.predict(4) == pytest.approx(line(4) * 1.1)
    reg.add_prior("t1", 1, 5.0)  # ignored for the fit once observed
    assert reg.predict(1) == pytest.approx(line(1) * 1.1)


def test_leave_one_out_residuals_match_explicit_refits():
    rng = np.random.default_rng(3)
    reg = OnlineRamRegressor(RegressorSettings(bias="relative", relative_fit=True, degree=2))
    xs = np.arange(1, 15)
    ys = line(xs) * (1 + rng.uniform(-0.05, 0.05, len(xs)))
    for x, y in zip(xs, ys):
        reg.add_prior(f"t{x}", x, y)
    _, rel = reg.residual_pool()
    for k, (x, y) in enumerate(zip(xs, ys)):
        other = OnlineRamRegressor(RegressorSettings(bias="none", relative_fit=True, degree=2, floor="positive"))
        for xx, yy in zip(xs, ys):
            if xx != x:
                other.add_prior(f"t{xx}", xx, yy)
        assert rel[k] == pytest.approx(y / other.predict(x) - 1, rel=1e-6, abs=1e-9)


def test_registry_one_regressor_per_kind_and_json_round_trip(tmp_path):
    reg = RegressorRegistry(RegressorSettings(bias="relative"))
    reg.get("beagle").observe("chr1", 1, 5000.0, predicted_mb=4800.0)
    reg.get("beagle").observe("chr2", 2, 4800.0)
    reg.get("prs").add_prior("chr1", 1, 300.0)
    assert reg.kinds() == ["beagle", "prs"]
    path = tmp_path / "state" / "regressors.json"
    reg.save(path)
    data = json.loads(path.read_text())
    assert data["version"] == 1 and set(data["regressors"]) == {"beagle", "prs"}
    assert not list(path.parent.glob("*.tmp"))
    back = RegressorRegistry.load(path)
    assert back.get("beagle").predict(3) == pytest.approx(reg.get("beagle").predict(3))
    assert back.get("beagle").residual_pool() == reg.get("beagle").residual_pool()


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ChromoschedError, match="bad.json: not valid JSON"):
        RegressorRegistry.load(bad)
    with pytest.raises(ChromoschedError, match="missing.json: regressor state file not found"):
        RegressorRegistry.load(tmp_path / "missing.json")
    other = tmp_path / "other.json"
    other.write_text('{"version": 1, "regressors": {"x": {"settings": {}, "points": {"a": [1, 2, "weird"]}}}}')
    with pytest.raises(ChromoschedError, match="other.json \\(x\\): not a valid regressor state"):
        RegressorRegistry.load(other)


def test_bad_values_are_rejected():
    reg = OnlineRamRegressor()
    with pytest.raises(ChromoschedError, match="measured memory must be a finite number"):
        reg.observe("a", 1, float("inf"))
    with pytest.raises(ChromoschedError, match="no data yet"):
        reg.predict(1)
    with pytest.raises(ChromoschedError, match="bias mode"):
        RegressorSettings(bias="weird")
