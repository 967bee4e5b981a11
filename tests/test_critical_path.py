import pytest

from chromosched.critical_path import RuleRuntimes, upward_ranks
from chromosched.errors import ChromoschedError


def pipeline(chroms):
    """prepare_target -> impute -> score per chromosome, then one report needing every score."""
    rule_of, deps = {}, {}
    for c in chroms:
        rule_of[f"prep[{c}]"] = "prepare_target"
        rule_of[f"impute[{c}]"] = "impute"
        rule_of[f"score[{c}]"] = "score"
        deps[f"impute[{c}]"] = [f"prep[{c}]"]
        deps[f"score[{c}]"] = [f"impute[{c}]"]
    rule_of["report"] = "report"
    deps["report"] = [f"score[{c}]" for c in chroms]
    return rule_of, deps


def test_upward_rank_is_the_longest_remaining_chain():
    rule_of, deps = pipeline(["chr1", "chr2"])
    ranks = upward_ranks(rule_of, deps, {"prepare_target": 2.0, "impute": 30.0, "score": 1.0, "report": 0.5})
    assert ranks["report"] == pytest.approx(0.5)
    assert ranks["score[chr1]"] == pytest.approx(1.5)
    assert ranks["impute[chr1]"] == pytest.approx(31.5)
    assert ranks["prep[chr2]"] == pytest.approx(33.5)
    # A ready impute (its prep done) outranks every prep that is not on a longer chain.
    assert ranks["impute[chr1]"] > 30 and ranks["prep[chr1]"] > ranks["impute[chr1]"]


def test_done_jobs_are_ignored_and_cycles_are_errors():
    ranks = upward_ranks({"b": "r"}, {"b": ["a"]}, {}, default_runtime=3.0)  # a is done
    assert ranks == {"b": 3.0}
    with pytest.raises(ChromoschedError, match="cycle"):
        upward_ranks({"a": "r", "b": "r"}, {"a": ["b"], "b": ["a"]}, {})


def test_deep_chain_does_not_recurse():
    n = 20_000
    rule_of = {f"j{i}": "r" for i in range(n)}
    deps = {f"j{i}": [f"j{i - 1}"] for i in range(1, n)}
    assert upward_ranks(rule_of, deps, {"r": 1.0})["j0"] == pytest.approx(n)


def test_rule_runtimes_are_carried_across_runs(tmp_path):
    runtimes = RuleRuntimes()
    for value in (10.0, 20.0):
        runtimes.observe("impute", value)
    runtimes.observe("prep", 2.0)
    runtimes.save(tmp_path / "runtimes.json")
    again = RuleRuntimes.load(tmp_path / "runtimes.json")
    assert again.means() == pytest.approx({"impute": 15.0, "prep": 2.0})
    again.observe("impute", 45.0)
    assert again.means()["impute"] == pytest.approx(25.0)  # counts carried, not just the mean
    assert RuleRuntimes.load(tmp_path / "missing.json").means() == {}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ChromoschedError, match="bad.json"):
        RuleRuntimes.load(tmp_path / "bad.json")
