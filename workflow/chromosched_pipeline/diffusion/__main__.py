"""Command line: ``python -m chromosched_pipeline.diffusion {train,sample,merge,plots} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _train(args) -> int:
    from .model import UNetConfig
    from .train import train

    config = UNetConfig(dim=args.dim, dim_mults=tuple(args.dim_mults), attn_heads=args.attn_heads,
                        attn_dim_head=args.attn_dim_head, resnet_block_groups=args.groups)
    info = train(Path(args.out), config, data_seed=args.data_seed, chromosomes=args.chromosomes,
                 cells=args.cells, batch=args.batch, lr=args.lr, minutes=args.minutes,
                 max_steps=args.max_steps, threads=args.threads,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
    print(info)
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
    args = p.parse_args(argv)
    from .checkpoint import DiffusionInputError

    try:
        return args.func(args)
    except DiffusionInputError as err:
        print(f"chromosched diffusion: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
