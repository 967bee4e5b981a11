"""Diffusion stage benchmark, one run, ratios measured side by side (docs/diffusion.md).

1. Batched vs per-sample loop: the same chains (tiles x samples, same seeds) sampled by one
   batched DDIM per step against a Python loop that samples one row at a time.
2. Seam-coherent vs independent tiles: seam discrepancy (mean |A - B| over the 66 pairs of each
   12x12 overlap), Hi-C Pearson (contact maps by ChromoGen's formula, upper triangle offset 1) and
   distance error (mean relative error of the mean distance by separation) against polymer ground
   truth on a held-out chromosome. Synced mode does NOT project the final step.
3. DDIM sweep: steps 10 .. 250, time and the same metrics.
4. Memory-scaled chunking: the sampling job (a subprocess, so its peak is its own) run unchunked,
   then with an allocation of half that measured peak; its measured peak and whether the samples
   are bitwise identical.

    python benchmarks/diffusion_bench.py [--checkpoint config/diffusion/small.pt] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chromosched_pipeline.diffusion import metrics, tiling  # noqa: E402
from chromosched_pipeline.diffusion.checkpoint import load_checkpoint  # noqa: E402
from chromosched_pipeline.diffusion.job import pick_device, region_embeddings, truth_windows  # noqa: E402
from chromosched_pipeline.diffusion.sampler import ddim_sample, row_generators  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batched_vs_loop(diffusion, norm, emb, chrom, samples, loop_samples, steps, cond_scale, device):
    """Samples (tiles) per second: one batched DDIM over all rows against a loop that samples one
    row per call (same model, steps and guidance; its forwards run exactly one sample, without the
    batched path's even-row padding). Both are warmed up first (kernel selection, allocator)."""
    n_tiles = emb.shape[0]

    def loop(sample_ids, steps):
        out = []
        for s in sample_ids:  # one row (one tile of one sample) per sampling call
            for tile in range(n_tiles):
                gens = row_generators(chrom, [tile], [s], 1)
                out.append(ddim_sample(diffusion, emb[tile : tile + 1], gens, steps=steps, cond_scale=cond_scale))
        return out

    def batched(sample_ids, steps):
        return tiling.sample_chains(
            diffusion, norm, emb, chrom, sample_ids, seed=1, steps=steps, cond_scale=cond_scale, mode="independent"
        )

    batched(range(samples), 1)
    _sync(device)
    t0 = time.perf_counter()
    batched(range(samples), steps)
    _sync(device)
    batched_rate = samples * n_tiles / (time.perf_counter() - t0)
    multiple, diffusion.row_multiple = diffusion.row_multiple, 1
    try:
        loop(range(1), 1)
        _sync(device)
        t0 = time.perf_counter()
        loop(range(loop_samples), steps)
        _sync(device)
        loop_rate = loop_samples * n_tiles / (time.perf_counter() - t0)
    finally:
        diffusion.row_multiple = multiple
    return batched_rate / loop_rate, batched_rate, loop_rate


def forward_costs(diffusion, emb, rows, repeats=5):
    """Why the ratio is what it is: CPU time of one U-Net forward per row at 1 row and at ``rows``
    rows (best of ``repeats``, thread CPU time so other processes' load does not count), and the
    FLOPs per row (torch's FLOP counter) -> the arithmetic rate each reaches."""
    from torch.utils.flop_counter import FlopCounterMode

    model = diffusion.model
    n_emb = emb.shape[0]
    times = torch.full((n_emb,), 500)
    costs = {}
    with torch.no_grad():
        for n in (1, rows):
            x, cond_rows = torch.randn(n, 2, 32, 32), torch.arange(n) % n_emb
            model(x, times, emb, None, cond_rows)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.thread_time()
                model(x, times, emb, None, cond_rows)
                best = min(best, time.thread_time() - t0)
            costs[n] = best / n
        with FlopCounterMode(display=False) as counter:
            model(torch.randn(rows, 2, 32, 32), times, emb, None, torch.arange(rows) % n_emb)
    flops = counter.get_total_flops() / rows
    return {
        "flop_per_row": flops,
        "one_row_ms": 1e3 * costs[1],
        "batched_row_ms": 1e3 * costs[rows],
        "one_row_gflops": flops / costs[1] / 1e9,
        "batched_gflops": flops / costs[rows] / 1e9,
    }


def pipeline_truth_seed(config_path) -> int:
    """``diffusion.truth_seed`` as the pipeline reads it: the config file, schema defaults filled."""
    from chromosched_pipeline.config import load_config_file, validate_config

    config = validate_config(
        load_config_file(config_path), REPO / "config" / "schema" / "config.schema.yaml", str(config_path)
    )
    return int(config["diffusion"]["truth_seed"])


def sample_peak(checkpoint, out, mem_mb, args, threads):
    with tempfile.TemporaryDirectory() as tmp:
        outcome = Path(tmp) / "o.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "chromosched_pipeline.diffusion",
            "sample",
            "--checkpoint",
            str(checkpoint),
            "--chrom",
            "chrBench",
            "--tiles",
            str(args.memory_tiles),
            "--last",
            str(args.memory_samples),
            "--steps",
            "2",
            "--cond-scale",
            str(args.memory_cond_scale),
            "--refine-iterations",
            "0",
            "--mem-mb",
            str(mem_mb),
            "--threads",
            str(threads),
            "--out",
            str(out),
            "--outcome",
            str(outcome),
            "--device",
            args.device,
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO / "workflow"))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(f"diffusion_bench: sampling job failed: {proc.stderr.strip()}")
        line = json.loads(outcome.read_text().splitlines()[-1])
    data = np.load(out)
    facts = json.loads(str(data["facts"]))
    peak = facts.get("gpu_peak_mb", line["peak_rss_mb"])
    return data["maps"], peak, facts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(REPO / "config" / "diffusion" / "small.pt"))
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chrom", default="chrHeldOut")
    p.add_argument("--track-seed", type=int, default=2026)
    p.add_argument("--tiles", type=int, default=4)
    p.add_argument("--batch-samples", type=int, default=16)
    p.add_argument("--loop-samples", type=int, default=2)
    p.add_argument("--batch-steps", type=int, default=10)
    p.add_argument("--seam-samples", type=int, default=16)
    p.add_argument("--seam-steps", type=int, default=50)
    p.add_argument("--truth-cells", type=int, default=200)
    p.add_argument(
        "--config",
        default=str(REPO / "config" / "config.yaml"),
        help="pipeline config whose diffusion.truth_seed seeds the ground truth",
    )
    p.add_argument("--truth-seed", type=int, default=None, help="overrides the config's diffusion.truth_seed")
    p.add_argument("--sweep", type=int, nargs="+", default=[10, 25, 50, 100, 250])
    p.add_argument("--sweep-samples", type=int, default=4)
    p.add_argument("--sweep-tiles", type=int, default=2)
    p.add_argument("--cond-scale", type=float, default=1.0)
    p.add_argument("--memory-samples", type=int, default=64)
    p.add_argument("--memory-tiles", type=int, default=4)
    p.add_argument("--memory-cond-scale", type=float, default=2.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    diffusion, norm, _ = load_checkpoint(args.checkpoint, device)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    shape = diffusion.model.config.embedding_shape
    emb = region_embeddings(args.chrom, args.tiles, shape, args.track_seed)

    speedup, batched_rate, loop_rate = batched_vs_loop(
        diffusion,
        norm,
        emb,
        args.chrom,
        args.batch_samples,
        args.loop_samples,
        args.batch_steps,
        args.cond_scale,
        device,
    )
    log(f"batched {batched_rate:.2f} tiles/s vs per-sample loop {loop_rate:.2f} tiles/s: {speedup:.1f}x")
    if device.type == "cpu" and args.threads == 1:
        c = forward_costs(diffusion, emb, args.batch_samples * args.tiles)
        log(
            f"U-Net forward, CPU time per row: {c['one_row_ms']:.2f} ms alone vs {c['batched_row_ms']:.2f} ms in a batch "
            f"of {args.batch_samples * args.tiles} ({c['one_row_ms'] / c['batched_row_ms']:.1f}x); "
            f"{c['flop_per_row'] / 1e9:.3f} GFLOP per row: {c['one_row_gflops']:.0f} vs {c['batched_gflops']:.0f} GFLOP/s"
        )

    truth_seed = pipeline_truth_seed(args.config) if args.truth_seed is None else args.truth_seed
    truth = truth_windows(args.chrom, args.tiles, args.track_seed, truth_seed, args.truth_cells)
    seam = {}
    for mode in ("independent", "synced"):
        t0 = time.perf_counter()
        maps = tiling.sample_chains(
            diffusion,
            norm,
            emb,
            args.chrom,
            range(args.seam_samples),
            seed=1,
            steps=args.seam_steps,
            cond_scale=args.cond_scale,
            mode=mode,
            project_final=False,
        )
        result = metrics.compare(maps, truth)
        seam[mode] = {
            "seam": float(tiling.seam_discrepancy(maps).mean()),
            "hic": result["hic_pearson"],
            "dist": result["distance_error"],
            "curve": result["mean_distance_sample"],
        }
        log(
            f"{mode}: seam {seam[mode]['seam']:.4f}, Hi-C Pearson {result['hic_pearson']:.4f}, distance error "
            f"{result['distance_error']:.4f} ({time.perf_counter() - t0:.0f} s)"
        )
    curve_diff = float(np.max(np.abs(seam["synced"]["curve"] / seam["independent"]["curve"] - 1)))
    log(
        f"seam reduction {seam['independent']['seam'] / seam['synced']['seam']:.1f}x; mean distance by separation: "
        f"synced within {100 * curve_diff:.2f} % of independent at every separation"
    )

    sweep_emb = emb[: args.sweep_tiles]
    sweep_truth = truth[:, : args.sweep_tiles]
    sweep = []
    for steps in args.sweep:
        _sync(device)
        t0 = time.perf_counter()
        maps = tiling.sample_chains(
            diffusion,
            norm,
            sweep_emb,
            args.chrom,
            range(args.sweep_samples),
            seed=1,
            steps=steps,
            cond_scale=args.cond_scale,
            mode="synced",
        )
        _sync(device)
        seconds = time.perf_counter() - t0
        result = metrics.compare(maps, sweep_truth)
        sweep.append(
            {
                "steps": steps,
                "seconds": round(seconds, 2),
                "hic_pearson": round(result["hic_pearson"], 4),
                "distance_error": round(result["distance_error"], 4),
            }
        )
        log(
            f"DDIM {steps} steps: {seconds:.1f} s, Hi-C Pearson {result['hic_pearson']:.4f}, "
            f"distance error {result['distance_error']:.4f}"
        )

    with tempfile.TemporaryDirectory() as tmp:
        whole, whole_peak, whole_facts = sample_peak(
            args.checkpoint, Path(tmp) / "whole.npz", 10**6, args, args.threads
        )
        chunked, chunked_peak, chunked_facts = sample_peak(
            args.checkpoint, Path(tmp) / "chunked.npz", whole_peak / 2, args, args.threads
        )
    identical = bool(np.array_equal(whole, chunked))
    log(
        f"memory: unchunked {whole_facts['chunk_samples']} chains/forward peak {whole_peak:.0f} MB; allocation "
        f"{whole_peak / 2:.0f} MB -> {chunked_facts['chunk_samples']} chains/forward, peak {chunked_peak:.0f} MB; "
        f"identical samples: {identical}; model {chunked_facts['memory_model']}"
    )

    out = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "batched_speedup": round(speedup, 2),
        "seam_independent": round(seam["independent"]["seam"], 5),
        "seam_synced": round(seam["synced"]["seam"], 5),
        "seam_reduction": round(seam["independent"]["seam"] / seam["synced"]["seam"], 2),
        "hic_pearson_independent": round(seam["independent"]["hic"], 4),
        "hic_pearson_synced": round(seam["synced"]["hic"], 4),
        "distance_error_independent": round(seam["independent"]["dist"], 4),
        "distance_error_synced": round(seam["synced"]["dist"], 4),
        "steps_sweep": sweep,
        "chunked_peak_mb": round(chunked_peak, 1),
        "unchunked_peak_mb": round(whole_peak, 1),
        "chunked_identical": identical,
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
