"""What the pipeline's diffusion jobs do: sample one part of a chromosome's chains within the
job's memory, and merge a chromosome's parts into samples, coordinates and metrics.

Per-region conditioning: by default each tile's polymer site track (seeded by ``track_seed`` and
the chromosome name, see polymer.py), the training data's conditioning. With ``embeddings_dir``
the user supplies one tensor file per region instead: ``<dir>/<chrom>/tile<i>.pt`` (torch.save of
a tensor of the model's embedding shape, e.g. ChromoGen's 256 x 256 EPCOT output) or ``.npy``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..vcfio import atomic_outputs
from . import coordinates, memory, metrics, polymer, tiling
from .checkpoint import DiffusionInputError, load_checkpoint, load_region_embedding


@dataclass
class SampleSettings:
    steps: int = 50
    eta: float = 0.0
    cond_scale: float = 1.0
    rescaled_phi: float = 0.0
    mode: str = "synced"
    project_final: bool = False
    seed: int = 1
    track_seed: int = 2026
    refine_iterations: int = 60

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def region_embeddings(
    chrom: str, n_tiles: int, shape: tuple[int, ...], track_seed: int, embeddings_dir: str | None = None
) -> torch.Tensor:
    """(tiles, *shape) conditioning for a chromosome's tiles."""
    if embeddings_dir:
        tiles = []
        for i in range(n_tiles):
            base = Path(embeddings_dir) / str(chrom) / f"tile{i}"
            path = next(
                (p for p in (base.with_suffix(".pt"), base.with_suffix(".npy")) if p.is_file()), base.with_suffix(".pt")
            )
            tiles.append(load_region_embedding(path, shape))
        return torch.stack(tiles)
    track = polymer.site_track(chrom, tiling.chain_beads(n_tiles), track_seed)
    embs = np.stack([polymer.window_embedding(track, s) for s in tiling.tile_starts(n_tiles)])
    if int(np.prod(shape)) != embs.shape[1]:
        raise DiffusionInputError(
            f"the model's region embedding has shape {tuple(shape)}: the polymer site track ({embs.shape[1]} values)"
            " does not fit it; pass --embeddings-dir with one file per region"
        )
    return torch.from_numpy(embs).reshape(n_tiles, *shape)


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def sample_part(
    checkpoint: str,
    chrom: str,
    n_tiles: int,
    first: int,
    last: int,
    settings: SampleSettings,
    mem_mb: float,
    gpu_mem_mb: float | None = None,
    device: str = "auto",
    embeddings_dir: str | None = None,
    normalizer: str | None = None,
    log=print,
) -> dict:
    """Sample chains first..last-1 of ``chrom``, in chunks sized to the allocation; returns arrays + facts."""
    started = time.monotonic()
    dev = pick_device(device)
    diffusion, norm, meta = load_checkpoint(checkpoint, dev, normalizer)
    if norm is None:
        raise DiffusionInputError(f"{checkpoint}: has no normaliser statistics; pass --normalizer FILE")
    shape = diffusion.model.config.embedding_shape
    emb = region_embeddings(chrom, n_tiles, shape, settings.track_seed, embeddings_dir)
    kw = dict(
        chrom=chrom,
        seed=settings.seed,
        eta=settings.eta,
        cond_scale=settings.cond_scale,
        rescaled_phi=settings.rescaled_phi,
        mode=settings.mode,
        project_final=settings.project_final,
    )
    rows_each = memory.rows_per_sample(n_tiles, settings.cond_scale)
    model = memory.calibrate(
        lambda n: tiling.sample_chains(diffusion, norm, emb, sample_ids=range(n), steps=1, chunk_samples=n, **kw),
        rows_each,
        dev,
        probe_samples=(1, 3),
    )
    allocation = float(gpu_mem_mb) if dev.type == "cuda" and gpu_mem_mb else float(mem_mb)
    chunk = memory.choose_chunk(model, allocation, rows_each, last - first)
    log(
        f"{chrom}: {n_tiles} tiles, samples {first}..{last - 1}, device {dev}, memory {model.to_dict()},"
        f" allocation {allocation:.0f} MB -> {chunk} chains ({chunk * rows_each} rows) per forward"
    )
    sample_started = time.monotonic()
    maps, coords = [], []
    ids = list(range(first, last))
    for lo in range(0, len(ids), chunk):
        part = tiling.sample_chains(
            diffusion, norm, emb, sample_ids=ids[lo : lo + chunk], steps=settings.steps, chunk_samples=chunk, **kw
        )
        maps.append(part)
        coords.append(coordinates.chromosome_coordinates(part, settings.refine_iterations))
    maps_t = torch.cat(maps)
    sampling_s = time.monotonic() - sample_started
    facts = {
        "chrom": chrom,
        "tiles": n_tiles,
        "first": first,
        "last": last,
        "device": str(dev),
        "memory_model": model.to_dict(),
        "allocation_mb": allocation,
        "chunk_samples": chunk,
        "rows_per_forward": chunk * rows_each,
        "sampling_seconds": round(sampling_s, 2),
        "seconds": round(time.monotonic() - started, 2),
        "settings": settings.to_dict(),
        "checkpoint": str(checkpoint),
    }
    if dev.type == "cuda":
        facts["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    return {
        "maps": maps_t.numpy().astype(np.float32),
        "coords": torch.cat(coords).numpy().astype(np.float32),
        "seams": tiling.seam_discrepancy(maps_t).numpy(),
        "facts": facts,
    }


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """Compressed npz, written under a hidden temporary name and renamed (no partial file on failure)."""
    with atomic_outputs(path, suffixes=[".npz"]) as (tmp,):
        np.savez_compressed(tmp, **arrays)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_outputs(path) as (tmp,):
        tmp.write_text(text)


