"""Cosine noise schedule (1000 steps) and its buffers, in ChromoGen's names.

The 13 buffers are what ChromoGen's diffuser stores unprefixed in its checkpoint; we compute them
in float64 and keep float32 copies for a checkpoint.
"""

from __future__ import annotations

import math

import torch

TIMESTEPS = 1000
BUFFER_NAMES = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "loss_weight",
)


def cosine_betas(timesteps: int = TIMESTEPS, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule, betas clipped at 0.999 (float64)."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    f = torch.cos((x / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    f = f / f[0]
    return (1 - f[1:] / f[:-1]).clamp(0, 0.999)


def schedule_buffers(timesteps: int = TIMESTEPS, objective: str = "pred_v") -> dict[str, torch.Tensor]:
    """The 13 buffers (float64) for ``objective`` in {pred_noise, pred_x0, pred_v}."""
    betas = cosine_betas(timesteps)
    ac = torch.cumprod(1 - betas, 0)
    ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    post_var = betas * (1 - ac_prev) / (1 - ac)
    snr = ac / (1 - ac)
    weight = {"pred_noise": torch.ones_like(snr), "pred_x0": snr, "pred_v": snr / (snr + 1)}[objective]
    return {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": ac.sqrt(),
        "sqrt_one_minus_alphas_cumprod": (1 - ac).sqrt(),
        "log_one_minus_alphas_cumprod": torch.log(1 - ac),
        "sqrt_recip_alphas_cumprod": (1 / ac).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1 / ac - 1).sqrt(),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": torch.log(post_var.clamp(min=1e-20)),
        "posterior_mean_coef1": betas * ac_prev.sqrt() / (1 - ac),
        "posterior_mean_coef2": (1 - ac_prev) * (1 - betas).sqrt() / (1 - ac),
        "loss_weight": weight,
    }


def ddim_time_pairs(steps: int, timesteps: int = TIMESTEPS) -> list[tuple[int, int]]:
    """(t, t_next) pairs from T-1 down to -1 (ChromoGen's / lucidrains' spacing)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"DDIM steps must be in 1..{timesteps}, got {steps}")
    times = torch.linspace(-1, timesteps - 1, steps + 1).int().tolist()[::-1]
    return list(zip(times[:-1], times[1:]))
