"""A safe evaluator for closed-form formulas read from prior files.

A prior file is user content: its formula is parsed with Python's ``ast`` and only a tiny grammar
is accepted — numbers, the declared feature names, ``+ - * / **``, unary minus/plus and calls to a
whitelist of numeric functions (``log``, ``exp``, ``sqrt``, ``abs``, ``max``, ``min``, ...). Anything
else (attribute access, subscripts, lambdas, comprehensions, strings, keyword arguments, calls to
any other name) is rejected with a one-line ``ChromoschedError``. The accepted tree is compiled into
plain numpy operations; nothing from the file ever reaches ``eval``/``exec``/``sympify``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ChromoschedError

#: Longest formula accepted (characters) and deepest nesting, against parser/recursion bombs.
MAX_LENGTH = 20_000
MAX_DEPTH = 60


def _square(x):
    return np.square(x)


def _cube(x):
    return x * x * x


#: name -> (numpy implementation, allowed argument counts). Aliases cover what the symbolic
#: regression engines print (sympy's ``Abs``/``Max``/``Min``; gplearn's prefix ``add(a, b)``).
FUNCTIONS: dict[str, tuple[Callable, tuple[int, ...]]] = {
    "log": (np.log, (1,)),
    "log2": (np.log2, (1,)),
    "log10": (np.log10, (1,)),
    "log1p": (np.log1p, (1,)),
    "exp": (np.exp, (1,)),
    "sqrt": (np.sqrt, (1,)),
    "cbrt": (np.cbrt, (1,)),
    "square": (_square, (1,)),
    "cube": (_cube, (1,)),
    "abs": (np.abs, (1,)),
    "Abs": (np.abs, (1,)),
    "tanh": (np.tanh, (1,)),
    "max": (np.maximum, (2,)),
    "Max": (np.maximum, (2,)),
    "min": (np.minimum, (2,)),
    "Min": (np.minimum, (2,)),
    "pow": (np.power, (2,)),
    "add": (np.add, (2,)),
    "sub": (np.subtract, (2,)),
    "mul": (np.multiply, (2,)),
    "div": (np.divide, (2,)),
    "neg": (np.negative, (1,)),
}
#: canonical spelling used when printing
_CANONICAL = {"Abs": "abs", "Max": "max", "Min": "min"}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}

_BINOPS = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", np.divide),
    ast.Pow: ("**", np.power),
}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4}


@dataclass(frozen=True)
class _Node:
    """One node of an accepted formula: 'num', 'var', 'neg', a binary operator or 'call'."""

    kind: str
    value: float | str | None = None
    args: tuple[_Node, ...] = ()


class SafeExpression:
    """A parsed, whitelisted formula over named features, evaluated with numpy.

    >>> e = SafeExpression("25 + 3.6e-6 * ref_variants * target_samples", ["ref_variants", "target_samples"])
    >>> float(e.evaluate({"ref_variants": 1e4, "target_samples": 100}))
    28.6
    """

    def __init__(self, text: str, variables: Iterable[str], *, source: str = "formula"):
        self.variables = tuple(variables)
        self.source = source
        if not isinstance(text, str):
            raise ChromoschedError(f"{source}: the expression must be a string, not {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise ChromoschedError(f"{source}: expression is {len(text)} characters long (limit {MAX_LENGTH})")
        self.text = text.strip()
        if not self.text:
            raise ChromoschedError(f"{source}: the expression is empty")
        try:
            tree = ast.parse(self.text, mode="eval")
        except (SyntaxError, ValueError) as err:
            raise ChromoschedError(
                f"{source}: expression {self._short()!r} is not a valid formula ({err.msg if isinstance(err, SyntaxError) else err})"
            ) from None
        except RecursionError:
            raise ChromoschedError(f"{source}: expression is nested too deeply") from None
        self._root = self._convert(tree.body, 0)

    # -- parsing -------------------------------------------------------------------------------
    def _short(self) -> str:
        return self.text if len(self.text) <= 60 else self.text[:57] + "..."

    def _reject(self, what: str) -> ChromoschedError:
        return ChromoschedError(
            f"{self.source}: expression {self._short()!r} rejected: {what} not allowed "
            f"(only numbers, the features {', '.join(self.variables)}, + - * / **, and "
            f"the functions {', '.join(sorted(n for n in FUNCTIONS if n not in _CANONICAL))})"
        )

    def _convert(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise ChromoschedError(f"{self.source}: expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            # bool is an int subclass: reject True/False explicitly, as well as str/bytes/complex/None
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self._reject(f"the constant {node.value!r}")
            value = float(node.value)
            if not math.isfinite(value):
                raise self._reject(f"the non-finite constant {node.value!r}")
            return _Node("num", value)
        if isinstance(node, ast.Name):
            if node.id in self.variables:
                return _Node("var", node.id)
            raise self._reject(f"the name {node.id!r} (not a declared feature)")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self._convert(node.operand, depth + 1)
            if operand.kind == "num" and isinstance(node.op, ast.USub):
                return _Node("num", -operand.value)
            return _Node("neg", None, (operand,)) if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            symbol = _BINOPS[type(node.op)][0]
            return _Node(symbol, None, (self._convert(node.left, depth + 1), self._convert(node.right, depth + 1)))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise self._reject("calling anything but a plain function name")
            name = node.func.id
            if name not in FUNCTIONS:
                raise self._reject(f"the function {name!r}")
            if node.keywords:
                raise self._reject("keyword arguments")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise self._reject("starred arguments")
            arity = FUNCTIONS[name][1]
            if len(node.args) not in arity:
                raise ChromoschedError(
                    f"{self.source}: expression {self._short()!r}: {name}() takes "
                    f"{' or '.join(map(str, arity))} argument(s), got {len(node.args)}"
                )
            args = tuple(self._convert(a, depth + 1) for a in node.args)
            name = _CANONICAL.get(name, name)
            if name in _INFIX:
                return _Node(_INFIX[name], None, args)
            if name == "neg":
                return _Node("neg", None, args)
            if name == "pow":
                return _Node("**", None, args)
            return _Node("call", name, args)
        kind = type(node).__name__
        readable = {
            "Attribute": "attribute access",
            "Subscript": "subscripts",
            "Lambda": "lambda",
            "Compare": "comparisons",
            "BoolOp": "boolean operators",
            "IfExp": "conditional expressions",
            "ListComp": "comprehensions",
            "GeneratorExp": "comprehensions",
            "List": "lists",
            "Tuple": "tuples",
            "Dict": "dicts",
            "Set": "sets",
            "NamedExpr": "assignment",
            "JoinedStr": "f-strings",
            "Await": "await",
            "Starred": "starred expressions",
        }
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            raise self._reject(f"the operator {type(node.op).__name__}")
        raise self._reject(readable.get(kind, f"the construct {kind}"))

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, values: Mapping[str, float | np.ndarray]) -> np.ndarray:
        """Evaluate on feature values (scalars or equally long arrays); returns float64 (array or 0-d)."""
        missing = [v for v in self.variables if v not in values and self._uses(v)]
        if missing:
            raise ChromoschedError(f"{self.source}: missing value for feature(s) {', '.join(missing)}")
        env = {k: np.asarray(values[k], dtype=float) for k in self.variables if k in values}
        with np.errstate(all="ignore"):
            return np.asarray(self._eval(self._root, env), dtype=float)

    def _eval(self, node: _Node, env: Mapping[str, np.ndarray]):
        if node.kind == "num":
            return np.float64(node.value)
        if node.kind == "var":
            return env[node.value]
        if node.kind == "neg":
            return np.negative(self._eval(node.args[0], env))
        if node.kind == "call":
            func = FUNCTIONS[node.value][0]
            return func(*(self._eval(a, env) for a in node.args))
        op = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}[node.kind]
        return op(self._eval(node.args[0], env), self._eval(node.args[1], env))

    def _uses(self, name: str) -> bool:
        return name in self.used_variables()

    def used_variables(self) -> set[str]:
        """The feature names that actually occur in the formula."""
        out: set[str] = set()
        stack = [self._root]
        while stack:
            n = stack.pop()
            if n.kind == "var":
                out.add(n.value)
            stack.extend(n.args)
        return out

    def evaluate_matrix(self, X: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Evaluate on a 2-D array whose columns are ``self.variables`` in order."""
        X = np.asarray(X, dtype=float)
        return self.evaluate({name: X[:, i] for i, name in enumerate(self.variables)})

    # -- printing ------------------------------------------------------------------------------
    def to_infix(self, precision: int = 6) -> str:
        """Canonical infix text (parsable again by this class), constants to ``precision`` digits."""
        return self._print(self._root, precision)

    def _print(self, node: _Node, precision: int) -> str:
        if node.kind == "num":
            text = f"{node.value:.{precision}g}"
            return f"({text})" if node.value < 0 else text
        if node.kind == "var":
            return str(node.value)
        if node.kind == "call":
            return f"{node.value}({', '.join(self._print(a, precision) for a in node.args)})"
        if node.kind == "neg":
            inner = self._print(node.args[0], precision)
            return f"-{self._wrap(node.args[0], inner, _PRECEDENCE['neg'], right=False)}"
        prec = _PRECEDENCE[node.kind]
        left = self._print(node.args[0], precision)
        right = self._print(node.args[1], precision)
        left = self._wrap(node.args[0], left, prec, right=node.kind == "**")
        right = self._wrap(node.args[1], right, prec, right=node.kind != "**")
        sep = "**" if node.kind == "**" else f" {node.kind} "
        return f"{left}{sep}{right}"

    @staticmethod
    def _wrap(child: _Node, text: str, parent_prec: int, right: bool) -> str:
        child_prec = _PRECEDENCE.get(child.kind, 10)
        if child.kind == "num" and text.startswith("("):
            return text
        if child_prec < parent_prec or (right and child_prec == parent_prec):
            return f"({text})"
        return text

    def to_sympy(self):
        """The formula as a sympy expression, built from the checked tree (never from text)."""
        import sympy

        symbols = {v: sympy.Symbol(v, nonnegative=True) for v in self.variables}
        sym_funcs = {
            "log": sympy.log,
            "exp": sympy.exp,
            "sqrt": sympy.sqrt,
            "abs": sympy.Abs,
            "max": sympy.Max,
            "min": sympy.Min,
            "tanh": sympy.tanh,
            "cbrt": sympy.cbrt,
            "log2": lambda x: sympy.log(x, 2),
            "log10": lambda x: sympy.log(x, 10),
            "log1p": lambda x: sympy.log(1 + x),
            "square": lambda x: x**2,
            "cube": lambda x: x**3,
        }

        def build(n: _Node):
            if n.kind == "num":
                return sympy.Float(n.value)
            if n.kind == "var":
                return symbols[n.value]
            if n.kind == "neg":
                return -build(n.args[0])
            if n.kind == "call":
                return sym_funcs[n.value](*(build(a) for a in n.args))
            a, b = (build(x) for x in n.args)
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "**": a**b}[n.kind]

        return build(self._root)

    def __repr__(self) -> str:
        return f"SafeExpression({self.text!r})"


