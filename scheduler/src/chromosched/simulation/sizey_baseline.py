"""A Sizey-like memory sizer (Bader et al., CLUSTER 2024) behind the policy interface.

Re-implemented from the description and the public code's behaviour (no code copied):

- per job type four online models on the min-max scaled size feature: linear regression, a small
  MLP, a random forest and k-nearest neighbours, refit on all history after each finished job;
- each model's accuracy = cross-validated smoothed MAPE (errors clipped at 100 %, negated);
  efficiency = -prediction / largest prediction of the four; RAQ = alpha * efficiency +
  (1 - alpha) * accuracy; the prediction is the softmax(RAQ) blend (or the argmax model);
- a relative offset per model, chosen among four statistics of its past relative errors
  (std of cleaned |errors|, median of under-predictions, median of |errors|, std of
  under-predictions) by replaying the memory wastage each would have caused on the history,
  failures costing doubling retries;
- a failed job is retried at the largest memory ever observed, or at twice its allocation when
  that is not larger (or the job is larger than anything seen and size correlates with memory).

Simplifications, stated: one fixed hyper-parameter setting per model (the public code grid-searches
each model on every update; that would make a 50-seed benchmark take hours); the history starts
with the prior run (Sizey's "historical data"); the four models are updated on every success
(the public code updates the MLP twice and the k-NN never, which we take as a slip).
Packing is done by the same knapsack as the paper's rows (``packer`` switches it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..dynamic.packers import FirstFitPacker, GreedyPacker, KnapsackPacker, Limits, PackItem
from ..dynamic.policy import Allocation, Capacity, RunningTask, TaskRequest
from ..errors import ChromoschedError

MODEL_NAMES = ("linear", "mlp", "forest", "knn")


@dataclass(frozen=True)
class SizeyConfig:
    alpha: float = 0.0  # the public README's example
    softmax: bool = True
    default_offset: float = 0.05
    packer: str = "knapsack"
    feature: str = "index"
    seed: int = 42


def _smoothed_mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    err = np.abs((y_true - y_pred) / (np.abs(y_true) + 1e-8))
    return -float(np.mean(np.clip(err, None, 1.0)))


class _TypeModels:
    """The four models of one job type, their scores and their past relative errors."""

    def __init__(self, config: SizeyConfig):
        self.config = config
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.errors: dict[str, list[float]] = {m: [] for m in MODEL_NAMES}
        self.models: dict[str, object] = {}
        self.accuracy: dict[str, float] = {}
        self._scale: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
        self.max_mem = -math.inf
        self.max_x = -math.inf
        self.min_mem = math.inf
        self._offsets: dict[str, float] | None = None

    def ready(self) -> bool:
        return len(self.xs) >= 2

    def add(self, x: float, y: float) -> None:
        self.xs.append(float(x))
        self.ys.append(float(y))
        if y > self.max_mem:
            self.max_mem, self.max_x = float(y), float(x)
        self.min_mem = min(self.min_mem, float(y))

    def refit(self) -> None:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import KFold
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.neural_network import MLPRegressor

        x = np.asarray(self.xs)
        y = np.asarray(self.ys)
        xlo, xhi, ylo, yhi = x.min(), x.max(), y.min(), y.max()
        self._scale = (xlo, (xhi - xlo) or 1.0, ylo, (yhi - ylo) or 1.0)
        xs = ((x - xlo) / self._scale[1]).reshape(-1, 1)
        ys = (y - ylo) / self._scale[3]
        n = len(x)
        seed = self.config.seed

        def make(name: str):
            if name == "linear":
                return LinearRegression()
            if name == "mlp":
                return MLPRegressor(
                    hidden_layer_sizes=(7, 7), solver="lbfgs", alpha=1e-4, max_iter=2000, random_state=seed
                )
            if name == "forest":
                return RandomForestRegressor(n_estimators=10, max_depth=5, max_features=1, random_state=seed, n_jobs=1)
            return KNeighborsRegressor(n_neighbors=min(5, max(1, n - 1)), weights="distance")

        from threadpoolctl import threadpool_limits

        folds = {"linear": 10, "mlp": 5, "forest": 5, "knn": 10}
        # One BLAS/OpenMP thread: on small data the thread start-up dominates (50x slower on 2 cores).
        from sklearn import config_context

        with (
            warnings.catch_warnings(),
            threadpool_limits(limits=1),
            config_context(assume_finite=True, skip_parameter_validation=True),
        ):
            warnings.simplefilter("ignore")
            for name in MODEL_NAMES:
                k = max(2, min(folds[name], n))
                scores = []
                for tr, te in KFold(n_splits=k, shuffle=True, random_state=seed).split(xs):
                    m = make(name)
                    if name == "knn":
                        m.set_params(n_neighbors=min(m.n_neighbors, len(tr)))
                    m.fit(xs[tr], ys[tr])
                    scores.append(_smoothed_mape(ys[te], m.predict(xs[te])))
                self.accuracy[name] = float(np.mean(scores))
                model = make(name)
                model.fit(xs, ys)
                self.models[name] = model
        self._offsets = None

    def predict_raw(self, xq: np.ndarray) -> dict[str, np.ndarray]:
        xlo, xr, ylo, yr = self._scale
        z = ((np.asarray(xq, dtype=float) - xlo) / xr).reshape(-1, 1)
        return {name: self.models[name].predict(z) * yr + ylo for name, _ in self.models.items()}

    # -- offsets (Sizey's dynamic strategy) -------------------------------------------------
    def _offset_candidates(self, errs: list[float]) -> list[float]:
        d = self.config.default_offset
        if not errs:
            return [d]
        e = np.asarray(errs)
        out = []
        # std of |errors| after dropping outliers beyond the 10-90 % range +- 1.5 IQR
        if len(e) > 1:
            a = np.abs(e)
            q1, q3 = np.percentile(a, 10), np.percentile(a, 90)
            iqr = q3 - q1
            kept = a[(a >= q1 - 1.5 * iqr) & (a <= q3 + 1.5 * iqr)]
            out.append(float(np.std(kept)) if len(kept) else d)
        else:
            out.append(d)
        under = e[e > 0]
        out.append(float(np.median(under)) if len(under) else d)
        pos = np.abs(e)[np.abs(e) > 0]
        out.append(float(np.median(pos)) if len(pos) else d)
        out.append(float(np.std(under)) if len(under) else d)
        return out

    def offsets(self) -> dict[str, float]:
        if self._offsets is not None:
            return self._offsets
        raw = self.predict_raw(np.asarray(self.xs))
        y = np.asarray(self.ys)
        res = {}
        for name in MODEL_NAMES:
            best, best_w = self.config.default_offset, math.inf
            for off in self._offset_candidates(self.errors[name]):
                yh = raw[name] * (1 + off)
                pos = yh[yh > 0]
                yh = np.where(yh > 0, yh, pos.min() if len(pos) else 1.0)
                over = np.where(yh >= y, yh - y, 0.0).sum()
                # an under-prediction is retried at doubling sizes until it fits
                factor = np.where(yh < y, 2.0 ** np.ceil(np.log2(np.maximum(y / yh, 1.0))), 0.0)
                under = np.where(yh < y, factor / 2 * yh + factor * yh - y, 0.0).sum()
                if over + under < best_w:
                    best, best_w = off, over + under
            res[name] = best
        self._offsets = res
        return res

    def size(self, xq: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(memory to allocate, raw per-model predictions) for feature values xq."""
        raw = self.predict_raw(xq)
        offs = self.offsets()
        names = list(MODEL_NAMES)
        preds = np.vstack([raw[n] for n in names])  # (4, k)
        maxp = np.max(preds, axis=0)
        eff = -preds / np.where(maxp != 0, maxp, 1.0)
        acc = np.array([self.accuracy[n] for n in names])[:, None]
        raq = self.config.alpha * eff + (1 - self.config.alpha) * acc
        off = np.array([offs[n] for n in names])[:, None]
        if self.config.softmax:
            wts = np.exp(raq - raq.max(axis=0))
            wts /= wts.sum(axis=0)
            pred = (wts * preds).sum(axis=0)
            offset = (wts * off).sum(axis=0)
        else:
            pick = np.argmax(raq, axis=0)
            cols = np.arange(preds.shape[1])
            pred = preds[pick, cols]
            offset = off[pick, 0]
        mem = pred + offset * pred
        mem = np.where(mem > 0, mem, self.min_mem * self.config.default_offset)
        return mem, raw

    def retry(self, x: float, failed_alloc: float) -> float:
        """Sizey's 'max ever observed' retry."""
        if self.max_mem <= failed_alloc or self.max_mem < failed_alloc * 1.05:
            return 2 * failed_alloc
        if len(self.xs) > 2 and x > self.max_x:
            from scipy.stats import kendalltau

            tau = kendalltau(self.xs, self.ys).statistic
            if tau is not None and tau > 0.25:
                return 2 * failed_alloc
        return self.max_mem


