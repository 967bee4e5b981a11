"""Report figures for the diffusion stage: contact map (sampled vs ground truth), mean distance
vs separation, a 3D render of one whole-chromosome conformation, seam discrepancy per boundary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..vcfio import atomic_outputs


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    with atomic_outputs(path, suffixes=[".png"]) as (tmp,):
        fig.savefig(tmp, dpi=110, format="png")


def plot_all(
    summaries: list[str],
    metrics_tsvs: list[str],
    coords: list[str],
    out_contacts: str,
    out_distance: str,
    out_render: str,
    out_seams: str,
) -> None:
    plt = _plt()
    sums = [json.loads(Path(p).read_text()) for p in summaries]

    # 1. contact map of the first chromosome: sampled (upper triangle) vs ground truth (lower)
    contacts = np.load(Path(summaries[0]).with_suffix(".contacts.npz"))
    sample, truth = contacts["sample"], contacts["truth"]
    combined = np.triu(sample, 1) + np.tril(truth, -1)
    np.fill_diagonal(combined, np.nan)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(np.log10(np.clip(combined, 1e-4, None)), cmap="Reds", vmin=-3, vmax=0)
    ax.set_title(
        f"{sums[0]['chrom']}: sampled (upper) vs polymer truth (lower)\n"
        f"Hi-C Pearson {sums[0].get('hic_pearson', float('nan')):.3f}"
    )
    ax.set_xlabel("bead (20 kb)")
    fig.colorbar(im, ax=ax, label="log10 contact probability")
    fig.tight_layout()
    _save(fig, out_contacts)
    plt.close(fig)

    # 2. mean distance vs separation, every chromosome
    fig, ax = plt.subplots(figsize=(6, 4))
    for s, path in zip(sums, metrics_tsvs):
        table = np.genfromtxt(path, delimiter="\t", names=True)
        (line,) = ax.plot(table["separation"], table["mean_distance_sample"], label=f"{s['chrom']} sampled")
        ax.plot(
            table["separation"],
            table["mean_distance_truth"],
            ls="--",
            color=line.get_color(),
            label=f"{s['chrom']} truth",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("separation (beads)")
    ax.set_ylabel("mean distance (bond lengths)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, out_distance)
    plt.close(fig)

    # 3. one whole-chromosome conformation in 3D, coloured along the chain
    xyz = np.load(coords[0])["coordinates"][0]
    fig = plt.figure(figsize=(5.5, 5))
    ax = fig.add_subplot(projection="3d")
    colours = plt.cm.viridis(np.linspace(0, 1, len(xyz)))
    for i in range(len(xyz) - 1):
        ax.plot(*xyz[i : i + 2].T, color=colours[i], lw=1.2)
    ax.set_title(f"{sums[0]['chrom']}: one sampled conformation ({len(xyz)} beads)")
    fig.tight_layout()
    _save(fig, out_render)
    plt.close(fig)

    # 4. seam discrepancy per tile boundary
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for s in sums:
        if s["seam_per_boundary"]:
            ax.plot(np.arange(1, len(s["seam_per_boundary"]) + 1), s["seam_per_boundary"], marker="o", label=s["chrom"])
    ax.set_xlabel("tile boundary")
    ax.set_ylabel("seam discrepancy (bond lengths)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out_seams)
    plt.close(fig)
