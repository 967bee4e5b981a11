"""ChromoGen's representation of a 64x64 distance map: a per-separation sigmoid normaliser, then
the "origami" fold of the upper triangle into a 2x32x32 image. Both are exactly invertible.

Normaliser, per bead separation s (statistics from training data):
    b_s = sqrt(2 <r^2>_s / 3),  sd_s = sqrt(<r^2>_s - <r>_s^2),  c_s = sigmoid(-b_s / sd_s)
    y = (sigmoid((r - b_s) / sd_s) - c_s) / (1 - c_s)  in [0, 1),  then mapped to [-1, 1).
The diagonal (s = 0, r = 0) maps to -1.

Fold: channel 0 = the upper-right 32x32 block (rows 0-31, columns 32-63); channel 1 = the strict
upper triangle of the top-left block plus, below its diagonal, the bottom-right block's upper
triangle turned by 180 degrees (ch1[i, j] = M[63 - i, 63 - j] for i > j); ch1's diagonal is -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SIZE = 64
HALF = SIZE // 2
_EDGE = 1e-6  # keeps logit finite at y = 0 or 1


def separation_index(size: int = SIZE) -> torch.Tensor:
    i = torch.arange(size)
    return (i[:, None] - i[None, :]).abs()


@dataclass
class Normalizer:
    """Per-separation statistics: mean_r[s], mean_r2[s] for s = 0..size-1 (s = 0 unused)."""

    mean_r: torch.Tensor
    mean_r2: torch.Tensor

    @classmethod
    def fit(cls, maps: torch.Tensor) -> Normalizer:
        """Statistics of training distance maps (N, size, size)."""
        maps = maps.double()
        size = maps.shape[-1]
        sep = separation_index(size)
        mean_r = torch.zeros(size, dtype=torch.float64)
        mean_r2 = torch.zeros(size, dtype=torch.float64)
        for s in range(1, size):
            values = maps[:, sep == s]
            mean_r[s] = values.mean()
            mean_r2[s] = (values**2).mean()
        return cls(mean_r, mean_r2)

    def state(self) -> dict:
        return {"mean_r": self.mean_r.clone(), "mean_r2": self.mean_r2.clone()}

    @classmethod
    def from_state(cls, state: dict) -> Normalizer:
        return cls(state["mean_r"].double(), state["mean_r2"].double())

    def _params(self, size: int, device, dtype):
        sep = separation_index(size).to(device)
        b = torch.sqrt(2 * self.mean_r2 / 3).to(device, dtype)[sep]
        sd = torch.sqrt((self.mean_r2 - self.mean_r**2).clamp_min(1e-12)).to(device, dtype)[sep]
        sd = torch.where(sep == 0, torch.ones_like(sd), sd)
        c = torch.sigmoid(-b / sd)
        return sep, b, sd, c

    def normalize(self, maps: torch.Tensor) -> torch.Tensor:
        """Distances (..., size, size) -> [-1, 1)."""
        sep, b, sd, c = self._params(maps.shape[-1], maps.device, maps.dtype)
        y = (torch.sigmoid((maps - b) / sd) - c) / (1 - c)
        y = 2 * y - 1
        return torch.where(sep == 0, -torch.ones_like(y), y)

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> distances (the diagonal becomes 0)."""
        sep, b, sd, c = self._params(values.shape[-1], values.device, values.dtype)
        y = ((values + 1) / 2).clamp(0, 1)
        p = (y * (1 - c) + c).clamp(_EDGE, 1 - _EDGE)
        r = b + sd * torch.logit(p)
        return torch.where(sep == 0, torch.zeros_like(r), r.clamp_min(0))


def _masks(device):
    i = torch.arange(HALF, device=device)
    upper = i[:, None] < i[None, :]
    lower = i[:, None] > i[None, :]
    return upper, lower


def fold(maps: torch.Tensor) -> torch.Tensor:
    """Symmetric (..., 64, 64) -> (..., 2, 32, 32)."""
    upper, lower = _masks(maps.device)
    top_left = maps[..., :HALF, :HALF]
    bottom_right_turned = maps[..., HALF:, HALF:].flip(-1, -2)
    ch1 = torch.where(upper, top_left, torch.where(lower, bottom_right_turned, torch.full_like(top_left, -1.0)))
    return torch.stack([maps[..., :HALF, HALF:], ch1], dim=-3)


def unfold(images: torch.Tensor) -> torch.Tensor:
    """(..., 2, 32, 32) -> symmetric (..., 64, 64) with diagonal -1 (the normalised s = 0 value)."""
    upper, lower = _masks(images.device)
    ch0, ch1 = images[..., 0, :, :], images[..., 1, :, :]
    diag = torch.full_like(ch1, -1.0)
    top_left = torch.where(upper, ch1, diag)
    top_left = torch.where(lower, ch1.transpose(-1, -2), top_left)
    turned = ch1.flip(-1, -2)  # bottom-right upper triangle sits at turned's upper triangle
    bottom_right = torch.where(upper, turned, diag)
    bottom_right = torch.where(lower, turned.transpose(-1, -2), bottom_right)
    top = torch.cat([top_left, ch0], dim=-1)
    bottom = torch.cat([ch0.transpose(-1, -2), bottom_right], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def encode(maps: torch.Tensor, normalizer: Normalizer) -> torch.Tensor:
    """Distance maps -> model images."""
    return fold(normalizer.normalize(maps))


def decode(images: torch.Tensor, normalizer: Normalizer) -> torch.Tensor:
    """Model images -> distance maps."""
    return normalizer.denormalize(unfold(images))
