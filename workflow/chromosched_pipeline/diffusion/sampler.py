"""DDIM sampling with classifier-free guidance, many samples per forward.

- Guidance as ChromoGen: ``null + (cond - null) * cond_scale``, optionally rescaled to the
  conditional output's per-sample standard deviation and blended with weight ``rescaled_phi``.
  The conditional and unconditional rows go through ONE batched forward (2 x rows); with
  cond_scale == 1 only the conditional rows run.
- Deterministic seeds: every row (chromosome, tile, sample index) has its own generator, seeded
  from those three, which draws its initial noise and then its per-step noise in order. A row's
  trajectory therefore does not depend on which other rows share its chunk or job.
- ``step_hook(x0, t)`` lets tiling project the predicted x0 (seam-coherent mode) before the noise
  estimate is re-derived from it and the DDIM step is taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .polymer import stable_seed
from .schedule import TIMESTEPS, ddim_time_pairs, schedule_buffers

# Every forward runs a multiple of this many rows (an odd count gets one padding row, dropped
# after). On this CPU (oneDNN, channels-last U-Net) a row's result is then bitwise the same
# whatever the row count, at 1 and 2 threads: a single row takes other convolution kernels, and at
# 2 threads an odd count splits an image between the threads (measured: docs/diffusion.md).
ROW_MULTIPLE = 2


@dataclass
class Diffusion:
    """A trained U-Net with its objective and schedule. ``row_multiple``: see ROW_MULTIPLE (1 runs
    exactly the rows given, e.g. the benchmark's one-sample-per-forward baseline)."""

    model: torch.nn.Module
    objective: str = "pred_v"
    timesteps: int = TIMESTEPS
    row_multiple: int = ROW_MULTIPLE

    def __post_init__(self):
        self.alphas_cumprod = schedule_buffers(self.timesteps, self.objective)["alphas_cumprod"]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def guided_output(self, x, t: int, embedding, cond_rows, cond_scale: float = 1.0, rescaled_phi: float = 0.0):
        """Model output at integer time ``t`` with classifier-free guidance: the conditional and
        null rows go through one batched forward. ``embedding`` holds U distinct region
        embeddings and row i of ``x`` uses ``embedding[cond_rows[i]]``."""
        u = embedding.shape[0]
        if cond_scale == 1.0:
            times = torch.full((u,), t, device=x.device, dtype=torch.long)
            return self.forward_rows(x, times, embedding, None, cond_rows)
        n = x.shape[0]
        use_null = torch.cat([torch.zeros(u, dtype=torch.bool), torch.ones(u, dtype=torch.bool)]).to(x.device)
        times = torch.full((2 * u,), t, device=x.device, dtype=torch.long)
        both = self.forward_rows(
            torch.cat([x, x]), times, torch.cat([embedding, embedding]), use_null, torch.cat([cond_rows, cond_rows + u])
        )
        cond, null = both[:n], both[n:]
        scaled = null + (cond - null) * cond_scale
        if rescaled_phi == 0.0:
            return scaled
        dims = tuple(range(1, scaled.ndim))
        rescaled = scaled * (cond.std(dim=dims, keepdim=True) / scaled.std(dim=dims, keepdim=True))
        return rescaled * rescaled_phi + scaled * (1.0 - rescaled_phi)

    def forward_rows(self, x, times, embedding, use_null, cond_rows):
        """The U-Net on rows ``x``, padded to a multiple of ``row_multiple`` rows (copies of the last
        row, dropped from the result)."""
        n = x.shape[0]
        pad = -n % self.row_multiple
        if pad:
            x = torch.cat([x, x[-1:].expand(pad, *x.shape[1:])])
            cond_rows = torch.cat([cond_rows, cond_rows[-1:].expand(pad)])
        return self.model(x, times, embedding, use_null, cond_rows)[:n]

    def split(self, output, x, t: int):
        """(eps, x0) from the model output at integer time ``t``; x0 clipped to [-1, 1]."""
        a = float(self.alphas_cumprod[t])
        sa, s1a = a**0.5, (1 - a) ** 0.5
        if self.objective == "pred_noise":
            x0 = (x - s1a * output) / sa
        elif self.objective == "pred_x0":
            x0 = output
        elif self.objective == "pred_v":
            x0 = sa * x - s1a * output
        else:
            raise ValueError(f"unknown objective {self.objective}")
        x0 = x0.clamp(-1, 1)
        return self.noise_from_x0(x, x0, t), x0

    def noise_from_x0(self, x, x0, t: int):
        a = float(self.alphas_cumprod[t])
        return (x - a**0.5 * x0) / (1 - a) ** 0.5


def row_generators(chrom: str, tiles: Sequence[int], samples: Sequence[int], seed: int) -> list[torch.Generator]:
    """One CPU generator per (tile, sample) row, seeded from (seed, chromosome, tile, sample)."""
    gens = []
    for tile, sample in zip(tiles, samples):
        g = torch.Generator()
        g.manual_seed(stable_seed("ddim", seed, chrom, int(tile), int(sample)))
        gens.append(g)
    return gens


def row_noise(gens: list[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in gens])


@torch.no_grad()
def ddim_sample(
    diffusion: Diffusion,
    embedding: torch.Tensor,
    gens: list[torch.Generator],
    cond_rows: torch.Tensor | None = None,
    steps: int = 50,
    eta: float = 0.0,
    cond_scale: float = 1.0,
    rescaled_phi: float = 0.0,
    image_shape: tuple[int, ...] = (2, 32, 32),
    step_hook: Callable[[torch.Tensor, int, bool], torch.Tensor] | None = None,
    noise_hook: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Sample len(gens) images (rows), row i conditioned on ``embedding[cond_rows[i]]`` (default:
    one embedding per row), DDIM with
    ``steps`` steps and ``eta``; returns x0 on the CPU. ``step_hook(x0, t, final)`` may replace
    the predicted x0 at every step (``final`` is True at the last one); ``noise_hook(noise)`` may
    rewrite every noise draw (initial and per step) before use."""
    device = diffusion.device
    fresh = (
        (lambda: row_noise(gens, image_shape))
        if noise_hook is None
        else (lambda: noise_hook(row_noise(gens, image_shape)))
    )
    x = fresh().to(device)
    embedding = embedding.to(device)
    cond_rows = (torch.arange(len(gens)) if cond_rows is None else cond_rows).to(device)
    ac = diffusion.alphas_cumprod
    for t, t_next in ddim_time_pairs(steps, diffusion.timesteps):
        output = diffusion.guided_output(x, t, embedding, cond_rows, cond_scale, rescaled_phi)
        eps, x0 = diffusion.split(output, x, t)
        if step_hook is not None:
            projected = step_hook(x0, t, t_next < 0)
            if projected is not x0:
                x0 = projected
                eps = diffusion.noise_from_x0(x, x0, t)
        if t_next < 0:
            x = x0
            break
        a, a_next = float(ac[t]), float(ac[t_next])
        sigma = eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)) ** 0.5
        c = max(0.0, 1 - a_next - sigma**2) ** 0.5
        x = x0 * a_next**0.5 + c * eps
        if sigma > 0:
            x = x + sigma * fresh().to(device)
    return x.float().cpu()