def truth_windows(chrom: str, n_tiles: int, track_seed: int, truth_seed: int, cells: int) -> torch.Tensor:
    """The polymer ground truth of a chromosome's tiles: (cells, tiles, 64, 64) distance maps."""
    track = polymer.site_track(chrom, tiling.chain_beads(n_tiles), track_seed)
    coords = polymer.sample_conformations(track, cells, polymer.stable_seed("truth", truth_seed, chrom))
    return polymer.windows(polymer.distance_maps(coords), tiling.tile_starts(n_tiles))


def merge_parts(
    parts: list[str],
    chrom: str,
    truth_cells: int,
    truth_seed: int,
    track_seed: int,
    out_samples: str,
    out_coords: str,
    out_metrics: str,
    out_summary: str,
    polymer_truth: bool = True,
) -> dict:
    """One chromosome's parts -> samples.npz, coordinates.npz, metrics.tsv (per separation), summary.json."""
    loaded = [np.load(p, allow_pickle=False) for p in parts]
    order = np.argsort([int(part["first"]) for part in loaded])
    loaded = [loaded[i] for i in order]
    maps = np.concatenate([part["maps"] for part in loaded])
    coords = np.concatenate([part["coords"] for part in loaded])
    seams = np.concatenate([part["seams"] for part in loaded])
    facts = [json.loads(str(part["facts"])) for part in loaded]
    n_tiles = maps.shape[1]
    write_npz(
        out_samples,
        distance_maps=maps,
        seam_discrepancy=seams,
        sample_index=np.arange(int(loaded[0]["first"]), int(loaded[-1]["last"])),
    )
    write_npz(out_coords, coordinates=coords)
    summary = {
        "chrom": chrom,
        "samples": int(maps.shape[0]),
        "tiles": n_tiles,
        "beads": int(coords.shape[1]),
        "seam_per_boundary": seams.mean(axis=0).tolist() if n_tiles > 1 else [],
        "seam_mean": float(seams.mean()) if n_tiles > 1 else 0.0,
        "parts": facts,
    }
    lines = ["separation\tmean_distance_sample\tmean_distance_truth\tkl"]
    sample_t = torch.from_numpy(maps)
    if polymer_truth:
        truth = truth_windows(chrom, n_tiles, track_seed, truth_seed, truth_cells)
        result = metrics.compare(sample_t, truth)
        sample_contacts = metrics.chromosome_contact_map(sample_t, tiling.STRIDE, tiling.WINDOW)
        truth_contacts = metrics.chromosome_contact_map(truth, tiling.STRIDE, tiling.WINDOW)
        for s in range(63):
            lines.append(
                f"{s + 1}\t{result['mean_distance_sample'][s]:.5f}\t{result['mean_distance_truth'][s]:.5f}"
                f"\t{result['kl_by_separation'][s]:.5f}"
            )
        summary.update({k: result[k] for k in ("distance_error", "kl_mean", "hic_pearson", "hic_pearson_per_tile")})
        summary["insulation_sample"] = _nan_list(metrics.insulation(sample_contacts))
        summary["insulation_truth"] = _nan_list(metrics.insulation(truth_contacts))
        summary["insulation_pearson"] = _finite_pearson(summary["insulation_sample"], summary["insulation_truth"])
        write_npz(
            Path(out_summary).with_suffix(".contacts.npz"), sample=sample_contacts.numpy(), truth=truth_contacts.numpy()
        )
    else:
        md = metrics.mean_distance_by_separation(sample_t.reshape(-1, 64, 64))
        lines += [f"{s + 1}\t{md[s]:.5f}\tnan\tnan" for s in range(63)]
    write_text(out_metrics, "\n".join(lines) + "\n")
    write_text(out_summary, json.dumps(summary, indent=1) + "\n")
    return summary


def _nan_list(values) -> list:
    return [None if not np.isfinite(v) else round(float(v), 5) for v in values]


def _finite_pearson(a, b) -> float | None:
    x = np.array([np.nan if v is None else v for v in a], float)
    y = np.array([np.nan if v is None else v for v in b], float)
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else None
