"""The prior's formula evaluator accepts arithmetic over declared features and rejects everything else."""

import numpy as np
import pytest

from chromosched.errors import ChromoschedError
from chromosched.prior.expression import SafeExpression, simplified

NAMES = ["ref_variants", "target_samples", "threads"]


def test_evaluates_arithmetic_and_whitelisted_functions():
    e = SafeExpression("25 + 3.6e-6 * ref_variants * target_samples + max(threads, 2) ** 2 - -log(exp(1))", NAMES)
    got = e.evaluate({"ref_variants": 1e4, "target_samples": 100.0, "threads": 1})
    assert float(got) == pytest.approx(25 + 3.6 + 4 + 1)
    # vectorised over arrays, and the printer round-trips
    X = np.array([[1e4, 100, 1], [2e4, 50, 3]])
    again = SafeExpression(e.to_infix(), NAMES)
    assert np.allclose(again.evaluate_matrix(X), e.evaluate_matrix(X))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("__import__('os').system('x')", "plain function name"),
        ("__import__('os')", "'__import__'"),
        ("ref_variants.__class__", "attribute access"),
        ("(lambda: 1)()", "plain function name"),
        ("lambda: 1", "lambda"),
        ("open('/etc/passwd')", "'open'"),
        ("eval('1')", "'eval'"),
        ("ref_variants[0]", "subscripts"),
        ("os", "not a declared feature"),
        ("log(x=1)", "keyword arguments"),
        ("[x for x in ()]", "comprehensions"),
        ("'a' * 10", "constant 'a'"),
        ("True + 1", "constant True"),
        ("ref_variants // 2", "FloorDiv"),
        ("ref_variants if threads else 1", "conditional"),
        ("threads < 2", "comparisons"),
        ("(y := 1)", "assignment"),
        ("1e999", "non-finite"),
        ("import os", "not a valid formula"),
        ("", "empty"),
    ],
)
def test_rejects_anything_else_with_a_one_line_error(text, fragment):
    with pytest.raises(ChromoschedError) as err:
        SafeExpression(text, NAMES, source="beagle.json")
    message = str(err.value)
    assert fragment in message
    assert message.startswith("beagle.json")
    assert "\n" not in message


def test_wrong_arity_and_deep_nesting_are_rejected():
    with pytest.raises(ChromoschedError, match=r"max\(\) takes 2"):
        SafeExpression("max(threads)", NAMES)
    with pytest.raises(ChromoschedError, match="nested"):
        SafeExpression("(" * 200 + "threads" + ")" * 200 + "+" + "-" * 200 + "1", NAMES)


def test_missing_feature_value_is_reported():
    e = SafeExpression("threads * 2", NAMES)
    with pytest.raises(ChromoschedError, match="threads"):
        e.evaluate({"ref_variants": 1})


def test_simplification_keeps_values_and_shortens():
    e = SafeExpression(
        "((-0.0) + (1.0 * log(((25.0 - (((-13.0) * target_samples) * (2.0 * ref_variants))) - (0.0 * threads)))))",
        NAMES,
    )
    X = np.random.default_rng(0).uniform(1, 100, size=(50, 3))
    s = simplified(e, check=X)
    assert len(s.text) < len(e.text)
    assert np.allclose(s.evaluate_matrix(X), e.evaluate_matrix(X), rtol=1e-6)
