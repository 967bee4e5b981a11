"""One-sided split-conformal calibration: monotone, covering, adaptive to heteroscedastic errors."""

import numpy as np
import pytest

from chromosched.errors import ChromoschedError
from chromosched.prior.calibration import ConformalCalibrator, conformal_rank


def heteroscedastic(n, seed):
    """Predictions over two decades; the true value's spread grows with the prediction (x up to ~1.6)."""
    rng = np.random.default_rng(seed)
    pred = np.exp(rng.uniform(np.log(20), np.log(2000), n))
    sigma = 0.02 + 0.15 * (np.log(pred) - np.log(20)) / np.log(100)
    true = pred * np.exp(rng.normal(0, sigma))
    return pred, true


def test_conformal_rank_has_the_finite_sample_correction():
    assert conformal_rank(19, 0.9) == 18  # ceil(20 * 0.9)
    assert conformal_rank(9, 0.9) == 9
    assert conformal_rank(99, 0.95) == 95


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_monotone_and_covering_on_fresh_data(level):
    cal_pred, cal_true = heteroscedastic(400, seed=1)
    calibrator = ConformalCalibrator(level=level).fit(cal_pred, cal_true)
    grid = np.linspace(1, 5000, 2000)
    mapped = calibrator.apply(grid)
    assert np.all(np.diff(mapped) >= -1e-9), "the map must be monotone non-decreasing"
    assert np.all(np.diff(calibrator.knots_y) >= 0)
    # coverage on many fresh draws from the same distribution
    test_pred, test_true = heteroscedastic(20000, seed=2)
    coverage = np.mean(test_true <= calibrator.apply(test_pred))
    assert coverage >= level - 0.02
    assert coverage <= level + 0.08  # not trivially conservative


def test_adapts_to_heteroscedasticity():
    cal_pred, cal_true = heteroscedastic(600, seed=3)
    calibrator = ConformalCalibrator(level=0.9).fit(cal_pred, cal_true)
    low_ratio = calibrator.apply(30.0) / 30.0
    high_ratio = calibrator.apply(1500.0) / 1500.0
    assert high_ratio > low_ratio + 0.1  # wider margin where errors are larger
    # coverage holds within the low and the high range, not only on average
    test_pred, test_true = heteroscedastic(20000, seed=4)
    covered = test_true <= calibrator.apply(test_pred)
    assert covered[test_pred < 100].mean() >= 0.87
    assert covered[test_pred > 500].mean() >= 0.87


def test_round_trip_and_validation():
    cal_pred, cal_true = heteroscedastic(200, seed=5)
    calibrator = ConformalCalibrator(level=0.95).fit(cal_pred, cal_true)
    again = ConformalCalibrator.from_dict(calibrator.to_dict(), "p.json")
    assert np.allclose(again.apply([10, 100, 1000]), calibrator.apply([10, 100, 1000]), rtol=1e-5)
    with pytest.raises(ChromoschedError, match="not monotone"):
        ConformalCalibrator.from_dict({"level": 0.9, "knots": [[1, 5], [2, 4]]}, "p.json")
    with pytest.raises(ChromoschedError, match="at least"):
        ConformalCalibrator(level=0.95).fit([1.0] * 5, [1.0] * 5)
    with pytest.raises(ChromoschedError, match="level"):
        ConformalCalibrator(level=1.5)
