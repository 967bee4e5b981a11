"""Metrics of sampled distance maps against ground truth, as ChromoGen reports them.

- mean distance by separation s = 1..63;
- distance distributions per separation compared by KL divergence (truth || sample), histograms
  on shared bins per s;
- contact probability p(r) = (1 + tanh(3.72 (1.5 - r))) / 2 for r < 1.5, else (1.5 / r)^3.45 / 2,
  averaged over samples into a contact map, and the Pearson correlation of two maps' upper
  triangles (offset 1);
- insulation score (window 7): for each bead, the mean contact probability between the 7 beads
  before it and the 7 after it, as log2 of its ratio to the profile's mean.
"""

from __future__ import annotations

import numpy as np
import torch

INSULATION_WINDOW = 7


def contact_probability(r: torch.Tensor) -> torch.Tensor:
    r = torch.as_tensor(r, dtype=torch.float64)
    near = (1 + torch.tanh(3.72 * (1.5 - r))) / 2
    far = (1.5 / r.clamp_min(1e-12)) ** 3.45 / 2
    return torch.where(r < 1.5, near, far)


def contact_map(maps: torch.Tensor) -> torch.Tensor:
    """Mean contact probability over samples (N, n, n) -> (n, n)."""
    return contact_probability(maps).mean(dim=0)


def mean_distance_by_separation(maps: torch.Tensor) -> np.ndarray:
    """(N, n, n) -> (n - 1,) mean distance at s = 1..n-1."""
    n = maps.shape[-1]
    return np.array([maps.diagonal(offset=s, dim1=-2, dim2=-1).double().mean().item() for s in range(1, n)])


def kl_by_separation(sample: torch.Tensor, truth: torch.Tensor, bins: int = 30, pseudo: float = 1e-3) -> np.ndarray:
    n = truth.shape[-1]
    out = np.empty(n - 1)
    for s in range(1, n):
        t = truth.diagonal(offset=s, dim1=-2, dim2=-1).reshape(-1).double().numpy()
        q = sample.diagonal(offset=s, dim1=-2, dim2=-1).reshape(-1).double().numpy()
        edges = np.quantile(t, np.linspace(0, 1, bins + 1))
        edges[0], edges[-1] = min(edges[0], q.min()) - 1e-9, max(edges[-1], q.max()) + 1e-9
        pt = np.histogram(t, edges)[0] + pseudo
        pq = np.histogram(q, edges)[0] + pseudo
        pt, pq = pt / pt.sum(), pq / pq.sum()
        out[s - 1] = float(np.sum(pt * np.log(pt / pq)))
    return out


def upper_pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two (n, n) maps' upper triangles (offset 1), NaN entries skipped."""
    iu = torch.triu_indices(a.shape[-1], a.shape[-1], offset=1)
    x, y = a[iu[0], iu[1]].double().numpy(), b[iu[0], iu[1]].double().numpy()
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def chromosome_contact_map(tile_maps: torch.Tensor, stride: int, window: int) -> torch.Tensor:
    """(N, tiles, w, w) -> (beads, beads) mean contact probability, NaN where no tile covers a pair."""
    n_tiles = tile_maps.shape[1]
    beads = stride * (n_tiles - 1) + window
    total = torch.zeros(beads, beads, dtype=torch.float64)
    count = torch.zeros(beads, beads, dtype=torch.float64)
    for i in range(n_tiles):
        s = i * stride
        total[s : s + window, s : s + window] += contact_map(tile_maps[:, i])
        count[s : s + window, s : s + window] += 1
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def insulation(contacts: torch.Tensor, window: int = INSULATION_WINDOW) -> np.ndarray:
    """log2 insulation profile of a (beads, beads) contact map (NaN at the ends)."""
    c = contacts.double().numpy()
    n = c.shape[0]
    score = np.full(n, np.nan)
    for i in range(window, n - window):
        block = c[i - window : i, i + 1 : i + window + 1]
        score[i] = np.nanmean(block) if np.isfinite(block).any() else np.nan
    mean = np.nanmean(score)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log2(score / mean)


def compare(sample: torch.Tensor, truth: torch.Tensor) -> dict:
    """Summary of (N, tiles, 64, 64) samples against (M, tiles, 64, 64) truth, per chromosome."""
    flat_s = sample.reshape(-1, *sample.shape[-2:])
    flat_t = truth.reshape(-1, *truth.shape[-2:])
    md_s, md_t = mean_distance_by_separation(flat_s), mean_distance_by_separation(flat_t)
    per_tile = [upper_pearson(contact_map(sample[:, i]), contact_map(truth[:, i])) for i in range(sample.shape[1])]
    kl = kl_by_separation(flat_s, flat_t)
    return {
        "mean_distance_sample": md_s,
        "mean_distance_truth": md_t,
        "distance_error": float(np.mean(np.abs(md_s - md_t) / md_t)),
        "kl_by_separation": kl,
        "kl_mean": float(kl.mean()),
        "hic_pearson": float(np.mean(per_tile)),
        "hic_pearson_per_tile": per_tile,
    }
