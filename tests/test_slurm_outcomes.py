"""Recognising a Slurm OOM kill from sacct text and job logs (texts as Slurm 22.05 printed them on
the test cluster; tests/test_slurm_cluster.py checks the same on live jobs)."""

from __future__ import annotations

from chromosched.runtime import slurm_outcomes as so

SACCT = """\
1|OUT_OF_MEMORY|0:125|200M
1.batch|OUT_OF_MEMORY|0:125|
2|COMPLETED|0:0|100M
2.batch|COMPLETED|0:0|
3|FAILED|1:0|1G
3.batch|FAILED|1:0|
4|FAILED|1:0|300M
4.batch|OUT_OF_MEMORY|0:125|
5|RUNNING|0:0|300M
6|CANCELLED by 0|0:0|512Mn
"""
OOM_LOG = (
    "host: localhost\nBuilding DAG of jobs...\nKilled\n"
    "slurmstepd-localhost: error: Detected 1 oom-kill event(s) in StepId=1.batch. Some of your processes may "
    "have been killed by the cgroup out-of-memory handler.\n"
)


def test_parse_sacct_lines_and_memory():
    lines = so.parse_sacct("JobID|State|ExitCode|ReqMem\n" + SACCT)
    assert lines[0] == so.SacctLine("1", None, "OUT_OF_MEMORY", "0:125", 200)
    assert lines[1].step == "batch" and lines[1].req_mem_mb is None
    assert [line.state for line in lines if line.job_id == "6"] == ["CANCELLED"]
    assert so.parse_mem_mb("1.5G") == 1536 and so.parse_mem_mb("512Mn") == 512 and so.parse_mem_mb("") is None


def test_oom_at_job_or_step_level_and_other_endings():
    assert so.sacct_says_oom(SACCT, "1") is True
    assert so.sacct_says_oom(SACCT, "4") is True  # the job says FAILED, its step OUT_OF_MEMORY
    assert so.sacct_says_oom(SACCT, "3") is False and so.sacct_says_oom(SACCT, "2") is False
    assert so.sacct_says_oom(SACCT, "5") is None  # still running
    assert so.sacct_says_oom(SACCT, "99") is None


def test_log_lines():
    assert so.log_says_oom(OOM_LOG)
    assert so.log_says_oom("slurmstepd: error: Exceeded job memory limit at some point.")
    assert not so.log_says_oom("Error in rule work:\n    exit status 1\nMemoryError in my script")


def test_failure_was_oom_reads_the_latest_log_and_sacct(tmp_path):
    folder = tmp_path / "rule_impute" / "chr21"
    folder.mkdir(parents=True)
    (folder / "9.log").write_text("first attempt\n" + OOM_LOG)
    (folder / "12.log").write_text("Error in rule impute\n")
    asked = []

    def sacct(ids):
        asked.append(list(ids))
        return "12|FAILED|1:0|800M\n12.batch|OUT_OF_MEMORY|0:125|\n"

    verdict = so.failure_was_oom(tmp_path, "impute", ["chr21"], sacct=sacct)
    assert asked == [["12"]]  # job 12 (numeric order, not text order) is the attempt that just failed
    assert verdict == so.SlurmVerdict("12", True, "sacct OUT_OF_MEMORY")
    # Without accounting (sacct fails) the log decides.
    assert so.failure_was_oom(tmp_path, "impute", ["chr21"], sacct=lambda ids: None).oom is None
    (folder / "12.log").write_text(OOM_LOG)
    assert so.failure_was_oom(tmp_path, "impute", ["chr21"], sacct=lambda ids: None).oom is True
    # A plain failure, and a job that never ran through Slurm.
    plain = so.failure_was_oom(tmp_path, "impute", ["chr22"], sacct=lambda ids: "")
    assert plain is None
    (tmp_path / "rule_impute" / "chr22").mkdir()
    (tmp_path / "rule_impute" / "chr22" / "13.log").write_text("exit 1\n")
    assert so.failure_was_oom(tmp_path, "impute", ["chr22"], sacct=lambda ids: "13|FAILED|1:0|800M\n").oom is False


def test_wildcards_folder_matches_the_executor():
    assert so.wildcards_folder(["chr1", "a/b"]) == "chr1_a_b"
    assert so.job_logs("/nonexistent", "x", []) == []


def test_cluster_job_overhead_is_in_mem_but_not_in_what_is_learned(tmp_path):
    """Under a cluster executor each job's --mem also holds the job's own Snakemake: the stored
    mem_mb is prediction + overhead, and a failure is censored at the tool's part only."""
    from chromosched.runtime.job_record import JobRecord
    from chromosched.runtime.prediction_store import PredictionStore
    from chromosched.runtime.session import SchedulingSession, SessionSettings

    def session(overhead):
        s = SchedulingSession(
            SessionSettings(
                store=str(tmp_path / f"store{overhead}"),
                model=str(tmp_path / f"m{overhead}.json"),
                events=None,
                job_overhead_mb=overhead,
                cold_start="sequential",
            )
        )  # declared mem_mb as the first allocation
        s.begin({"mem_mb": 4000, "_cores": 2, "_total_known": 1})
        return s

    job = JobRecord(
        uid="work|chrom=chr21",
        rule="work",
        wildcards={"chrom": "chr21"},
        declared_mem_mb=500,
        resources={"mem_mb": 500, "_cores": 1},
        chrom="chr21",
    )
    plain, cluster = session(0), session(250)
    (first,), (clustered,) = (
        plain.select([job], {"mem_mb": 4000, "_cores": 2}),
        cluster.select([job], {"mem_mb": 4000, "_cores": 2}),
    )
    assert clustered.mem_mb == first.mem_mb + 250 and clustered.overhead_mb == 250
    assert PredictionStore(str(tmp_path / "store250")).get("work", {"chrom": "chr21"}, 1).mem_mb == clustered.mem_mb
    # A kill: both retries escalate from the tool's part, so they differ by the overhead alone.
    retry = JobRecord(**{**job.__dict__, "attempt": 2})
    plain.failed(job.uid, True)
    cluster.failed(job.uid, True)
    (again,), (clustered_again,) = (
        plain.select([retry], {"mem_mb": 4000, "_cores": 2}),
        cluster.select([retry], {"mem_mb": 4000, "_cores": 2}),
    )
    assert again.mem_mb >= 1.3 * first.mem_mb and clustered_again.mem_mb == again.mem_mb + 250
    # The overhead never pushes a lone job out of the free memory.
    tight = session(250)
    (fitted,) = tight.select([job], {"mem_mb": first.mem_mb + 100, "_cores": 2})
    assert fitted.mem_mb <= first.mem_mb + 100
