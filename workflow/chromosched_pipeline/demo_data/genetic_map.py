"""A recombination map with hotspots (most crossovers in ~2 kb hotspots every ~50 kb), and its PLINK text
for Beagle."""

from __future__ import annotations

import msprime
import numpy as np

MEAN_RECOMBINATION_RATE = 1.15e-8  # per bp per generation (~1.15 cM/Mb genome average)


def hotspot_rate_map(
    length_bp: int,
    rng: np.random.Generator,
    mean_rate: float = MEAN_RECOMBINATION_RATE,
    hotspot_spacing_bp: int = 50_000,
    hotspot_width_bp: int = 2_000,
    hotspot_share: float = 0.8,
) -> msprime.RateMap:
    """A recombination map with a low background and one ~2 kb hotspot per ~50 kb window.

    ``hotspot_share`` of all crossovers fall in hotspots; hotspot heats are gamma-distributed
    (shape 1), and the map's mean rate equals ``mean_rate``.
    """
    length_bp = int(length_bp)
    n_hot = max(1, length_bp // hotspot_spacing_bp)
    width = max(1, min(hotspot_width_bp, length_bp // (2 * n_hot)))
    bin_size = length_bp / n_hot
    starts = np.array([int(i * bin_size + rng.uniform(0, bin_size - width)) for i in range(n_hot)])
    heats = rng.gamma(1.0, 1.0, size=n_hot)
    total_morgans = mean_rate * length_bp
    background = total_morgans * (1 - hotspot_share) / length_bp
    hot_rates = background + total_morgans * hotspot_share * heats / heats.sum() / width
    positions = [0]
    rates: list[float] = []
    for start, rate in zip(starts, hot_rates):
        if start > positions[-1]:
            positions.append(int(start))
            rates.append(background)
        positions.append(int(start + width))
        rates.append(float(rate))
    if positions[-1] < length_bp:
        positions.append(length_bp)
        rates.append(background)
    return msprime.RateMap(position=positions, rate=rates)


def plink_map_lines(rate_map: msprime.RateMap, contig: str) -> list[str]:
    """PLINK map lines (``chrom id cM bp``) at every rate change, which Beagle interpolates linearly."""
    lines = []
    cumulative = rate_map.get_cumulative_mass(rate_map.position)  # Morgans at each breakpoint
    for pos, morgans in zip(rate_map.position, cumulative):
        bp = max(1, int(pos))
        lines.append(f"{contig}\t.\t{morgans * 100:.8f}\t{bp}")
    # Distinct bp keys (position 0 and 1 both map to bp 1): keep the last of equal bp.
    deduped: dict[int, str] = {}
    for line in lines:
        deduped[int(line.rsplit("\t", 1)[1])] = line
    return [deduped[k] for k in sorted(deduped)]
