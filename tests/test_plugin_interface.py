"""The plugin passes the scheduler interface's own test suite (static and dynamic mode)."""

from __future__ import annotations

from snakemake_interface_scheduler_plugins.tests import TestSchedulerBase

from snakemake_scheduler_plugin_chromosched import Scheduler, SchedulerSettings


class TestDynamicMode(TestSchedulerBase):
    __test__ = True

    def get_scheduler_cls(self):
        return Scheduler

    def get_scheduler_settings(self):
        return SchedulerSettings(mode="dynamic", store=".pytest-chromosched/store", model=".pytest-chromosched/model.json")


class TestStaticMode(TestSchedulerBase):
    __test__ = True

    def get_scheduler_cls(self):
        return Scheduler

    def get_scheduler_settings(self):
        return SchedulerSettings(mode="static", store=".pytest-chromosched/store", model=".pytest-chromosched/model.json")
