"""Shared test setup: the pipeline's Python package lives in workflow/ and is put on the path here
(the Snakefile does the same for the rules)."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = REPO / "workflow"
if str(WORKFLOW_DIR) not in sys.path:
    sys.path.insert(0, str(WORKFLOW_DIR))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(WORKFLOW_DIR), os.environ.get("PYTHONPATH", "")) if p)


# --- pipeline test data (shared across test modules; generated once per session) ---------------
import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

# Two small chromosomes: GRCh37 length / 200 (chr21 ~241 kb, chr22 ~257 kb), 300 reference and 50
# target samples, a denser array than the demo so r^2 is stable at this size.
TINY_COHORT = dict(
    scale=200.0,
    chromosomes=["chr21", "chr22"],
    n_ref=300,
    n_target=50,
    array_density=0.4,
    missing_rate=0.01,
    seed=7,
    target_contig_style="plain",
)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """A simulated cohort (chr21, chr22); the target VCF names contigs '21', '22' while panel and
    map say 'chr21', 'chr22', so every pipeline run also exercises contig harmonisation."""
    from chromosched_pipeline.demo_data.simulate import simulate_cohort

    return simulate_cohort(tmp_path_factory.mktemp("tiny_cohort"), **TINY_COHORT)


def pipeline_config(cohort, **changes) -> dict:
    """A pipeline config (as a dict) for a simulated cohort."""
    out = cohort.out_dir
    config = {
        "target": {"vcf": str(cohort.target)},
        "reference": {"panel": str(out / "panel" / "{chrom}.vcf.gz"), "map": str(out / "map" / "{chrom}.map")},
        "chromosomes": ["chr21", "chr22"],
        "prs": {"scoring_file": str(cohort.scores)},
        "truth": str(out / "truth" / "{chrom}.vcf.gz"),
        "report": {"sample_groups": str(cohort.samples)},
        "memory_budget_mb": 4000,
    }
    config.update(changes)
    return config


def run_snakemake(workdir, config: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in ``workdir`` with ``config`` (written to workdir/config.yaml)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    cmd = [
        snakemake,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]
    # Rules call `python`: make it this interpreter's environment whatever PATH the tests got.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)


@pytest.fixture(scope="session")
def pipeline_run(tiny_cohort, tmp_path_factory):
    """One real end-to-end run of the pipeline on the tiny cohort with the local profile.

    The first impute attempt is given too little memory (config resources.impute.mem_mb=100,
    i.e. a 4 MB Java heap), so every chromosome runs out of heap once and is retried by
    Snakemake (profile retries) with twice the mem_mb.
    """
    workdir = tmp_path_factory.mktemp("pipeline_run")
    config = pipeline_config(tiny_cohort, resources={"impute": {"mem_mb": 100}})
    # Snakemake's own scheduler: this run tests the heuristic's retry path (chromosched would
    # replace the too-low declared memory by its prediction; tests/test_plugin_pipeline.py).
    proc = run_snakemake(
        workdir, config, "--profile", str(REPO / "profiles" / "local"), "--cores", "2", "--scheduler", "greedy"
    )
    return workdir, proc
