"""Train a small ChromoGen-family model on polymer windows, on the CPU, in minutes.

Objective: v-prediction (v = sqrt(a) eps - sqrt(1-a) x0), plain MSE. Why: with a CPU-minutes
budget the eps objective learned much worse distance statistics (the prototype in
REFERENCE.md 2.3): at low noise eps-prediction errors are amplified by 1/sqrt(a) into x0, at high
noise v stays well-scaled, so v gives a usable x0 over the whole schedule after few updates.
Weights are kept as an exponential moving average (what is saved), which smooths a short run.

Data: chains of 428 beads on training chromosomes ``train0, train1, ...`` (site tracks seeded by
``data_seed``), windows of 64 beads at random offsets, each with its site-track crop as the
conditioning input; the normaliser's statistics come from these windows. The pipeline's
chromosomes use other seeds, so their site tracks are unseen in training.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import polymer
from .checkpoint import save_checkpoint
from .model import Unet, UNetConfig, parameter_count
from .representation import Normalizer, encode
from .schedule import schedule_buffers

CHAIN_BEADS = 428  # 7 strides + one window: 8 tiles


def training_windows(data_seed: int, chromosomes: int, cells: int, windows_per_cell: int):
    """(distance maps (N, 64, 64), embeddings (N, 2, 64)) from polymer chains."""
    rng = np.random.default_rng(polymer.stable_seed("windows", data_seed))
    maps, embs = [], []
    for k in range(chromosomes):
        track = polymer.site_track(f"train{k}", CHAIN_BEADS, data_seed)
        coords = polymer.sample_conformations(track, cells, polymer.stable_seed("train-cells", data_seed, k))
        chain_maps = polymer.distance_maps(coords)
        starts = rng.integers(0, CHAIN_BEADS - polymer.WINDOW + 1, size=(cells, windows_per_cell))
        for c in range(cells):
            for s in starts[c]:
                maps.append(chain_maps[c, s : s + 64, s : s + 64])
                embs.append(torch.from_numpy(track[:, s : s + 64]))
    return torch.stack(maps), torch.stack(embs)


def train(
    out: Path,
    config: UNetConfig,
    data_seed: int = 7,
    chromosomes: int = 48,
    cells: int = 48,
    windows_per_cell: int = 8,
    batch: int = 32,
    lr: float = 2e-3,
    minutes: float = 5.0,
    max_steps: int | None = None,
    ema_decay: float = 0.995,
    threads: int = 1,
    log=print,
) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(polymer.stable_seed("train-init", data_seed))
    started = time.monotonic()
    maps, embs = training_windows(data_seed, chromosomes, cells, windows_per_cell)
    normalizer = Normalizer.fit(maps)
    images = encode(maps, normalizer).float()
    log(f"data: {len(images)} windows in {time.monotonic() - started:.1f} s")
    model = Unet(config)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ac = schedule_buffers()["alphas_cumprod"].float()
    gen = torch.Generator().manual_seed(polymer.stable_seed("train-batches", data_seed))
    losses = []
    step = 0
    budget = minutes * 60
    train_started = time.monotonic()
    while (max_steps is None or step < max_steps) and time.monotonic() - train_started < budget:
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        x0, emb = images[idx], embs[idx]
        t = torch.randint(0, len(ac), (batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = ac[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        v = a.sqrt() * noise - (1 - a).sqrt() * x0
        drop = torch.rand(batch, generator=gen) < config.cond_drop_prob
        loss = torch.nn.functional.mse_loss(model(xt, t, emb, drop), v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters()):
                pe.lerp_(p, 1 - ema_decay)
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            log(f"step {step}: loss {np.mean(losses[-50:]):.4f} ({time.monotonic() - train_started:.0f} s)")
    info = {
        "data_seed": data_seed,
        "chromosomes": chromosomes,
        "cells": cells,
        "windows": len(images),
        "batch": batch,
        "lr": lr,
        "steps": step,
        "ema_decay": ema_decay,
        "objective": "pred_v",
        "parameters": parameter_count(model),
        "train_seconds": round(time.monotonic() - train_started, 1),
        "final_loss": float(np.mean(losses[-100:])) if losses else None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, ema, "pred_v", normalizer, extra={"train": info, "conditioning": "polymer-site-track"})
    with open(out.with_suffix(".loss.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "loss"])
        w.writerows((i + 1, round(loss, 6)) for i, loss in enumerate(losses))
    _plot_losses(losses, out.with_suffix(".loss.png"))
    out.with_suffix(".train.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _plot_losses(losses, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.4, alpha=0.4, label="batch")
    k = 50
    if len(losses) >= k:
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k, len(losses) + 1), smooth, lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("v-objective MSE")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
