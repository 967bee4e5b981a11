"""chromosched pipeline: per-chromosome Beagle imputation, polygenic risk scores and 3D-genome diffusion.

    snakemake --profile profiles/local              # run (config/config.yaml)
    snakemake --report results/report.html          # then build the report

Rules live in rules/*.smk; the Python they call lives in workflow/chromosched_pipeline/.
"""

import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# Rules run `python -m chromosched_pipeline.<module>`: make workflow/ (and the chromosched package
# in scheduler/src, for jobs in conda environments) importable here and in every job.
PIPELINE_PYTHONPATH = [
    str(Path(workflow.basedir) / "workflow"),
    str(Path(workflow.basedir) / "scheduler" / "src"),
]
sys.path[:0] = [p for p in PIPELINE_PYTHONPATH if p not in sys.path]
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        dict.fromkeys(PIPELINE_PYTHONPATH + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    )
)


configfile: "config/config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/prepare.smk"
include: "rules/impute.smk"
include: "rules/prs.smk"
include: "rules/diffusion.smk"
include: "rules/report.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        FINAL_OUTPUTS,
