"""A conditional U-Net of ChromoGen's family (lucidrains' classifier-free-guidance U-Net as
ChromoGen modified it), with its size from a config.

- ResNet blocks (3x3 conv, GroupNorm, SiLU) whose first block is modulated by a scale and shift
  computed by one Linear from [time embedding ; flattened region embedding] - no cross-attention.
- Linear attention at every level (pre-RMSNorm, residual) WITHOUT the v / (h*w) scaling that
  current lucidrains code has (ChromoGen's variant; ``scale_linear_attention_values`` turns it on).
- Full attention in the middle; sinusoidal time embedding -> MLP to 4 x dim.
- A learned null embedding replaces the region embedding for the unconditional pass
  (classifier-free guidance; dropped with probability ``cond_drop_prob`` in training).

Parameter names follow ChromoGen's checkpoint (``init_conv``, ``downs.{i}.{0,1}.block1.proj``,
``mid_attn.fn.fn.to_qkv``, ``null_classes_emb``, ``final_conv``, ...) so its weights load as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UNetConfig:
    dim: int = 16
    dim_mults: tuple[int, ...] = (1, 2, 4)
    channels: int = 2
    resnet_block_groups: int = 8
    attn_heads: int = 4
    attn_dim_head: int = 32
    embedding_shape: tuple[int, ...] = (2, 64)  # one region's conditioning tensor (flattened inside)
    cond_drop_prob: float = 0.5
    scale_linear_attention_values: bool = False  # ChromoGen: False

    @property
    def embedding_size(self) -> int:
        return int(math.prod(self.embedding_shape))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dim_mults"] = list(self.dim_mults)
        d["embedding_shape"] = list(self.embedding_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("dim_mults", "embedding_shape"):
            if key in known:
                known[key] = tuple(int(v) for v in known[key])
        return cls(**known)


CHROMOGEN_CONFIG = UNetConfig(dim=64, dim_mults=(1, 2, 4, 8), channels=2, embedding_shape=(256, 256))


CHANNELS_LAST = torch.channels_last


def pointwise_conv(dim: int, dim_out: int, bias: bool = True) -> nn.Conv2d:
    """A 1x1 convolution. The U-Net runs in channels-last layout, where oneDNN computes it with the
    same per-row result for any row count (in NCHW it does not: see ``Unet.forward``)."""
    return nn.Conv2d(dim, dim_out, 1, bias=bias)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) channels-last -> (B, H*W, C), a view (no copy)."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


def from_tokens(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W) in channels-last layout, a view (no copy)."""
    return t.unflatten(1, (h, w)).permute(0, 3, 1, 2)


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.g * math.sqrt(x.shape[1])


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = RMSNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        angles = t.float()[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Block(nn.Module):
    def __init__(self, dim: int, dim_out: int, groups: int):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)
        self.act = nn.SiLU()

    def forward(self, x, scale_shift=None):
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, cond_dim: int, groups: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, dim_out * 2))
        self.block1 = Block(dim, dim_out, groups)
        self.block2 = Block(dim_out, dim_out, groups)
        self.res_conv = pointwise_conv(dim, dim_out) if dim != dim_out else nn.Identity()

    def forward(self, x, cond, cond_rows=None):
        scale_shift = self.mlp(cond)
        if cond_rows is not None:  # computed once per distinct conditioning, then gathered per row
            scale_shift = scale_shift[cond_rows]
        scale_shift = scale_shift[:, :, None, None].chunk(2, dim=1)
        h = self.block2(self.block1(x, scale_shift))
        return h + self.res_conv(x)


class LinearAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, scale_values: bool):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        self.scale_values = scale_values
        hidden = heads * dim_head
        self.to_qkv = pointwise_conv(dim, hidden * 3, bias=False)
        self.to_out = nn.Sequential(pointwise_conv(hidden, dim), RMSNorm(dim))

    def forward(self, x):
        _, _, h, w = x.shape
        # token layout (B, N, heads, d): views of the channels-last tensors, no copies
        q, k, v = to_tokens(self.to_qkv(x)).unflatten(2, (3 * self.heads, -1)).chunk(3, dim=2)
        q = q.softmax(dim=-1) * self.scale  # over d
        k = k.softmax(dim=1)  # over positions
        if self.scale_values:
            v = v / (h * w)
        # per head, matrix products on strided views (no permuted copies): context = k^T v, out = q context
        heads = [torch.bmm(q[:, :, i], torch.bmm(k[:, :, i].transpose(1, 2), v[:, :, i])) for i in range(self.heads)]
        return self.to_out(from_tokens(torch.cat(heads, dim=2), h, w))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.scale = dim_head**-0.5
        self.heads = heads
        hidden = heads * dim_head
        self.to_qkv = pointwise_conv(dim, hidden * 3, bias=False)
        self.to_out = pointwise_conv(hidden, dim)

    def forward(self, x):
        _, _, h, w = x.shape
        q, k, v = to_tokens(self.to_qkv(x)).unflatten(2, (3 * self.heads, -1)).chunk(3, dim=2)
        attn = torch.einsum("bihd,bjhd->bhij", q * self.scale, k).softmax(dim=-1)
        out = torch.einsum("bhij,bjhd->bihd", attn, v)  # (b, n, heads, d)
        return self.to_out(from_tokens(out.flatten(2), h, w).contiguous(memory_format=CHANNELS_LAST))


