import pytest

from chromosched.dynamic.critical_path import RuleRuntimes, upward_ranks
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
    for value, size in ((10.0, 100.0), (20.0, 200.0)):
        runtimes.observe("impute", value, size)
    runtimes.observe("prep", 2.0)
    runtimes.save(tmp_path / "runtimes.json")
    again = RuleRuntimes.load(tmp_path / "runtimes.json")
    assert again.means() == pytest.approx({"impute": 15.0, "prep": 2.0})
    assert again.predict("impute", 250.0) == pytest.approx(25.0)  # 0.1 s per unit of size
    assert again.predict("prep", 250.0) == pytest.approx(2.0)  # no sizes seen: the mean
    assert again.predict("other") is None
    again.observe("impute", 45.0)
    assert again.means()["impute"] == pytest.approx(25.0)  # counts carried, not just the mean
    assert RuleRuntimes.load(tmp_path / "missing.json").means() == {}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ChromoschedError, match="bad.json"):
        RuleRuntimes.load(tmp_path / "bad.json")


def test_session_starts_the_long_chain_first(tmp_path):
    from chromosched.runtime.job_measurements import Measurement
    from chromosched.runtime.job_record import JobRecord
    from chromosched.runtime.session import SchedulingSession, SessionSettings

    def record(rule, chrom):
        return JobRecord(
            uid=f"{rule}[{chrom}]",
            rule=rule,
            wildcards={"chrom": chrom},
            declared_mem_mb=100,
            resources={"mem_mb": 100, "_cores": 1},
            storable=False,
        )

    rule_of, deps, chrom_of = {}, {}, {}
    chroms = ("chr1", "chr15", "chr20")
    for c in chroms:
        rule_of[f"prepare_target[{c}]"] = "prepare_target"
        rule_of[f"run_impute[{c}]"] = "run_impute"
        deps[f"run_impute[{c}]"] = [f"prepare_target[{c}]"]
        chrom_of[f"prepare_target[{c}]"] = chrom_of[f"run_impute[{c}]"] = c
    # A previous run learned: imputation takes 0.2 s per Mbp, target preparation 0.02 s per Mbp.
    previous = RuleRuntimes()
    previous.observe("run_impute", 0.2 * 249.25, 249.25)
    previous.observe("prepare_target", 0.02 * 249.25, 249.25)
    chosen = {}
    for on in (False, True):
        settings = SessionSettings(
            store=str(tmp_path / f"s{on}"), model=str(tmp_path / f"m{on}.json"), events=None, critical_path=on
        )
        previous.save(str(settings.model) + ".runtimes.json")
        session = SchedulingSession(settings)
        session.begin({"mem_mb": 100, "_cores": 4, "_total_known": 1})
        session.set_dag(rule_of, deps, chrom_of)
        first = session.select([record("prepare_target", "chr1")], {"mem_mb": 100, "_cores": 4})
        session.finished(first[0].record.uid, Measurement(90.0, 5.0, "max_rss"))
        # prepare_target chr1 is done: its impute is ready next to the other two prepare_targets;
        # memory fits one job of the three, all with the same 100 MB.
        ready = [record("run_impute", "chr1")] + [record("prepare_target", c) for c in chroms[1:]]
        chosen[on] = [d.record.uid for d in session.select(ready, {"mem_mb": 100, "_cores": 4})]
    assert chosen[False] == ["prepare_target[chr15]"]  # uid order breaks the tie
    assert chosen[True] == ["run_impute[chr1]"]  # the longest remaining chain starts first
    assert RuleRuntimes.load(tmp_path / "mTrue.json.runtimes.json").means()["prepare_target"] > 0
