"""Windows along a chromosome and the seams between them.

Tiles are 64-bead windows with stride 52 (a 12-bead overlap), as ChromoGen tiles the genome. A
chain is one sample of the whole chromosome: its tiles share sample index and seed family.

- Independent mode samples every tile on its own (ChromoGen).
- Seam-coherent mode (ParaChromo) denoises a chain's tiles together; at each reverse step the
  predicted x0 of every tile is unfolded to distances, the two copies of each shared 12x12
  overlap block (end of tile i, start of tile i+1) are replaced by their mean, and the result is
  refolded; the sampler then re-derives the noise estimate from it and takes the DDIM step.
  ``project_final`` decides whether the last step is projected too (then seams are exactly 0).
  The two copies of an overlap also start from one noise value (``share_noise``; each tile's
  overlap entries take the previous tile's draws), so x_t agrees on the overlap at every step and
  only the model's last prediction can differ there.

Seam discrepancy of one boundary: mean |A_ab - B_ab| over the 66 bead pairs a < b of the overlap
block (A from tile i, B from tile i+1, same chain).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .representation import Normalizer, fold, unfold
from .sampler import Diffusion, ddim_sample, row_generators

WINDOW = 64
STRIDE = 52
OVERLAP = WINDOW - STRIDE
MODES = ("independent", "synced")

# hg38 lengths (Mb, rounded) for tile counts; other names need an explicit count.
HG38_MB = {
    "1": 248.96,
    "2": 242.19,
    "3": 198.30,
    "4": 190.21,
    "5": 181.54,
    "6": 170.81,
    "7": 159.35,
    "8": 145.14,
    "9": 138.39,
    "10": 133.80,
    "11": 135.09,
    "12": 133.28,
    "13": 114.36,
    "14": 107.04,
    "15": 101.99,
    "16": 90.34,
    "17": 83.26,
    "18": 80.37,
    "19": 58.62,
    "20": 64.44,
    "21": 46.71,
    "22": 50.82,
    "X": 156.04,
}
BEAD_KB = 20


def tile_starts(n_tiles: int) -> list[int]:
    return [i * STRIDE for i in range(n_tiles)]


def chain_beads(n_tiles: int) -> int:
    return STRIDE * (n_tiles - 1) + WINDOW


def genome_tiles(chrom: str) -> int | None:
    """Tiles of 64 x 20 kb, stride 52, over a human chromosome (hg38), None for unknown names."""
    name = str(chrom).removeprefix("chr")
    if name not in HG38_MB:
        return None
    beads = int(HG38_MB[name] * 1000 / BEAD_KB)
    return max(1, (beads - WINDOW) // STRIDE + 1)


def project_overlaps(x0: torch.Tensor, normalizer: Normalizer, n_tiles: int) -> torch.Tensor:
    """x0 rows (chains x tiles, 2, 32, 32), chain-major -> the same with every shared overlap block
    set to the mean of its two copies in distance space (entries outside overlaps untouched)."""
    if n_tiles < 2:
        return x0
    chains = x0.shape[0] // n_tiles
    values = unfold(x0.double()).reshape(chains, n_tiles, WINDOW, WINDOW)
    dist = normalizer.denormalize(values)
    mean = (dist[:, :-1, STRIDE:, STRIDE:] + dist[:, 1:, :OVERLAP, :OVERLAP]) / 2
    dist = dist.clone()
    dist[:, :-1, STRIDE:, STRIDE:] = mean
    dist[:, 1:, :OVERLAP, :OVERLAP] = mean
    renorm = normalizer.normalize(dist)
    mask = torch.zeros(n_tiles, WINDOW, WINDOW, dtype=torch.bool)
    mask[:-1, STRIDE:, STRIDE:] = True
    mask[1:, :OVERLAP, :OVERLAP] = True
    values = torch.where(mask, renorm, values)
    return fold(values.reshape(-1, WINDOW, WINDOW)).to(x0.dtype)


def share_overlap_noise(noise: torch.Tensor, n_tiles: int) -> torch.Tensor:
    """Noise rows (chains x tiles, 2, 32, 32), chain-major -> the same with each tile's overlap
    entries at its start taken from the previous tile's end, so a chain's two copies of a bead pair
    start from one noise value (each entry still N(0, 1)); entries not in a 64x64 map (channel 1's
    diagonal) are kept."""
    if n_tiles < 2:
        return noise
    chains = noise.shape[0] // n_tiles
    maps = unfold(noise).reshape(chains, n_tiles, WINDOW, WINDOW).clone()
    for i in range(1, n_tiles):  # left to right: tile i's start copies tile i-1's (already shared) end
        maps[:, i, :OVERLAP, :OVERLAP] = maps[:, i - 1, STRIDE:, STRIDE:]
    out = fold(maps.reshape(-1, WINDOW, WINDOW))
    diag = torch.arange(WINDOW // 2)
    out[:, 1, diag, diag] = noise[:, 1, diag, diag]
    return out


def seam_discrepancy(maps: torch.Tensor) -> torch.Tensor:
    """(chains, tiles, 64, 64) distance maps -> (chains, tiles - 1) mean |A - B| over overlap pairs a < b."""
    a = maps[:, :-1, STRIDE:, STRIDE:]
    b = maps[:, 1:, :OVERLAP, :OVERLAP]
    iu = torch.triu_indices(OVERLAP, OVERLAP, offset=1)
    return (a - b)[..., iu[0], iu[1]].abs().mean(dim=-1)


def sample_chains(
    diffusion: Diffusion,
    normalizer: Normalizer,
    embeddings: torch.Tensor,
    chrom: str,
    sample_ids: Sequence[int],
    seed: int,
    steps: int = 50,
    eta: float = 0.0,
    cond_scale: float = 1.0,
    rescaled_phi: float = 0.0,
    mode: str = "synced",
    project_final: bool = False,
    chunk_samples: int | None = None,
    tile_ids: Sequence[int] | None = None,
    share_noise: bool = True,
) -> torch.Tensor:
    """Distance maps (len(sample_ids), tiles, 64, 64) float32 for a chromosome's tiles
    (``embeddings``: (tiles, ...)), ``chunk_samples`` chains per batched sampling call."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n_tiles = embeddings.shape[0]
    tile_ids = list(range(n_tiles)) if tile_ids is None else list(tile_ids)
    sample_ids = list(sample_ids)
    chunk = max(1, chunk_samples or len(sample_ids))
    out = []
    for lo in range(0, len(sample_ids), chunk):
        ids = sample_ids[lo : lo + chunk]
        rows_tile = [t for _ in ids for t in tile_ids]
        rows_sample = [s for s in ids for _ in tile_ids]
        gens = row_generators(chrom, rows_tile, rows_sample, seed)
        cond_rows = torch.arange(len(ids) * n_tiles) % n_tiles  # each tile's region embedding, computed once
        hook = noise_hook = None
        if mode == "synced":

            def hook(x0, t, final, _n=n_tiles):
                return x0 if final and not project_final else project_overlaps(x0, normalizer, _n)

            if share_noise:

                def noise_hook(noise, _n=n_tiles):
                    return share_overlap_noise(noise, _n)

        x0 = ddim_sample(
            diffusion,
            embeddings,
            gens,
            cond_rows,
            steps=steps,
            eta=eta,
            cond_scale=cond_scale,
            rescaled_phi=rescaled_phi,
            step_hook=hook,
            noise_hook=noise_hook,
        )
        maps = normalizer.denormalize(unfold(x0.double())).float()
        out.append(maps.reshape(len(ids), n_tiles, WINDOW, WINDOW))
    return torch.cat(out)
