"""Command-line words for rules/diffusion.smk from the config's ``diffusion`` section (no torch
import here: the Snakefile imports this on every start)."""

from __future__ import annotations


def part_arguments(config: dict, part: int) -> str:
    """``--first/--last`` of part ``part`` of a chromosome's samples (rules/diffusion.smk)."""
    per_job, total = int(config["samples_per_job"]), int(config["samples"])
    first = part * per_job
    return f"--first {first} --last {min(total, first + per_job)}"


def cli_options(config: dict) -> str:
    """The ``sample`` command's options from the config's ``diffusion`` section."""
    words = [
        f"--steps {config['steps']}",
        f"--eta {config['eta']}",
        f"--cond-scale {config['cond_scale']}",
        f"--phi {config['rescaled_phi']}",
        f"--mode {config['mode']}",
        f"--seed {config['seed']}",
        f"--track-seed {config['track_seed']}",
        f"--device {config['device']}",
        f"--refine-iterations {config['refine_iterations']}",
    ]
    words += ["--project-final"] if config["project_final"] else []
    words += [f"--max-tiles {config['max_tiles']}"] if config.get("max_tiles") else []
    words += [f"--embeddings-dir {config['embeddings_dir']}"] if config.get("embeddings_dir") else []
    words += [f"--normalizer {config['normalizer']}"] if config.get("normalizer") else []
    return " ".join(words)
