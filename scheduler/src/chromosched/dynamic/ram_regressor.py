"""Online regression of a job's peak memory on a size feature, with a conservative bias.

One :class:`OnlineRamRegressor` per job type (rule): a polynomial of degree ``d`` (the paper uses
1) in one size feature (chromosome index as in the paper, chromosome length, variant count, ...),
refit whenever a job finishes. Three kinds of points enter the fit, all keyed by task id so a
later point replaces an earlier one for the same task:

- prior points (a prediction from the prior model or a previous run) seed the fit, so there is
  no initial sequential phase;
- censored points: a job that failed with ``a`` MB needed more than ``a``; it enters as
  ``escalation * a`` (the paper's temporary observation) until its real peak is known;
- real observations (measured peaks).

The conservative bias is computed from residuals of predictions made *at launch* against what was
then observed (out of sample, as the paper's Eqs. 11-12), pooled with leave-one-out residuals of
the prior points (the prior run's scatter around its own trend says how noisy one run is):

- ``absolute`` (paper): bias = the gamma-th percentile of |predicted - observed| in MB, gamma
  interpolated linearly from ``gamma_max`` (nothing observed) to ``gamma_min`` (all observed);
- ``relative`` (ours): memory noise grows with job size, so residuals are ratios
  |observed / predicted - 1|; margin = ``safety`` x their gamma-th percentile, applied
  multiplicatively;
- ``none``.

The point prediction never goes below the smallest observed peak (a line through two big jobs
would go negative for small ones).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic_files import write_text_atomic
from ..errors import ChromoschedError

BIAS_MODES = ("none", "absolute", "relative")


@dataclass
class _Point:
    x: float
    y: float
    kind: str  # "prior" | "censored" | "observed"


@dataclass
class RegressorSettings:
    """Settings of one regressor (defaults: the paper's d=1, gamma 0.95 -> 0.80, s=1.3)."""

    degree: int = 1
    bias: str = "absolute"
    gamma_max: float = 0.95
    gamma_min: float = 0.80
    safety: float = 1.0
    escalation: float = 1.3
    prior_weight: float = 1.0
    relative_fit: bool = False  # weight points by 1/y^2: least squares on relative errors
    min_residuals: int = 1
    default_margin: float = 0.0  # relative margin used while fewer than min_residuals residuals exist
    residuals: str = "launch"  # launch (paper: predictions made at launch) | loo (current fit, leave-one-out)
    floor: str = "smallest"  # smallest (paper: smallest point, observed or prior) | positive
    ucb_delta: float | None = None  # scale the safety by delta^(-1/n) (n residuals): wider when few
    # Few-shot and unseen job types (see docs/dynamic.md):
    degree_choice: bool = False  # with >= 8 distinct sizes, pick degree 1 or 2 by leave-one-out error
    outlier_cut: float | None = None  # margin ignores residuals above cut x their median (and > 0.5)

    def __post_init__(self):
        if self.bias not in BIAS_MODES:
            raise ChromoschedError(f"bias mode must be one of {', '.join(BIAS_MODES)}, got {self.bias!r}")
        if self.degree < 0 or self.degree > 5:
            raise ChromoschedError(f"regression degree must be 0..5, got {self.degree}")
        if not (0 < self.gamma_min <= self.gamma_max <= 1):
            raise ChromoschedError(f"need 0 < gamma_min <= gamma_max <= 1, got {self.gamma_min}, {self.gamma_max}")
        if self.escalation < 1:
            raise ChromoschedError(f"escalation factor must be >= 1, got {self.escalation}")
        if self.residuals not in ("launch", "loo"):
            raise ChromoschedError(f"residual source must be 'launch' or 'loo', got {self.residuals!r}")
        if self.floor not in ("smallest", "positive"):
            raise ChromoschedError(f"floor must be 'smallest' or 'positive', got {self.floor!r}")


class OnlineRamRegressor:
    """Polynomial regression of peak memory (MB) on one size feature, refit on every change."""

    def __init__(self, settings: RegressorSettings | None = None, expected_tasks: int | None = None):
        self.settings = settings or RegressorSettings()
        self.expected_tasks = expected_tasks
        self._points: dict[str, _Point] = {}
        self._abs_residuals: dict[str, float] = {}  # at-launch |pred - observed|, MB
        self._rel_residuals: dict[str, float] = {}  # at-launch observed/pred - 1
        self._model: _PolyModel | None = None
        self._priors: dict[str, tuple[float, float]] = {}
        self._dirty = True
        self._loo_cache: tuple[list[float], list[float]] | None = None
        self._floor = 0.0
        self._fit_keys: list[str] = []
        self.prior_is_feature = False
        # Prior points that are only a stated upper bound (a rule's declared mem_mb), not an
        # estimate: they seed the fit until the first job is observed, then leave it.
        self.priors_are_bounds = False
        self._obs_loo_cache: list[float] | None = None
        self._margin_cache: tuple[float, tuple[float, float]] | None = None
        self._n_observed: int | None = None

    # -- data ---------------------------------------------------------------------------------
    def add_prior(self, key: str, x: float, y_mb: float) -> None:
        """Seed the fit with a prior prediction for task ``key`` (ignored once it is observed)."""
        _finite(x, "size feature")
        _finite(y_mb, "prior memory")
        if y_mb <= 0:
            raise ChromoschedError(f"task {key}: prior memory must be > 0, got {y_mb}")
        old = self._points.get(key)
        if old is not None and old.kind != "prior":
            self._priors[key] = (float(x), float(y_mb))
            self._dirty = True
            return
        self._points[key] = _Point(float(x), float(y_mb), "prior")
        self._priors[key] = (float(x), float(y_mb))
        if self.priors_are_bounds and not self._dirty and self._n_observed:
            # A stated bound left the fit with the first observed job: a new one changes no fit
            # (a ready job arriving must not cost a refit over every point).
            self._obs_loo_cache = None
            self._margin_cache = None
            return
        self._dirty = True

    def observe(self, key: str, x: float, y_mb: float, predicted_mb: float | None = None) -> None:
        """A finished job's measured peak; ``predicted_mb`` = the point prediction at its launch."""
        _finite(x, "size feature")
        _finite(y_mb, "measured memory")
        if y_mb < 0:
            raise ChromoschedError(f"task {key}: measured memory must be >= 0, got {y_mb}")
        self._points[key] = _Point(float(x), float(y_mb), "observed")
        if predicted_mb is not None and predicted_mb > 0 and y_mb > 0:
            self._abs_residuals[key] = abs(float(predicted_mb) - float(y_mb))
            self._rel_residuals[key] = float(y_mb) / float(predicted_mb) - 1.0
        self._dirty = True

    def observe_censored(self, key: str, x: float, lower_mb: float) -> None:
        """A job failed with ``lower_mb``: its need is above that. Enters as escalation x lower."""
        _finite(x, "size feature")
        _finite(lower_mb, "failed allocation")
        old = self._points.get(key)
        if old is not None and old.kind == "observed":
            return
        y = self.settings.escalation * float(lower_mb)
        if old is not None and old.kind == "censored":
            y = max(y, old.y)
        self._points[key] = _Point(float(x), y, "censored")
        self._dirty = True

    # -- queries ------------------------------------------------------------------------------
    @property
    def n_observed(self) -> int:
        # Counted once per fit (every change sets _dirty; _fit clears the count): asked many times a round.
        if self._n_observed is not None and not self._dirty:
            return self._n_observed
        count = sum(1 for p in self._points.values() if p.kind == "observed")
        if not self._dirty:
            self._n_observed = count
        return count

    @property
    def n_points(self) -> int:
        return len(self._points)

    def frontier(self) -> tuple[float, float, float | None] | None:
        """(largest observed feature value, its measured peak, local log-log slope) or None.

        The slope is taken between the two largest distinct observed sizes; None with one."""
        obs = sorted((p.x, p.y) for p in self._points.values() if p.kind == "observed")
        if not obs:
            return None
        x1, y1 = obs[-1]
        y1 = max(y for x, y in obs if x == x1)
        lower = [(x, y) for x, y in obs if 0 < x < x1 / 1.05 and y > 0]
        slope = None
        if lower and x1 > 0 and y1 > 0:
            x0, y0 = lower[-1]
            slope = math.log(y1 / y0) / math.log(x1 / x0)
        return x1, y1, slope

    def has_prior(self) -> bool:
        return bool(self._priors)

    def ready(self) -> bool:
        """True once there is anything to fit."""
        return bool(self._points)

    def predict(self, x: float) -> float:
        """Point prediction (MB) at feature value x, floored (see ``RegressorSettings.floor``)."""
        coef = self._fit()
        if coef is None:
            raise ChromoschedError("the memory regressor has no data yet (no prior and nothing observed)")
        return max(coef.predict(x), self._floor)

    def gamma(self) -> float:
        """Percentile level: gamma_max with nothing observed, gamma_min when all are observed."""
        s = self.settings
        total = self.expected_tasks or max(self.n_points, 1)
        frac = min(1.0, self.n_observed / max(total, 1))
        return s.gamma_max - (s.gamma_max - s.gamma_min) * frac

    def residual_pool(self) -> tuple[list[float], list[float]]:
        """(absolute MB, relative) residuals: at-launch ones plus leave-one-out ones of priors."""
        loo_abs, loo_rel = self._prior_loo()
        return list(self._abs_residuals.values()) + loo_abs, list(self._rel_residuals.values()) + loo_rel

    def margin(self) -> tuple[float, float]:
        """The conservative bias as (MB added, fraction of the prediction added); one of the two
        is zero depending on the bias mode. Cached until the data change."""
        s = self.settings
        if s.bias == "none":
            return 0.0, 0.0
        self._fit()
        gamma = self.gamma()
        if self._margin_cache is not None and self._margin_cache[0] == gamma:
            return self._margin_cache[1]
        abs_res, rel_res = self.residual_pool()
        if s.residuals == "loo" and s.bias == "relative":
            # The current model's own out-of-sample errors: early extrapolation errors (a line
            # through the first two jobs) do not stay in the pool for ever.
            # When the feature is the prior itself, prior points sit on y = x: their residuals
            # say nothing about the noise, so only observed jobs count.
            prior_rel = [] if self.prior_is_feature else self._prior_loo()[1]
            rel_res = prior_rel + self._observed_loo()
        # Both modes use magnitudes: twice the sample of one-sided residuals for the noise scale.
        pool = abs_res if s.bias == "absolute" else [abs(e) for e in rel_res]
        if len(pool) < s.min_residuals and s.bias == "relative" and s.residuals == "launch":
            # Few launch residuals and no prior run: add leave-one-out residuals of observed points.
            pool += [abs(e) for e in self._observed_loo()]
        if s.outlier_cut is not None and len(pool) >= s.min_residuals and s.bias == "relative":
            # A few jobs far off the law (5x) must not multiply every other job's margin: they are
            # what live memory sampling and retries are for. Cut relative residuals above
            # outlier_cut x the median one (and above 50 %), keeping at least min_residuals.
            median = float(np.median(np.asarray(pool)))
            kept = [e for e in pool if e <= max(s.outlier_cut * median, 0.5)]
            pool = kept if len(kept) >= s.min_residuals else pool
        if len(pool) < s.min_residuals:
            out = (0.0, 0.0) if s.bias == "absolute" else (0.0, s.default_margin)
        else:
            q = max(float(np.quantile(np.asarray(pool), gamma, method="higher")), 0.0)
            safety = s.safety
            if self.prior_is_feature and s.ucb_delta is None:
                # Fewer, noisier residuals (prior and job both vary): widen while n is small.
                safety *= 0.05 ** (-1.0 / len(pool))
            if s.ucb_delta is not None:
                # If residual magnitudes were uniform on [0, a], P(max of n < a / k) = k^-n: with
                # k = delta^(-1/n) the bound a is covered with probability 1 - delta.
                safety *= s.ucb_delta ** (-1.0 / len(pool))
            out = (safety * q, 0.0) if s.bias == "absolute" else (0.0, safety * q)
        self._margin_cache = (gamma, out)
        return out

    def bias_mb(self, x: float) -> float:
        """The conservative amount (MB) added to the point prediction at x."""
        add, frac = self.margin()
        return add + (frac * self.predict(x) if frac else 0.0)

    def predict_many(self, xs) -> np.ndarray:
        """Point predictions for many feature values at once (floored)."""
        model = self._fit()
        if model is None:
            raise ChromoschedError("the memory regressor has no data yet (no prior and nothing observed)")
        z = (np.asarray(xs, dtype=float) - model.centre) / model.scale
        return np.maximum(np.polyval(model.coef, z), self._floor)

    def predict_conservative(self, x: float) -> float:
        return self.predict(x) + self.bias_mb(x)

    # -- fitting ------------------------------------------------------------------------------
    def _weights(self, pts: list[_Point]) -> np.ndarray:
        w = np.array([self.settings.prior_weight if p.kind == "prior" else 1.0 for p in pts])
        if self.settings.relative_fit:
            w = w / np.maximum(np.array([p.y for p in pts]), 1e-9) ** 2
        return w

    def _fit_points(self, keys: list[str]) -> _PolyModel | None:
        if not keys:
            return None
        pts = [self._points[k] for k in keys]
        xs, ys, w = np.array([p.x for p in pts]), np.array([p.y for p in pts]), self._weights(pts)
        model = _PolyModel.fit(xs, ys, w, self.settings.degree)
        if self.settings.degree_choice and len(np.unique(xs)) >= 8:
            # A convex law (memory quadratic in size) is underestimated at the top by a line, a
            # line is over-fitted by a parabola on noise: keep whichever predicts held-out jobs better.
            other = _PolyModel.fit(xs, ys, w, 2 if self.settings.degree == 1 else 1)
            if other.loo_relative_rms() < 0.7 * model.loo_relative_rms():
                model = other
        return model

    def _fit(self) -> _PolyModel | None:
        if self._dirty:
            # A rule with 10,000 jobs has 10,000 prior points: pick out the few others in one pass.
            points = self._points
            others = [k for k, p in points.items() if p.kind != "prior"]
            observed = [k for k in others if points[k].kind == "observed"]
            censored = [k for k in others if points[k].kind == "censored"]
            if self.priors_are_bounds and observed:
                exact = observed
            else:
                exact = [k for k, p in points.items() if p.kind != "censored"] if censored else list(points)
            keys = exact
            base = self._fit_points(exact)
            if censored:
                # A failure only says "more than that": it may push the fit up, never pull it down
                # (a job that failed with a far too small allocation carries a far too low bound).
                keys = exact + [
                    k for k in censored if base is None or self._points[k].y > base.predict(self._points[k].x)
                ]
            self._model = base if keys == exact else self._fit_points(keys)
            self._fit_keys = keys
            # The paper keeps predictions above the smallest observed peak (a line through two big
            # jobs goes negative for small ones); prior points count as observed here, else the
            # first big observation would lift every small job to its size. "positive" only guards
            # against non-positive predictions and needs prior points: without them the line
            # through the first (big) jobs is extrapolated far, and the paper's floor applies.
            ys = [self._points[k].y for k in keys]
            smallest = min(ys, default=0.0)
            loose = self.settings.floor == "positive" and self.has_prior()
            self._floor = 0.05 * smallest if loose else smallest
            self._loo_cache = None
            self._obs_loo_cache = None
            self._margin_cache = None
            self._n_observed = len(observed)
            self._dirty = False
        return self._model

    def _prior_loo(self) -> tuple[list[float], list[float]]:
        """Out-of-sample residuals of every prior point ever added: leave-one-out (closed form)
        while the prior point is in the fit, plain residual once its task has been observed.
        The prior run's scatter around its trend says how noisy one run is, so it stays in the
        pool after the tasks themselves are observed."""
        model = self._fit()
        if self._loo_cache is not None:
            return self._loo_cache
        abs_res: list[float] = []
        rel_res: list[float] = []
        bounds_only = self.priors_are_bounds and self.n_observed  # a bound's distance from the data is not noise
        if model is not None and len(self._points) >= self.settings.degree + 2 and not bounds_only:
            loo = dict(zip(self._fit_keys, model.loo_predictions()))
            for key, (x, y) in self._priors.items():
                p = self._points.get(key)
                pred = loo[key] if (p is not None and p.kind == "prior") else model.predict(x)
                if pred > 0 and y > 0:
                    abs_res.append(abs(pred - y))
                    rel_res.append(y / pred - 1.0)
        self._loo_cache = (abs_res, rel_res)
        return self._loo_cache

    def _observed_loo(self) -> list[float]:
        """Relative leave-one-out residuals of the observed points (closed form)."""
        model = self._fit()
        if self._obs_loo_cache is not None:
            return self._obs_loo_cache
        if model is None or len(self._points) < self.settings.degree + 2:
            return []
        out = []
        for key, pred in zip(self._fit_keys, model.loo_predictions()):
            p = self._points[key]
            if p.kind == "observed" and pred > 0 and p.y > 0:
                out.append(p.y / pred - 1.0)
        self._obs_loo_cache = out
        return out

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "settings": self.settings.__dict__,
            "expected_tasks": self.expected_tasks,
            "points": {k: [p.x, p.y, p.kind] for k, p in self._points.items()},
            "priors": {k: list(v) for k, v in self._priors.items()},
            "abs_residuals": self._abs_residuals,
            "rel_residuals": self._rel_residuals,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "regressor state") -> OnlineRamRegressor:
        try:
            reg = cls(RegressorSettings(**data["settings"]), data.get("expected_tasks"))
            for k, (x, y, kind) in data["points"].items():
                if kind not in ("prior", "censored", "observed"):
                    raise ValueError(f"unknown point kind {kind!r}")
                reg._points[str(k)] = _Point(float(x), float(y), kind)
            reg._priors = {str(k): (float(x), float(y)) for k, (x, y) in data.get("priors", {}).items()}
            for k, p in reg._points.items():
                if p.kind == "prior":
                    reg._priors.setdefault(k, (p.x, p.y))
            reg._abs_residuals = {str(k): float(v) for k, v in data.get("abs_residuals", {}).items()}
            reg._rel_residuals = {str(k): float(v) for k, v in data.get("rel_residuals", {}).items()}
        except (KeyError, TypeError, ValueError) as err:
            raise ChromoschedError(f"{source}: not a valid regressor state ({err})") from None
        return reg


