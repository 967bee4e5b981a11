"""Symbolic-regression engines that turn (features, teacher labels) into one closed-form formula.

- ``operon`` (pyoperon, C++ GP with local least-squares tuning of constants) — the embedded default.
- ``pysr`` (PySR, on Julia's SymbolicRegression.jl) — used where a Julia installation is present.
- ``gplearn`` (pure Python GP) — a second embedded option.
- ``monotone`` — a sparse non-negative combination of non-decreasing terms (each feature, its log
  and square root, products of two and of three features): non-decreasing in every feature by
  construction, deterministic, seconds. The default for Beagle, whose memory never falls when
  markers per window, samples or threads grow.

Each engine returns formula text in the grammar of ``SafeExpression`` over the feature names; the
caller parses (and so checks) it before use.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ChromoschedError

ENGINES = ("monotone", "operon", "pysr", "gplearn")


@dataclass(frozen=True)
class SearchBudget:
    """How hard an engine searches (generations, population, expression size, wall-clock cap).

    Operon stops at ``generations`` or at ``4 x generations x population`` evaluations (residual and
    Jacobian evaluations of its local search count), whichever comes first: deterministic for a seed.
    ``max_time_s`` is only a safety cap (wall clock, so it would make a loaded machine's result differ).
    """

    generations: int = 300
    population: int = 800
    max_length: int = 40
    max_time_s: int = 3600

    @classmethod
    def preset(cls, name: str) -> SearchBudget:
        presets = {
            "tiny": cls(generations=15, population=100, max_length=20, max_time_s=60),
            "small": cls(generations=80, population=300, max_length=30, max_time_s=600),
            "default": cls(),
        }
        if name not in presets:
            raise ChromoschedError(f"--budget: unknown search budget {name!r} (expected {', '.join(presets)})")
        return presets[name]


class SymbolicEngine:
    """Interface: ``check()`` raises a one-line error when unusable; ``fit`` returns formula text."""

    name = "?"

    def check(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray, names: Sequence[str], budget: SearchBudget, seed: int) -> str:
        raise NotImplementedError  # pragma: no cover

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.package)
        except PackageNotFoundError:
            return "unknown"


class OperonEngine(SymbolicEngine):
    name = "operon"
    package = "pyoperon"

    def check(self) -> None:
        if importlib.util.find_spec("pyoperon") is None:
            raise ChromoschedError("engine operon needs the Python package pyoperon (pip install pyoperon==0.6.2)")

    def fit(self, X, y, names, budget, seed):
        self.check()
        from pyoperon.sklearn import SymbolicRegressor

        model = SymbolicRegressor(
            allowed_symbols="add,sub,mul,div,constant,variable,sqrt,log,square,fmin,fmax",
            objectives=["r2", "length"],
            generations=budget.generations,
            population_size=budget.population,
            pool_size=budget.population,
            max_length=budget.max_length,
            max_depth=12,
            max_evaluations=budget.generations * budget.population * 4,
            max_time=budget.max_time_s,
            optimizer="lm",
            optimizer_iterations=10,
            n_threads=1,
            random_state=int(seed),
        )
        model.fit(np.asarray(X, float), np.asarray(y, float))
        # operon prints powers (square) as `x ^ 2`; our grammar spells it `**` (this is the engine's
        # own output, parsed and checked by SafeExpression afterwards)
        return model.get_model_string(model.model_, 10, list(names)).replace("^", "**")


class GplearnEngine(SymbolicEngine):
    name = "gplearn"
    package = "gplearn"

    def check(self) -> None:
        if importlib.util.find_spec("gplearn") is None:
            raise ChromoschedError("engine gplearn needs the Python package gplearn (pip install gplearn==0.4.3)")

    def fit(self, X, y, names, budget, seed):
        self.check()
        from gplearn.genetic import SymbolicRegressor

        X = np.asarray(X, float)
        y = np.asarray(y, float)
        # gplearn draws constants from a small range: give it unit-scale inputs and output, and
        # write the scales back into the formula.
        x_scale = np.where(np.median(np.abs(X), axis=0) > 0, np.median(np.abs(X), axis=0), 1.0)
        y_scale = float(np.median(np.abs(y))) or 1.0
        model = SymbolicRegressor(
            population_size=budget.population,
            generations=min(budget.generations, 60),
            function_set=("add", "sub", "mul", "div", "sqrt", "log"),
            metric="mse",
            parsimony_coefficient=1e-4,
            const_range=(-2.0, 2.0),
            init_depth=(2, 5),
            random_state=int(seed),
            n_jobs=1,
        )
        model.fit(X / x_scale, y / y_scale)
        terms = [f"({n} / {s:.10g})" for n, s in zip(names, x_scale)]
        return f"{y_scale:.10g} * ({_gplearn_infix(model._program.program, terms)})"


def _gplearn_infix(program: list, terms: Sequence[str]) -> str:
    """gplearn's prefix program as infix text, its protected operators written out exactly.

    gplearn's ``div`` returns 1 where the denominator is tiny, ``sqrt`` and ``log`` take |x| (and log
    returns 0 near 0); the formula keeps the ``abs`` and uses plain division.
    """
    position = 0

    def walk() -> str:
        nonlocal position
        node = program[position]
        position += 1
        if isinstance(node, (int, np.integer)):
            return terms[int(node)]
        if isinstance(node, (float, np.floating)):
            return f"({float(node):.10g})"
        args = [walk() for _ in range(node.arity)]
        name = node.name
        if name in ("add", "sub", "mul", "div"):
            op = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[name]
            return f"({args[0]} {op} {args[1]})"
        if name in ("sqrt", "log"):
            return f"{name}(abs({args[0]}))"
        raise ChromoschedError(f"gplearn produced the unsupported function {name!r}")

    return walk()


class PysrEngine(SymbolicEngine):
    name = "pysr"
    package = "pysr"

    def check(self) -> None:
        if shutil.which("julia") is None:
            raise ChromoschedError(
                "engine pysr needs a Julia installation, but `julia` is not on PATH; "
                "use --engine operon (the embedded default) or install Julia and pysr"
            )
        if importlib.util.find_spec("pysr") is None:
            raise ChromoschedError("engine pysr needs the Python package pysr (pip install pysr), Julia was found")

    def fit(self, X, y, names, budget, seed):
        self.check()
        import sympy
        from pysr import PySRRegressor

        model = PySRRegressor(
            niterations=max(5, budget.generations // 10),
            populations=8,
            population_size=max(30, budget.population // 10),
            maxsize=budget.max_length,
            binary_operators=["+", "-", "*", "/"],
            unary_operators=["log", "sqrt"],
            timeout_in_seconds=budget.max_time_s,
            random_state=int(seed),
            deterministic=True,
            parallelism="serial",
            progress=False,
            verbosity=0,
        )
        model.fit(np.asarray(X, float), np.asarray(y, float), variable_names=list(names))
        return sympy.sstr(model.sympy(), full_prec=False)


class MonotoneEngine(SymbolicEngine):
    """Non-negative least squares over a library of terms that never decrease in any (positive) feature.

    Terms: each feature ``x``, ``log(x)``, ``sqrt(x)``; products of two, three and four features and
    square roots of products of two; a constant. With every coefficient >= 0 and positive features every term, and so the sum, is
    non-decreasing in each feature, whatever the data. Errors are weighted by ``1 / y`` (relative,
    as memory errors are). Terms adding less than ``prune`` of the mean prediction are dropped and the
    rest refitted, so the formula stays short.
    """

    name = "monotone"
    package = "scipy"

    def __init__(self, prune: float = 0.005):
        self.prune = prune

    def check(self) -> None:
        if importlib.util.find_spec("scipy") is None:  # pragma: no cover - scipy is a dependency
            raise ChromoschedError("engine monotone needs scipy")

    @staticmethod
    def terms(names: Sequence[str]) -> list[str]:
        from itertools import combinations

        out = ["1"]
        for n in names:
            out += [n, f"log({n})", f"sqrt({n})"]
        out += [f"{a} * {b}" for a, b in combinations(names, 2)]
        out += [f"{a} * {b} * {c}" for a, b, c in combinations(names, 3)]
        out += [f"{a} * {b} * {c} * {d}" for a, b, c, d in combinations(names, 4)]
        out += [f"sqrt({a} * {b})" for a, b in combinations(names, 2)]
        return out

    def fit(self, X, y, names, budget, seed):
        from scipy.optimize import nnls

        from .expression import SafeExpression

        X = np.asarray(X, float)
        y = np.asarray(y, float)
        if np.any(X <= 0):
            raise ChromoschedError(
                "engine monotone needs positive features (a product with a negative factor could decrease)"
            )
        terms = self.terms(names)
        columns = np.column_stack(
            [np.full(len(y), 1.0) if t == "1" else SafeExpression(t, names).evaluate_matrix(X) for t in terms]
        )
        weight = 1.0 / np.maximum(y, 1e-9)

        def solve(keep: list[int]) -> np.ndarray:
            A = columns[:, keep] * weight[:, None]
            scale = np.linalg.norm(A, axis=0)
            scale[scale == 0] = 1.0
            coef, _ = nnls(A / scale, y * weight, maxiter=50 * len(keep))
            return coef / scale

        keep = list(range(len(terms)))
        coef = solve(keep)
        for _ in range(5):
            contribution = np.abs(columns[:, keep] * coef).mean(axis=0) / max(float(np.mean(y)), 1e-9)
            small = [k for k, c in zip(keep, contribution) if c < self.prune and terms[k] != "1"]
            if not small:
                break
            keep = [k for k in keep if k not in small]
            coef = solve(keep)
        parts = [f"{c:.8g}" if terms[k] == "1" else f"{c:.8g} * {terms[k]}" for k, c in zip(keep, coef) if c > 0]
        return " + ".join(parts) if parts else "0"


def get_engine(name: str) -> SymbolicEngine:
    """The engine called ``name``, checked to be usable (one-line error otherwise)."""
    engines = {"monotone": MonotoneEngine, "operon": OperonEngine, "pysr": PysrEngine, "gplearn": GplearnEngine}
    if name not in engines:
        raise ChromoschedError(f"--engine: unknown symbolic-regression engine {name!r} (expected {', '.join(ENGINES)})")
    engine = engines[name]()
    engine.check()
    return engine
