"""The plugin passes the scheduler interface's own test suite (static and dynamic mode)."""

from __future__ import annotations

from snakemake_interface_scheduler_plugins.tests import TestSchedulerBase

from snakemake_scheduler_plugin_chromosched import Scheduler, SchedulerSettings


def _scratch() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="chromosched-interface-")


class TestDynamicMode(TestSchedulerBase):
    __test__ = True

    def get_scheduler_cls(self):
        return Scheduler

    def get_scheduler_settings(self):
        return SchedulerSettings(
            mode="dynamic",
            store=f"{_scratch()}/store",
            model=f"{_scratch()}/model.json",
            events=f"{_scratch()}/events.jsonl",
        )


class TestStaticMode(TestSchedulerBase):
    __test__ = True

    def get_scheduler_cls(self):
        return Scheduler

    def get_scheduler_settings(self):
        return SchedulerSettings(
            mode="static",
            store=f"{_scratch()}/store",
            model=f"{_scratch()}/model.json",
            events=f"{_scratch()}/events.jsonl",
        )


def test_idle_in_a_cluster_jobs_own_snakemake_process():
    """Each cluster job starts Snakemake again with --scheduler chromosched: do nothing there."""
    import logging
    from collections import defaultdict
    from types import SimpleNamespace

    from snakemake_interface_executor_plugins.settings import ExecMode
    from snakemake_interface_scheduler_plugins.tests import DummyDAG

    for mode, expected_idle in ((ExecMode.REMOTE, True), (ExecMode.SUBPROCESS, True), (ExecMode.DEFAULT, False)):
        dag = DummyDAG()
        dag.workflow = SimpleNamespace(exec_mode=mode)
        scheduler = Scheduler(
            dag,
            SchedulerSettings(store=f"{_scratch()}/store", events=f"{_scratch()}/events.jsonl"),
            logging.getLogger("t"),
        )
        selected = scheduler.select_jobs([dag._jobs[0]], dag._jobs, {"mem_mb": 4096, "cpu": 2}, defaultdict(int))
        assert (selected is None) == expected_idle