class RegressorRegistry:
    """One regressor per job type (rule name), created on first use with shared settings."""

    def __init__(self, settings: RegressorSettings | None = None):
        self.settings = settings or RegressorSettings()
        self._by_kind: dict[str, OnlineRamRegressor] = {}
        self._overrides: dict[str, dict] = {}  # job type -> settings changed for it (and its alt features)

    def _settings_for(self, kind: str) -> RegressorSettings:
        values = dict(self.settings.__dict__)
        values.update(self._overrides.get(kind.split("@", 1)[0], {}))
        return RegressorSettings(**values)

    def get(self, kind: str) -> OnlineRamRegressor:
        reg = self._by_kind.get(kind)
        if reg is None:
            reg = OnlineRamRegressor(self._settings_for(kind))
            self._by_kind[kind] = reg
        return reg

    def configure(self, kind: str, **changes) -> None:
        """Settings for one job type that differ from the shared ones (e.g. no early default
        margin for a type whose prior is already a calibrated, conservative estimate)."""
        self._overrides[kind] = {**self._overrides.get(kind, {}), **changes}
        for name, reg in self._by_kind.items():
            if name.split("@", 1)[0] == kind:
                reg.settings = self._settings_for(name)
                reg._margin_cache = None

    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def to_dict(self) -> dict:
        return {"version": 1, "regressors": {k: r.to_dict() for k, r in self._by_kind.items()}}

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON atomically (temp file in the same folder, then rename). Compact:
        only then does ``json`` use its C encoder (2-3x faster; the plugin saves after job finishes)."""
        write_text_atomic(path, json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def load(cls, path: str | os.PathLike, settings: RegressorSettings | None = None) -> RegressorRegistry:
        """Warm start from a saved state; ``settings`` (if given) override the stored ones."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ChromoschedError(f"{path}: regressor state file not found") from None
        except json.JSONDecodeError as err:
            raise ChromoschedError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
        if not isinstance(data, dict) or data.get("version") != 1 or "regressors" not in data:
            raise ChromoschedError(f"{path}: not a chromosched regressor state (version 1 expected)")
        reg = cls(settings)
        for kind, state in data["regressors"].items():
            r = OnlineRamRegressor.from_dict(state, source=f"{path} ({kind})")
            if settings is not None:
                r.settings = RegressorSettings(**settings.__dict__)
            reg._by_kind[str(kind)] = r
        return reg


