"""Snakemake scheduler plugin ``chromosched`` (``snakemake --scheduler chromosched``).

The thin adapter between Snakemake's job objects and the algorithms in :mod:`chromosched`.
Until the plugin issue lands it delegates every selection to Snakemake's greedy fallback by
returning ``None`` (documented interface behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

from snakemake_interface_scheduler_plugins.base import SchedulerBase
from snakemake_interface_scheduler_plugins.settings import SchedulerSettingsBase


@dataclass
class SchedulerSettings(SchedulerSettingsBase):
    pass


class Scheduler(SchedulerBase):
    def select_jobs(self, selectable_jobs, remaining_jobs, available_resources, input_sizes):
        return None
