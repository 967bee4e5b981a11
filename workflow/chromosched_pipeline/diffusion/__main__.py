"""Command line: ``python -m chromosched_pipeline.diffusion {train,sample,merge,plots} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _train(args) -> int:
    from .model import UNetConfig
    from .train import train

    config = UNetConfig(
        dim=args.dim,
        dim_mults=tuple(args.dim_mults),
        attn_heads=args.attn_heads,
        attn_dim_head=args.attn_dim_head,
        resnet_block_groups=args.groups,
    )
    info = train(
        Path(args.out),
        config,
        data_seed=args.data_seed,
        chromosomes=args.chromosomes,
        cells=args.cells,
        batch=args.batch,
        lr=args.lr,
        minutes=args.minutes,
        max_steps=args.max_steps,
        threads=args.threads,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(info)
    return 0


def _sample(args) -> int:
    import json

    import numpy as np
    import torch

    from chromosched_pipeline.step_outcome import outcome_recorded

    from . import tiling
    from .job import SampleSettings, sample_part, write_npz

    torch.set_num_threads(max(1, args.threads))
    n_tiles = args.tiles or tiling.genome_tiles(args.chrom)
    if n_tiles is None:
        raise SystemExit(f"chromosched diffusion: error: no tile count known for {args.chrom}; pass --tiles")
    if args.max_tiles:
        n_tiles = min(n_tiles, args.max_tiles)
    settings = SampleSettings(
        steps=args.steps,
        eta=args.eta,
        cond_scale=args.cond_scale,
        rescaled_phi=args.phi,
        mode=args.mode,
        project_final=args.project_final,
        seed=args.seed,
        track_seed=args.track_seed,
        refine_iterations=args.refine_iterations,
    )
    extra = {"chrom": args.chrom, "first": args.first, "last": args.last, "mem_mb": args.mem_mb}
    with outcome_recorded(args.outcome, **extra):
        result = sample_part(
            args.checkpoint,
            args.chrom,
            n_tiles,
            args.first,
            args.last,
            settings,
            args.mem_mb,
            args.gpu_mem_mb,
            args.device,
            args.embeddings_dir,
            args.normalizer,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        write_npz(
            args.out,
            maps=result["maps"],
            coords=result["coords"],
            seams=result["seams"],
            first=np.int64(args.first),
            last=np.int64(args.last),
            facts=np.array(json.dumps(result["facts"])),
        )
    return 0


def _merge(args) -> int:
    from .job import merge_parts

    merge_parts(
        args.parts,
        args.chrom,
        args.truth_cells,
        args.truth_seed,
        args.track_seed,
        args.samples,
        args.coordinates,
        args.metrics,
        args.summary,
        polymer_truth=not args.no_truth,
    )
    return 0


def _plots(args) -> int:
    from .report import plot_all

    plot_all(args.summaries, args.metrics, args.coordinates, args.contacts, args.distance, args.render, args.seams)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chromosched_pipeline.diffusion")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a small model on polymer windows (CPU minutes)")
    t.add_argument("--out", required=True, help="checkpoint to write (ChromoGen's dict format)")
    t.add_argument("--dim", type=int, default=16)
    t.add_argument("--dim-mults", type=int, nargs="+", default=[1, 2, 4])
    t.add_argument("--attn-heads", type=int, default=2)
    t.add_argument("--attn-dim-head", type=int, default=16)
    t.add_argument("--groups", type=int, default=4)
    t.add_argument("--data-seed", type=int, default=7)
    t.add_argument("--chromosomes", type=int, default=48)
    t.add_argument("--cells", type=int, default=48)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--minutes", type=float, default=5.0)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--threads", type=int, default=1)
    t.set_defaults(func=_train)

    s = sub.add_parser("sample", help="sample chains first..last-1 of one chromosome (a pipeline job)")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--chrom", required=True)
    s.add_argument("--tiles", type=int, default=None, help="tiles (default: from the hg38 length)")
    s.add_argument("--max-tiles", type=int, default=None)
    s.add_argument("--first", type=int, default=0)
    s.add_argument("--last", type=int, required=True)
    s.add_argument("--steps", type=int, default=50)
    s.add_argument("--eta", type=float, default=0.0)
    s.add_argument("--cond-scale", type=float, default=1.0)
    s.add_argument("--phi", type=float, default=0.0, help="rescaled-phi blend of guidance")
    s.add_argument("--mode", choices=["independent", "synced"], default="synced")
    s.add_argument("--project-final", action="store_true")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--track-seed", type=int, default=2026)
    s.add_argument("--refine-iterations", type=int, default=60)
    s.add_argument("--mem-mb", type=float, required=True, help="the job's memory allocation (MB)")
    s.add_argument("--gpu-mem-mb", type=float, default=None, help="the job's GPU memory allocation (MB)")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    s.add_argument("--embeddings-dir", default=None, help="user region embeddings: DIR/<chrom>/tile<i>.pt")
    s.add_argument("--normalizer", default=None, help="normaliser statistics (for checkpoints without them)")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--out", required=True)
    s.add_argument("--outcome", default=None, help="JSON-lines file to append this attempt's outcome to")
    s.set_defaults(func=_sample)

    m = sub.add_parser("merge", help="merge a chromosome's parts; metrics against the polymer truth")
    m.add_argument("--parts", nargs="+", required=True)
    m.add_argument("--chrom", required=True)
    m.add_argument("--truth-cells", type=int, default=200)
    m.add_argument("--truth-seed", type=int, default=99)
    m.add_argument("--track-seed", type=int, default=2026)
    m.add_argument("--no-truth", action="store_true", help="user embeddings: no polymer ground truth")
    m.add_argument("--samples", required=True)
    m.add_argument("--coordinates", required=True)
    m.add_argument("--metrics", required=True)
    m.add_argument("--summary", required=True)
    m.set_defaults(func=_merge)

    r = sub.add_parser("plots", help="report figures")
    r.add_argument("--summaries", nargs="+", required=True)
    r.add_argument("--metrics", nargs="+", required=True)
    r.add_argument("--coordinates", nargs="+", required=True)
    r.add_argument("--contacts", required=True)
    r.add_argument("--distance", required=True)
    r.add_argument("--render", required=True)
    r.add_argument("--seams", required=True)
    r.set_defaults(func=_plots)
    args = p.parse_args(argv)
    from .checkpoint import DiffusionInputError
    from .memory import AllocationTooSmall

    try:
        return args.func(args)
    except (DiffusionInputError, AllocationTooSmall) as err:
        print(f"chromosched diffusion: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