class Downsample(nn.Conv2d):
    def __init__(self, dim: int, dim_out: int):
        super().__init__(dim, dim_out, 4, 2, 1)


def Upsample(dim: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim, dim_out, 3, padding=1))


class Unet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        c = config
        dim = c.dim
        self.channels = c.channels
        self.init_conv = nn.Conv2d(c.channels, dim, 7, padding=3)
        dims = [dim, *(dim * m for m in c.dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))
        time_dim = dim * 4
        self.time_mlp = nn.Sequential(
            SinusoidalPosEmb(dim), nn.Linear(dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim)
        )
        self.null_classes_emb = nn.Parameter(torch.randn(c.embedding_size))
        cond_dim = time_dim + c.embedding_size

        def block(a, b):
            return ResnetBlock(a, b, cond_dim, c.resnet_block_groups)

        def lin_attn(d):
            return Residual(
                PreNorm(d, LinearAttention(d, c.attn_heads, c.attn_dim_head, c.scale_linear_attention_values))
            )

        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            self.downs.append(
                nn.ModuleList(
                    [
                        block(d_in, d_in),
                        block(d_in, d_in),
                        lin_attn(d_in),
                        nn.Conv2d(d_in, d_out, 3, padding=1) if last else Downsample(d_in, d_out),
                    ]
                )
            )
        mid = dims[-1]
        self.mid_block1 = block(mid, mid)
        self.mid_attn = Residual(PreNorm(mid, Attention(mid, c.attn_heads, c.attn_dim_head)))
        self.mid_block2 = block(mid, mid)
        self.ups = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(reversed(in_out)):
            last = i == len(in_out) - 1
            self.ups.append(
                nn.ModuleList(
                    [
                        block(d_out + d_in, d_out),
                        block(d_out + d_in, d_out),
                        lin_attn(d_out),
                        nn.Conv2d(d_out, d_in, 3, padding=1) if last else Upsample(d_out, d_in),
                    ]
                )
            )
        self.final_res_block = block(dim * 2, dim)
        self.final_conv = pointwise_conv(dim, c.channels)

    def forward(
        self,
        x: torch.Tensor,
        time: torch.Tensor,
        embedding: torch.Tensor,
        use_null: torch.Tensor | None = None,
        cond_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, C, H, W), time (B,), embedding (B, *embedding_shape); rows where ``use_null`` is
        True get the learned null embedding instead (classifier-free guidance).

        With ``cond_rows`` (B,), ``time``/``embedding``/``use_null`` describe U distinct
        conditionings and row i uses conditioning ``cond_rows[i]``: the conditioning Linears (94 %
        of ChromoGen's weights) then run once per region instead of once per row, and a row's
        result does not depend on how many rows share its batch."""
        emb = embedding.reshape(embedding.shape[0], -1).to(x.dtype)
        if use_null is not None:
            emb = torch.where(use_null[:, None], self.null_classes_emb.to(x.dtype)[None, :], emb)
        cond = torch.cat([self.time_mlp(time), emb], dim=-1)
        c = cond_rows
        # Channels-last throughout: there every op's per-row result is the same for any even row
        # count (the sampler pads to one, sampler.ROW_MULTIPLE; test_diffusion_core checks it), so
        # chunks of any size give bitwise the same samples. In NCHW, a 1x1 convolution of fewer
        # than 16 rows takes PyTorch's im2col path and of more oneDNN's, which round differently.
        x = self.init_conv(x.contiguous(memory_format=CHANNELS_LAST))
        r = x
        skips = []
        for block1, block2, attn, down in self.downs:
            x = block1(x, cond, c)
            skips.append(x)
            x = attn(block2(x, cond, c))
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, cond, c)), cond, c)
        for block1, block2, attn, up in self.ups:
            x = block1(torch.cat([x, skips.pop()], dim=1), cond, c)
            x = attn(block2(torch.cat([x, skips.pop()], dim=1), cond, c))
            x = up(x)
        x = self.final_res_block(torch.cat([x, r], dim=1), cond, c)
        return self.final_conv(x).contiguous()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
