"""The teacher: a tree-ensemble regressor of the measured target on the features.

``VotingRegressor`` of RandomForest, HistGradientBoosting and GradientBoosting (REFERENCE 1.3), fitted
to ``log(target)`` on log-scaled size features plus their pairwise log-products. Trees split on one
feature at a time, so a memory that grows like ``markers x samples`` is far easier for them as a sum
of logs; the log target makes errors relative, as memory is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from ..errors import ChromoschedError
from .features import FeatureSpec


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class TeacherScore:
    """Cross-validated quality of the teacher on the measured runs."""

    cv_pearson: float  # on the target's own scale (MB)
    cv_pearson_log: float
    folds: int


@contextlib.contextmanager
def single_threaded():
    """Run OpenMP/BLAS code on one thread: on a small shared machine HistGradientBoosting's OpenMP
    threads spin against other processes (measured 30x slower). The libraries must already be
    loaded for threadpoolctl to see them, hence the import first."""
    import sklearn.ensemble  # noqa: F401 - loads libgomp
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


class RamTeacher:
    """Tree-ensemble regressor of a positive target (MB) on positive features.

    ``window_share``: for Beagle, the genetic length (cM) of the profiled chromosome; the teacher then
    also sees the markers per window, ``variants x min(1, (window_cm + 2) / length)`` (2 cM = Beagle's
    overlap), times the target samples and threads, on a log scale: memory follows markers per window,
    and trees cannot multiply.
    """

    def __init__(self, features: Sequence[FeatureSpec], seed: int = 0, window_share: float | None = None):
        self.features = tuple(features)
        self.seed = int(seed)
        self.window_share = float(window_share) if window_share else None
        self.model = None

    # -- transforms ----------------------------------------------------------------------------
    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        cols = []
        logs = []
        for i, spec in enumerate(self.features):
            if spec.log_scale:
                v = np.log(np.maximum(X[:, i], 1e-9))
                logs.append(v)
                cols.append(v)
            else:
                cols.append(X[:, i])
        cols.extend(a + b for a, b in combinations(logs, 2))
        names = [f.name for f in self.features]
        if self.window_share and {"window_cm", "ref_variants", "target_variants", "target_samples", "threads"} <= set(
            names
        ):
            col = {n: X[:, names.index(n)] for n in names}
            share = np.minimum(1.0, (col["window_cm"] + 2.0) / self.window_share)
            ref_w = np.log(np.maximum(col["ref_variants"] * share, 1e-9))
            tgt_w = np.log(np.maximum(col["target_variants"] * share, 1e-9))
            samples = np.log(np.maximum(col["target_samples"], 1e-9))
            threads = np.log(np.maximum(col["threads"], 1e-9))
            cols.extend(
                [ref_w, tgt_w, ref_w + samples, tgt_w + samples, tgt_w + samples + threads, ref_w + samples + threads]
            )
        return np.column_stack(cols)

    def _estimator(self):
        from sklearn.ensemble import (
            GradientBoostingRegressor,
            HistGradientBoostingRegressor,
            RandomForestRegressor,
            VotingRegressor,
        )

        return VotingRegressor(
            [
                (
                    "rf",
                    RandomForestRegressor(
                        n_estimators=150, min_samples_leaf=2, max_features=0.5, random_state=self.seed, n_jobs=1
                    ),
                ),
                (
                    "hgb",
                    HistGradientBoostingRegressor(
                        max_iter=400,
                        learning_rate=0.05,
                        min_samples_leaf=5,
                        l2_regularization=1e-3,
                        random_state=self.seed,
                    ),
                ),
                (
                    "gb",
                    GradientBoostingRegressor(
                        n_estimators=400, learning_rate=0.05, max_depth=3, subsample=0.8, random_state=self.seed
                    ),
                ),
            ]
        )

    # -- fitting / predicting ------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> RamTeacher:
        X = np.asarray(X, float)
        y = np.asarray(y, float)
        if len(y) < 10:
            raise ChromoschedError(f"the teacher needs at least 10 measured runs, got {len(y)}")
        with single_threaded():
            self.model = self._estimator().fit(self.transform(X), np.log(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted target in its own unit (MB)."""
        if self.model is None:
            raise ChromoschedError("the teacher has not been fitted")
        with single_threaded():
            return np.exp(self.model.predict(self.transform(np.asarray(X, float))))

    def cross_validate(self, X: np.ndarray, y: np.ndarray, folds: int = 5) -> TeacherScore:
        """Out-of-fold Pearson r of the teacher (each run predicted by a teacher that never saw it)."""
        from sklearn.model_selection import KFold, cross_val_predict

        X = np.asarray(X, float)
        y = np.asarray(y, float)
        folds = max(2, min(folds, len(y) // 5))
        with single_threaded():
            pred_log = cross_val_predict(
                self._estimator(), self.transform(X), np.log(y), cv=KFold(folds, shuffle=True, random_state=self.seed)
            )
        return TeacherScore(
            cv_pearson=_pearson(np.exp(pred_log), y), cv_pearson_log=_pearson(pred_log, np.log(y)), folds=folds
        )

    # -- persistence (our own artefact; verified by hash before loading) ------------------------
    def dumps(self) -> bytes:
        import joblib

        buffer = io.BytesIO()
        joblib.dump(
            {
                "features": [f.to_dict() for f in self.features],
                "seed": self.seed,
                "window_share": self.window_share,
                "model": self.model,
            },
            buffer,
            compress=3,
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, path: str | Path, expected_sha256: str) -> RamTeacher:
        """Load a teacher artefact written by ``dumps``, refusing any file whose hash differs."""
        import joblib

        path = Path(path)
        if not path.is_file():
            raise ChromoschedError(
                f"{path}: teacher artefact not found (it is written next to the prior by `chromosched prior fit`)"
            )
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise ChromoschedError(
                f"{path}: teacher artefact hash {digest[:12]}... does not match the prior's {str(expected_sha256)[:12]}...; refusing to load it"
            )
        state = joblib.load(io.BytesIO(data))
        teacher = cls(
            [FeatureSpec.from_dict(f, str(path)) for f in state["features"]],
            seed=state["seed"],
            window_share=state.get("window_share"),
        )
        teacher.model = state["model"]
        return teacher
