# Configuration, validated against config/schema/config.schema.yaml on start, and the resource
# model every rule's mem_mb/runtime/threads come from. No rules here.
import re
import sys
from pathlib import Path

from chromosched.errors import ChromoschedError
from chromosched_pipeline import resources as res
from chromosched_pipeline.config import load_pipeline_config
from chromosched_pipeline.stale_lock import clear_stale_locks

# Resume after a kill: the main Snakemake process removes a lock that a killed run left behind
# (only when no other Snakemake works in this directory; cluster jobs run with --nolock).
if getattr(getattr(workflow, "exec_mode", None), "name", "DEFAULT") == "DEFAULT":
    clear_stale_locks(".", log=lambda msg: print(msg, file=sys.stderr))

try:
    PIPE = load_pipeline_config(
        config,
        Path(workflow.basedir) / "config" / "schema" / "config.schema.yaml",
        source=", ".join(map(str, workflow.configfiles)) or "config",
    )
except ChromoschedError as exc:
    sys.exit(f"chromosched pipeline: error: {exc}")

CHROMS = PIPE.chromosomes

res.configure(
    res.PipelineFacts(
        panel=PIPE.panel,
        genetic_map=PIPE.genetic_map,
        target_samples=PIPE.target_samples,
        window_cm=PIPE.beagle.get("window"),
        overlap_cm=PIPE.beagle.get("overlap"),
        threads=PIPE.raw["threads"],
        memory_budget_mb=PIPE.memory_budget_mb,
        overrides=PIPE.raw["resources"],
    )
)
# mem_mb comes from the chromosched prediction store when the scheduler plugin wrote one for the job
# (rule, wildcards, attempt): one number for the local budget, sbatch --mem and Beagle's -Xmx.
res.use_model(res.PredictionStoreModel())


wildcard_constraints:
    chrom="|".join(re.escape(c) for c in CHROMS),


FINAL_OUTPUTS = [
    "results/prs/prs.tsv",
    "results/prs/match_summary.tsv",
    "results/report/prs_distribution.png",
    "results/report/job_resources.tsv",
    "results/report/job_resources.png",
    "results/report/imputation_quality.png",
    "results/report/scheduler_schedule.png",
    "results/report/predicted_vs_measured.png",
] + (["results/report/imputation_accuracy.tsv"] if PIPE.raw.get("truth") else [])
