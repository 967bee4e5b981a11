"""One real run behind the plugin adapter: the scheduling session, static admission, the
prediction store, job records and measurements, live memory, Slurm outcomes, the run's inputs and
events, report figures and the dry-run planner."""