class SizeyPolicy:
    """Sizey-like sizing + a packer, with the same interface as DynamicPolicy."""

    def __init__(self, capacity: Capacity, config: SizeyConfig | None = None):
        self.config = config or SizeyConfig()
        self.capacity = capacity
        self._types: dict[str, _TypeModels] = {}
        self._primed: set[str] = set()
        self._launch_raw: dict[str, dict[str, float]] = {}
        self._retry_at: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._packer = {"knapsack": KnapsackPacker(), "greedy": GreedyPacker(), "firstfit": FirstFitPacker()}[
            self.config.packer
        ]

    def _x(self, t: TaskRequest) -> float:
        try:
            return float(t.features[self.config.feature])
        except KeyError:
            raise ChromoschedError(f"task {t.task_id}: size feature '{self.config.feature}' missing") from None

    def _models(self, t: TaskRequest) -> _TypeModels:
        m = self._types.get(t.kind)
        if m is None:
            m = self._types[t.kind] = _TypeModels(self.config)
        return m

    def _prime(self, ready: Sequence[TaskRequest]) -> None:
        """Historical data = the prior run of every task of a type seen for the first time."""
        for t in ready:
            if t.kind in self._primed:
                continue
            m = self._models(t)
            for u in ready:
                if u.kind == t.kind and u.prior_mb is not None:
                    m.add(self._x(u), u.prior_mb)
            self._primed.add(t.kind)
            self._dirty.add(t.kind)

    def select(
        self, ready: Sequence[TaskRequest], free: Capacity, running: Sequence[RunningTask] = (), now: float = 0.0
    ) -> list[Allocation]:
        ready = sorted(ready, key=lambda t: t.task_id)
        self._prime(ready)
        items, info = [], []
        for kind in sorted({t.kind for t in ready}):
            m = self._types[kind]
            tasks = [t for t in ready if t.kind == kind]
            if not m.ready():
                mems = [self.capacity.mem_mb] * len(tasks)  # no history at all: whole budget
                raws = [{} for _ in tasks]
            else:
                if kind in self._dirty:
                    m.refit()
                    self._dirty.discard(kind)
                mem_arr, raw = m.size(np.array([self._x(t) for t in tasks]))
                mems = list(mem_arr)
                raws = [{n: float(raw[n][i]) for n in raw} for i in range(len(tasks))]
            for t, mem, r in zip(tasks, mems, raws):
                if t.task_id in self._retry_at:
                    mem = self._retry_at[t.task_id]
                mem = float(min(max(mem, 1e-9), self.capacity.mem_mb))
                items.append(PackItem(t.task_id, mem, t.cores, t.gpus))
                info.append((t, mem, r))
        picked = self._packer.select(items, Limits(free.mem_mb, free.cores, free.gpus, free.max_tasks))
        out = []
        for i in picked:
            t, mem, r = info[i]
            self._launch_raw[t.task_id] = r
            out.append(Allocation(t, mem, None, None))
        return out

    def observe_success(self, task: TaskRequest, measured_mb: float, runtime_s: float | None = None) -> None:
        m = self._models(task)
        raw = self._launch_raw.pop(task.task_id, {})
        for name, pred in raw.items():
            if measured_mb > 0:
                m.errors[name].append((measured_mb - pred) / measured_mb)
        m.add(self._x(task), measured_mb)
        self._retry_at.pop(task.task_id, None)
        self._dirty.add(task.kind)

    def observe_failure(self, task: TaskRequest, allocated_mb: float) -> None:
        if allocated_mb >= self.capacity.mem_mb * (1 - 1e-9):
            raise ChromoschedError(
                f"task {task.task_id} ({task.kind}): ran out of memory with the whole budget of {self.capacity.mem_mb:.6g} MB"
            )
        m = self._models(task)
        nxt = m.retry(self._x(task), allocated_mb) if m.ready() else 2 * allocated_mb
        self._retry_at[task.task_id] = min(max(nxt, allocated_mb * 1.0001), self.capacity.mem_mb)
