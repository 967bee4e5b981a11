"""Training data and ground truth without downloads: a Gaussian-network polymer with loop extrusion.

A chain of beads (20 kb each) joined by harmonic backbone springs; in each cell, cohesin-like
extruders load at random, extrude both ways and stop at oriented CTCF-like sites (a leg moving
left stops at forward sites, a leg moving right at reverse sites, each with the site's strength)
or when their processivity runs out. Every extruded loop adds a spring between its anchors. The
energy is quadratic, so each cell's conformation is an exact Gaussian sample: precision
K = k * Laplacian (+ a tiny pin on the centre of mass), x = C^-T z with K = C C^T.

The site track of a chromosome is seeded by (seed, chromosome name) and generated for the whole
chromosome once, so adjacent 64-bead windows see the same sites in their overlap. It is the
per-region conditioning input (where ChromoGen's EPCOT embedding stands).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

WINDOW = 64
SPRING_K = 3.0  # per-dimension stiffness: <r^2> = 3/k = 1 for one unloaded bond (unit = one bond length)
SITE_DENSITY = 0.08  # CTCF-like sites per bead
EXTRUDER_SPACING = 30.0  # beads per loaded extruder
PROCESSIVITY = 40.0  # mean beads one leg extrudes when nothing stops it
_COM_PIN = 1e-6  # precision of the centre of mass (it does not move distances)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, stable across processes (Python's hash() is salted)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def site_track(chrom: str, n_beads: int, seed: int) -> np.ndarray:
    """(2, n_beads) float32: stop strength of forward (row 0) and reverse (row 1) sites, 0 = none."""
    rng = np.random.default_rng(stable_seed("sites", seed, chrom))
    present = rng.random(n_beads) < SITE_DENSITY
    forward = rng.random(n_beads) < 0.5
    strength = rng.uniform(0.5, 1.0, n_beads)
    track = np.zeros((2, n_beads), np.float32)
    track[0, present & forward] = strength[present & forward]
    track[1, present & ~forward] = strength[present & ~forward]
    return track


def window_embedding(track: np.ndarray, start: int, window: int = WINDOW) -> np.ndarray:
    """The conditioning vector of the window starting at bead ``start``: its site track, flattened."""
    return np.ascontiguousarray(track[:, start : start + window]).reshape(-1)


def sample_loops(track: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int]]:
    """One cell's extruded loops (left anchor, right anchor)."""
    n = track.shape[1]
    loops = []
    for _ in range(rng.poisson(n / EXTRUDER_SPACING)):
        load = int(rng.integers(0, n))
        left = _extrude(track[0, :load][::-1], rng)
        right = _extrude(track[1, load + 1 :], rng)
        a, b = load - left, load + right
        if b - a >= 2:
            loops.append((a, b))
    return loops


def _extrude(strength_ahead: np.ndarray, rng: np.random.Generator) -> int:
    """Beads one leg moves: until a site stops it (probability = its strength), its processivity
    runs out, or the chain ends."""
    limit = min(len(strength_ahead), int(rng.geometric(1.0 / PROCESSIVITY)))
    ahead = strength_ahead[:limit]
    stops = np.flatnonzero(rng.random(len(ahead)) < ahead)
    return int(stops[0]) + 1 if len(stops) else limit


def sample_conformations(track: np.ndarray, n_cells: int, seed: int, batch: int = 32, loops: bool = True) -> np.ndarray:
    """(n_cells, n_beads, 3) float32 exact samples of the Gaussian network, one loop set per cell
    (``loops=False``: the bare chain, <r^2> = separation exactly)."""
    n = track.shape[1]
    rng = np.random.default_rng(stable_seed("cells", seed, n))
    out = np.empty((n_cells, n, 3), np.float32)
    backbone = np.arange(n - 1)
    for lo in range(0, n_cells, batch):
        cells = range(lo, min(n_cells, lo + batch))
        lap = np.zeros((len(cells), n, n))
        for row, _ in enumerate(cells):
            springs = [(backbone, backbone + 1)]
            cell_loops = sample_loops(track, rng) if loops else []
            if cell_loops:
                pairs = np.array(cell_loops)
                springs.append((pairs[:, 0], pairs[:, 1]))
            for i, j in springs:
                np.add.at(lap[row], (i, j), -1.0)
                np.add.at(lap[row], (j, i), -1.0)
                np.add.at(lap[row], (i, i), 1.0)
                np.add.at(lap[row], (j, j), 1.0)
        precision = torch.from_numpy(SPRING_K * lap + _COM_PIN / n)
        chol = torch.linalg.cholesky(precision)
        z = torch.from_numpy(rng.standard_normal((len(cells), n, 3)))
        x = torch.linalg.solve_triangular(chol.transpose(-1, -2), z, upper=True)
        out[lo : lo + len(cells)] = (x - x.mean(dim=1, keepdim=True)).numpy()
    return out


def distance_maps(coords: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Pairwise distances (..., n, n) of coordinates (..., n, 3)."""
    x = torch.as_tensor(coords, dtype=torch.float32)
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # exact zeros, symmetric


def windows(maps: torch.Tensor, starts, window: int = WINDOW) -> torch.Tensor:
    """(..., len(starts), window, window) crops of chain distance maps (..., n, n)."""
    return torch.stack([maps[..., s : s + window, s : s + window] for s in starts], dim=-3)
