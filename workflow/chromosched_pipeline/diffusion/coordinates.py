"""Whole-chromosome 3D coordinates from a chain's tile distance maps.

1. Distance geometry per tile: classical MDS (double-centred squared distances, top 3
   eigenvectors), exact when the map is Euclidean.
2. Tiles are chained: tile i+1 is aligned onto the chain built so far by the orthogonal transform
   (rotation or reflection - a distance map has no handedness) that best superposes its first 12
   beads on the chain's last 12 (Kabsch); overlap beads take the mean of both copies.
3. A short joint refinement: Adam on all coordinates against every tile's distances (the chain's
   own pairs inside each tile), batched over chains.
"""

from __future__ import annotations

import torch

from .tiling import OVERLAP, STRIDE, WINDOW, chain_beads


def classical_mds(maps: torch.Tensor, dims: int = 3) -> torch.Tensor:
    """(..., n, n) distances -> (..., n, dims) coordinates."""
    d2 = maps.double() ** 2
    n = d2.shape[-1]
    centre = torch.eye(n, dtype=d2.dtype) - 1.0 / n
    gram = -0.5 * centre @ d2 @ centre
    vals, vecs = torch.linalg.eigh(gram)
    vals, vecs = vals[..., -dims:].clamp_min(0), vecs[..., -dims:]
    return (vecs * vals.sqrt()[..., None, :]).float()


def _superpose(moving: torch.Tensor, target: torch.Tensor):
    """Orthogonal R and translation so that moving @ R + t ~ target (batched, reflections allowed)."""
    mc, tc = moving.mean(dim=-2, keepdim=True), target.mean(dim=-2, keepdim=True)
    h = (moving - mc).transpose(-1, -2) @ (target - tc)
    u, _, vt = torch.linalg.svd(h)
    rot = u @ vt
    return rot, tc - mc @ rot


def stitch(tile_coords: torch.Tensor) -> torch.Tensor:
    """(chains, tiles, 64, 3) -> (chains, beads, 3)."""
    chains, n_tiles = tile_coords.shape[:2]
    chain = torch.zeros(chains, chain_beads(n_tiles), 3, dtype=tile_coords.dtype)
    chain[:, :WINDOW] = tile_coords[:, 0]
    for i in range(1, n_tiles):
        start = i * STRIDE
        tile = tile_coords[:, i]
        rot, shift = _superpose(tile[:, :OVERLAP], chain[:, start : start + OVERLAP])
        placed = tile @ rot + shift
        chain[:, start : start + OVERLAP] = (chain[:, start : start + OVERLAP] + placed[:, :OVERLAP]) / 2
        chain[:, start + OVERLAP : start + WINDOW] = placed[:, OVERLAP:]
    return chain


def refine(chain: torch.Tensor, tile_maps: torch.Tensor, iterations: int = 60, lr: float = 0.05) -> torch.Tensor:
    """Adam on coordinates (chains, beads, 3) against tile distance maps (chains, tiles, 64, 64)."""
    n_tiles = tile_maps.shape[1]
    index = torch.stack([torch.arange(WINDOW) + i * STRIDE for i in range(n_tiles)])  # (tiles, 64)
    iu = torch.triu_indices(WINDOW, WINDOW, offset=1)
    target = tile_maps[:, :, iu[0], iu[1]]
    x = chain.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    with torch.enable_grad():
        for _ in range(iterations):
            tiles = x[:, index]  # (chains, tiles, 64, 3)
            diff = tiles[:, :, iu[0]] - tiles[:, :, iu[1]]
            dist = (diff.square().sum(-1) + 1e-9).sqrt()
            loss = (dist - target).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return x.detach()


def chromosome_coordinates(tile_maps: torch.Tensor, refine_iterations: int = 60) -> torch.Tensor:
    """(chains, tiles, 64, 64) distance maps -> (chains, beads, 3) coordinates."""
    chain = stitch(classical_mds(tile_maps))
    return refine(chain, tile_maps.float(), refine_iterations) if refine_iterations else chain