class _PolyModel:
    """Weighted least-squares polynomial on a standardised feature (well conditioned for
    features such as chromosome length in bp), with closed-form leave-one-out predictions."""

    def __init__(self, coef, centre, scale, design, weights, ys):
        self.coef, self.centre, self.scale = coef, centre, scale
        self._design, self._weights, self._ys = design, weights, ys

    @classmethod
    def fit(cls, xs: np.ndarray, ys: np.ndarray, w: np.ndarray, degree: int) -> _PolyModel:
        centre = float(np.mean(xs))
        scale = float(np.std(xs)) or 1.0
        z = (xs - centre) / scale
        degree = max(0, min(degree, len(np.unique(xs)) - 1))
        if not np.any(w > 0):
            w = np.ones_like(ys)
        design = np.vander(z, degree + 1)
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(design * sw[:, None], ys * sw, rcond=None)
        return cls(coef, centre, scale, design, w, ys)

    def predict(self, x: float) -> float:
        z = (float(x) - self.centre) / self.scale
        return float(np.polyval(self.coef, z))

    def loo_relative_rms(self) -> float:
        """RMS of the relative leave-one-out errors (the degree chooser's score)."""
        pred = self.loo_predictions()
        ok = (self._ys > 0) & (pred > 0)
        if not np.any(ok):
            return float("inf")
        return float(np.sqrt(np.mean((self._ys[ok] / pred[ok] - 1.0) ** 2)))

    def loo_predictions(self) -> np.ndarray:
        """Prediction at each point from the fit without that point: y - e / (1 - h)."""
        if getattr(self, "_loo", None) is not None:
            return self._loo
        X, w, y = self._design, self._weights, self._ys
        fitted = X @ self.coef
        gram = X.T @ (X * w[:, None])
        h = np.einsum("ij,jk,ik->i", X, np.linalg.pinv(gram), X) * w
        resid = y - fitted
        with np.errstate(divide="ignore", invalid="ignore"):
            loo_resid = np.where(h < 1 - 1e-9, resid / (1 - h), np.nan)
        pred = y - loo_resid
        self._loo = np.where(np.isfinite(pred), pred, fitted)
        return self._loo


def _finite(v: float, what: str) -> None:
    if v is None or not math.isfinite(float(v)):
        raise ChromoschedError(f"{what} must be a finite number, got {v!r}")
