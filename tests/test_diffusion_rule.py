"""The diffusion stage as the pipeline runs it: a tiny end-to-end Snakemake run of its rules on the
CPU (with the chromosched scheduler of the local profile), and the job's memory-scaled chunking:
a smaller allocation runs smaller chunks, stays inside it, and gives identical samples."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, pipeline_config, run_snakemake

from chromosched_pipeline.diffusion import polymer, tiling
from chromosched_pipeline.diffusion.checkpoint import save_checkpoint
from chromosched_pipeline.diffusion.model import Unet, UNetConfig
from chromosched_pipeline.diffusion.representation import Normalizer


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained tiny model with real normaliser statistics (the rule's plumbing, not quality)."""
    torch.manual_seed(0)
    track = polymer.site_track("fit", tiling.chain_beads(3), 1)
    maps = polymer.windows(polymer.distance_maps(polymer.sample_conformations(track, 30, 1)), tiling.tile_starts(3))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    model = Unet(UNetConfig(dim=8, dim_mults=(1, 2), attn_heads=1, attn_dim_head=8, resnet_block_groups=4))
    save_checkpoint(path, model, "pred_v", Normalizer.fit(maps.reshape(-1, 64, 64)))
    return path


def test_diffusion_rules_end_to_end(tiny_cohort, tiny_checkpoint, tmp_path):
    diffusion = {
        "enabled": True,
        "checkpoint": str(tiny_checkpoint),
        "chromosomes": ["chr22"],
        "samples": 4,
        "samples_per_job": 2,
        "max_tiles": 3,
        "steps": 3,
        "truth_cells": 20,
        "refine_iterations": 5,
        "cond_scale": 2.0,
        "rescaled_phi": 0.7,
    }
    config = pipeline_config(tiny_cohort, diffusion=diffusion)
    targets = [
        "results/report/diffusion_seams.png",
        "results/report/diffusion_contact_map.png",
        "results/report/diffusion_conformation_3d.png",
        "results/report/diffusion_distance_vs_separation.png",
    ]
    proc = run_snakemake(tmp_path, config, "--profile", str(REPO / "profiles" / "local"), "--cores", "2", *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for chrom in ("chr22",):
        out = tmp_path / "results" / "diffusion" / chrom
        samples = np.load(out / "samples.npz")
        assert samples["distance_maps"].shape == (4, 3, 64, 64)
        assert list(samples["sample_index"]) == [0, 1, 2, 3]
        assert np.load(out / "coordinates.npz")["coordinates"].shape == (4, tiling.chain_beads(3), 3)
        summary = json.loads((out / "summary.json").read_text())
        assert len(summary["seam_per_boundary"]) == 2 and -1 <= summary["hic_pearson"] <= 1
        assert len(summary["parts"]) == 2 and summary["parts"][0]["memory_model"]["b_mb_per_row"] > 0
        metrics = (out / "metrics.tsv").read_text().splitlines()
        assert metrics[0].split("\t") == ["separation", "mean_distance_sample", "mean_distance_truth", "kl"]
        assert len(metrics) == 64
        for part in (0, 1):  # the job's own outcome line: what the scheduler learns diffusion memory from
            lines = (tmp_path / "logs" / "diffusion_sample" / chrom / f"{part}.attempts.jsonl").read_text().splitlines()
            last = json.loads(lines[-1])
            assert last["kind"] == "ok" and last["need_mb"] > 100
    for target in targets:
        assert (tmp_path / target).stat().st_size > 5000
    # parts are sampled with per-(chromosome, tile, sample) seeds: part 1 is what one job of all 4 gives
    whole = subprocess.run(
        [
            sys.executable,
            "-m",
            "chromosched_pipeline.diffusion",
            "sample",
            "--checkpoint",
            str(tiny_checkpoint),
            "--chrom",
            "chr22",
            "--max-tiles",
            "3",
            "--last",
            "4",
            "--steps",
            "3",
            "--cond-scale",
            "2.0",
            "--phi",
            "0.7",
            "--refine-iterations",
            "5",
            "--mem-mb",
            "4000",
            "--out",
            str(tmp_path / "whole.npz"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert whole.returncode == 0, whole.stderr
    merged = np.load(tmp_path / "results" / "diffusion" / "chr22" / "samples.npz")["distance_maps"]
    assert np.array_equal(np.load(tmp_path / "whole.npz")["maps"], merged)


def _sample(checkpoint, out, mem_mb, outcome):
    cmd = [
        sys.executable,
        "-m",
        "chromosched_pipeline.diffusion",
        "sample",
        "--checkpoint",
        str(checkpoint),
        "--chrom",
        "chr21",
        "--tiles",
        "4",
        "--last",
        "12",
        "--steps",
        "3",
        "--cond-scale",
        "3",
        "--eta",
        "0.5",
        "--refine-iterations",
        "0",
        "--mem-mb",
        str(mem_mb),
        "--out",
        str(out),
        "--outcome",
        str(outcome),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = np.load(out)
    return data["maps"], json.loads(str(data["facts"])), json.loads(outcome.read_text().splitlines()[-1])


def test_smaller_allocation_runs_smaller_chunks_with_identical_samples(tiny_checkpoint, tmp_path):
    big_maps, big, _ = _sample(tiny_checkpoint, tmp_path / "big.npz", 8000, tmp_path / "big.jsonl")
    assert big["chunk_samples"] == 12
    model = big["memory_model"]
    rows_each = 4 * 2  # tiles x (conditional + null)
    allocation = (model["a_mb"] + model["b_mb_per_row"] * rows_each * 4) / 0.9  # room for ~4 chains
    small_maps, small, outcome = _sample(tiny_checkpoint, tmp_path / "small.npz", allocation, tmp_path / "small.jsonl")
    assert 1 <= small["chunk_samples"] < 12
    assert outcome["peak_rss_mb"] <= allocation  # measured, not predicted
    assert np.array_equal(small_maps, big_maps)


def test_allocation_below_one_chain_fails_clearly_as_oom(tiny_checkpoint, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "chromosched_pipeline.diffusion",
        "sample",
        "--checkpoint",
        str(tiny_checkpoint),
        "--chrom",
        "chr21",
        "--tiles",
        "2",
        "--last",
        "2",
        "--steps",
        "2",
        "--mem-mb",
        "50",
        "--out",
        str(tmp_path / "o.npz"),
        "--outcome",
        str(tmp_path / "o.jsonl"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("chromosched diffusion: error: one chain")
    assert json.loads((tmp_path / "o.jsonl").read_text())["kind"] == "oom"
    assert not (tmp_path / "o.npz").exists()