def simplified(expression: SafeExpression, check: np.ndarray | None = None, digits: int = 6) -> SafeExpression:
    """A shorter, equivalent form of ``expression`` (sympy collects terms, constants rounded).

    The sympy text is re-parsed by ``SafeExpression`` (it is our own output, and is checked again).
    With ``check`` (rows of feature values) the shortest rounding (``digits``, then 2 and 4 more) that
    stays within 1e-5 relative of the original on every row is kept; if none does, the original.
    """
    for d in (digits, digits + 2, digits + 4):
        candidate = _rounded_form(expression, d)
        if candidate is None:
            return expression
        if check is None or _agrees(expression, candidate, check):
            return candidate
    return expression


def _agrees(a: SafeExpression, b: SafeExpression, X: np.ndarray, tol: float = 1e-5) -> bool:
    va = a.evaluate_matrix(X)
    vb = b.evaluate_matrix(X)
    fa, fb = np.isfinite(va), np.isfinite(vb)
    if not np.array_equal(fa, fb):
        return False
    if not fa.any():
        return True
    return bool(np.max(np.abs(va[fa] - vb[fa]) / np.maximum(np.abs(va[fa]), 1e-12)) <= tol)


def _rounded_form(expression: SafeExpression, digits: int) -> SafeExpression | None:
    import sympy

    try:
        expr = expression.to_sympy()
        expr = sympy.expand(expr) if expr.is_polynomial() else expr

        # round constants; those that round to 0 or +-1 become exact so sympy drops them
        def rounded(f):
            v = float(f"{float(f):.{digits}g}")
            return sympy.Integer(int(v)) if v in (0.0, 1.0, -1.0) else sympy.Float(v)

        expr = expr.xreplace({f: rounded(f) for f in expr.atoms(sympy.Float)})
        text = sympy.sstr(expr, full_prec=False)
        candidate = SafeExpression(text, expression.variables, source=expression.source)
        return SafeExpression(candidate.to_infix(digits), expression.variables, source=expression.source)
    except (ChromoschedError, TypeError, ValueError, AttributeError, RecursionError):
        return None
