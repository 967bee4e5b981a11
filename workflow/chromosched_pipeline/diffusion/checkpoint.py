"""Checkpoints in ChromoGen's format, for our small model and for ChromoGen's own ``chromogen.pt``.

The format (a ``torch.save`` dict):
    unet_config       the U-Net's constructor arguments (dim, dim_mults, channels, ...)
    diffusion_config  objective, timesteps, ...
    model             the diffuser's state: U-Net weights prefixed ``model.`` plus the 13 unprefixed
                      schedule buffers (betas, alphas_cumprod, ...); ChromoGen's file may also hold
                      ``embedder.*`` (its EPCOT front end), which sampling from user-supplied
                      embeddings does not need
Ours adds ``normalizer`` (per-separation statistics, see representation.py) and ``train`` (how
it was made). ChromoGen's file carries no normaliser statistics: pass them separately.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..vcfio import atomic_outputs
from .model import Unet, UNetConfig
from .representation import Normalizer
from .sampler import Diffusion
from .schedule import BUFFER_NAMES, TIMESTEPS, schedule_buffers

OBJECTIVES = {"pred_noise", "pred_x0", "pred_v"}


class DiffusionInputError(ValueError):
    """Bad user input (a checkpoint, an embedding file): the message is one line naming the file."""


def unet_config_from_chromogen(raw: dict) -> UNetConfig:
    """Our UNetConfig from a checkpoint's ``unet_config`` (ChromoGen's names or ours)."""
    d = dict(raw)
    if "embedding_dimensions" in d and "embedding_shape" not in d:
        shape = [int(v) for v in d.pop("embedding_dimensions")]
        d["embedding_shape"] = shape[1:] if len(shape) == 3 and shape[0] == 1 else shape
    return UNetConfig.from_dict(d)


def save_checkpoint(
    path: str | os.PathLike,
    model: Unet,
    objective: str,
    normalizer: Normalizer | None,
    extra: dict | None = None,
    timesteps: int = TIMESTEPS,
) -> None:
    """Write ``model`` in ChromoGen's dict format (atomically)."""
    state = {f"model.{k}": v.detach().cpu() for k, v in model.state_dict().items()}
    state.update({k: v.float() for k, v in schedule_buffers(timesteps, objective).items()})
    payload = {
        "unet_config": model.config.to_dict(),
        "diffusion_config": {
            "objective": objective,
            "timesteps": timesteps,
            "beta_schedule": "cosine",
            "image_size": 32,
        },
        "model": state,
    }
    if normalizer is not None:
        payload["normalizer"] = normalizer.state()
    payload.update(extra or {})
    with atomic_outputs(path) as (tmp,):
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", normalizer_path: str | os.PathLike | None = None
) -> tuple[Diffusion, Normalizer | None, dict]:
    """(diffusion, normaliser or None, the raw dict without weights) from a ChromoGen-format file.

    Every U-Net weight must be present with the shape the file's own ``unet_config`` implies;
    anything else is a :class:`DiffusionInputError` naming the file and the first mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise DiffusionInputError(f"{path}: no such checkpoint file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unreadable / not a torch file
        raise DiffusionInputError(
            f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})".splitlines()[0]
        ) from None
    if not isinstance(raw, dict) or not {"unet_config", "model"} <= set(raw):
        raise DiffusionInputError(f"{path}: not a ChromoGen-format checkpoint (needs unet_config and model)")
    try:
        config = unet_config_from_chromogen(raw["unet_config"])
    except (TypeError, ValueError) as err:
        raise DiffusionInputError(f"{path}: bad unet_config ({err})") from None
    diffusion_config = dict(raw.get("diffusion_config") or {})
    objective = diffusion_config.get("objective", "pred_noise")
    if objective not in OBJECTIVES:
        raise DiffusionInputError(f"{path}: unknown diffusion objective {objective!r}")
    state = raw["model"]
    with torch.device("meta"):
        expected = {k: v.shape for k, v in Unet(config).state_dict().items()}
    weights = {}
    for key, shape in expected.items():
        tensor = state.get(f"model.{key}")
        if tensor is None:
            raise DiffusionInputError(f"{path}: missing parameter model.{key}")
        if tuple(tensor.shape) != tuple(shape):
            raise DiffusionInputError(
                f"{path}: parameter model.{key} has shape {tuple(tensor.shape)}, "
                f"the U-Net of its unet_config needs {tuple(shape)}"
            )
        weights[key] = tensor
    unexpected = [k for k in state if k.startswith("model.") and k[len("model.") :] not in expected]
    if unexpected:
        raise DiffusionInputError(f"{path}: unexpected parameter {unexpected[0]} for its unet_config")
    missing_buffers = [b for b in BUFFER_NAMES if b not in state]
    if missing_buffers:
        raise DiffusionInputError(f"{path}: missing schedule buffer {missing_buffers[0]}")
    timesteps = int(state["betas"].shape[0])
    with torch.device("meta"):  # no second copy of the weights: the loaded tensors become the parameters
        model = Unet(config)
    model.load_state_dict(weights, assign=True)
    model.eval()
    if str(device) != "meta":
        model.to(device)
    diffusion = Diffusion(model, objective=objective, timesteps=timesteps)
    diffusion.alphas_cumprod = state["alphas_cumprod"].double()  # the file's schedule, not a recomputed one
    normalizer = Normalizer.from_state(raw["normalizer"]) if "normalizer" in raw else None
    if normalizer_path is not None:
        normalizer = load_normalizer(normalizer_path)
    meta = {k: v for k, v in raw.items() if k != "model"}
    return diffusion, normalizer, meta


def load_normalizer(path: str | os.PathLike) -> Normalizer:
    path = Path(path)
    if not path.is_file():
        raise DiffusionInputError(f"{path}: no such normaliser file")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or not {"mean_r", "mean_r2"} <= set(raw):
        raise DiffusionInputError(f"{path}: a normaliser file holds mean_r and mean_r2 (per separation)")
    return Normalizer.from_state(raw)


def load_region_embedding(path: str | os.PathLike, shape: tuple[int, ...]) -> torch.Tensor:
    """One region's conditioning tensor from a user file (torch.save of a tensor, or .npy)."""
    path = Path(path)
    if not path.is_file():
        raise DiffusionInputError(f"{path}: no such region embedding file")
    try:
        if path.suffix == ".npy":
            import numpy as np

            tensor = torch.from_numpy(np.load(path))
        else:
            tensor = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DiffusionInputError(f"{path}: not a readable tensor file ({type(err).__name__})") from None
    if not isinstance(tensor, torch.Tensor):
        raise DiffusionInputError(f"{path}: holds a {type(tensor).__name__}, not a tensor")
    n = 1
    for s in shape:
        n *= s
    if tensor.numel() != n:
        raise DiffusionInputError(f"{path}: embedding has shape {tuple(tensor.shape)}, the model needs {tuple(shape)}")
    return tensor.reshape(shape).float()
