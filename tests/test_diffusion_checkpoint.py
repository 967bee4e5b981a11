"""ChromoGen-format checkpoints: the loader against files written by hand in that format (the
full ChromoGen shape: names and shapes without materialising it, and a value-level round trip of a
randomly initialised full-size model, ~16 s and ~5 GB peak; a reduced variant with our writer too),
and one-line errors for bad input."""

import subprocess
import sys

import pytest
import torch

from chromosched_pipeline.diffusion import polymer
from chromosched_pipeline.diffusion.checkpoint import (
    DiffusionInputError,
    load_checkpoint,
    load_region_embedding,
    save_checkpoint,
    unet_config_from_chromogen,
)
from chromosched_pipeline.diffusion.model import CHROMOGEN_CONFIG, Unet, UNetConfig, parameter_count
from chromosched_pipeline.diffusion.representation import Normalizer
from chromosched_pipeline.diffusion.schedule import BUFFER_NAMES, schedule_buffers

torch.set_num_threads(1)

# ChromoGen's own unet_config names (lucidrains' constructor arguments)
CHROMOGEN_UNET_CONFIG = {
    "dim": 64,
    "dim_mults": (1, 2, 4, 8),
    "channels": 2,
    "resnet_block_groups": 8,
    "attn_dim_head": 32,
    "attn_heads": 4,
    "cond_drop_prob": 0.5,
    "embedding_dimensions": (1, 256, 256),
}

EXPECTED_SHAPES = {  # a few parameters of ChromoGen's U-Net, as its checkpoint names them
    "model.init_conv.weight": (64, 2, 7, 7),
    "model.null_classes_emb": (65536,),
    "model.time_mlp.1.weight": (256, 64),
    "model.downs.0.0.mlp.1.weight": (128, 256 + 65536),
    "model.downs.0.0.block1.proj.weight": (64, 64, 3, 3),
    "model.downs.0.2.fn.fn.to_qkv.weight": (384, 64, 1, 1),
    "model.downs.0.2.fn.fn.to_out.1.g": (1, 64, 1, 1),
    "model.downs.0.3.weight": (64, 64, 4, 4),
    "model.downs.3.3.weight": (512, 256, 3, 3),
    "model.mid_attn.fn.fn.to_qkv.weight": (384, 512, 1, 1),
    "model.mid_attn.fn.norm.g": (1, 512, 1, 1),
    "model.ups.0.0.block1.proj.weight": (512, 768, 3, 3),
    "model.ups.0.0.res_conv.weight": (512, 768, 1, 1),
    "model.ups.0.3.1.weight": (256, 512, 3, 3),
    "model.final_res_block.mlp.1.weight": (128, 256 + 65536),
    "model.final_conv.weight": (2, 64, 1, 1),
}


def _chromogen_file(path, unet_config, make_tensor, drop=None, reshape=None):
    """Write a checkpoint in ChromoGen's layout by hand (not with our writer)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Unet(_our_config(unet_config)).state_dict().items()}
    state = {
        f"model.{k}": make_tensor(tuple(reshape if k == drop and reshape else s))
        for k, s in shapes.items()
        if not (k == drop and reshape is None)
    }
    state.update({k: v.float() for k, v in schedule_buffers(1000, "pred_noise").items()})
    state["embedder.some.weight"] = torch.zeros(1)  # ChromoGen's diffuser may carry its front end
    torch.save(
        {
            "unet_config": unet_config,
            "diffusion_config": {"objective": "pred_noise", "timesteps": 1000},
            "model": state,
            "epcot_config": {},
            "state_dict": {},
        },
        path,
    )
    return state


def _our_config(unet_config):
    from chromosched_pipeline.diffusion.checkpoint import unet_config_from_chromogen

    return unet_config_from_chromogen(unet_config)


def test_full_chromogen_shape_loads_without_materialising(tmp_path):
    with torch.device("meta"):
        big = Unet(CHROMOGEN_CONFIG)
    assert 560e6 < parameter_count(big) < 570e6  # ~565 M, 94 % in the conditioning Linears
    cond = sum(p.numel() for n, p in big.named_parameters() if n.endswith("mlp.1.weight"))
    assert 0.93 < cond / parameter_count(big) < 0.95
    # zero-stride tensors: the file is tiny but every parameter has ChromoGen's full shape
    state = _chromogen_file(tmp_path / "chromogen.pt", CHROMOGEN_UNET_CONFIG, lambda s: torch.zeros(1).expand(s))
    for key, shape in EXPECTED_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert (tmp_path / "chromogen.pt").stat().st_size < 5e6
    diffusion, normalizer, meta = load_checkpoint(tmp_path / "chromogen.pt", device="meta")
    assert diffusion.objective == "pred_noise" and normalizer is None
    assert diffusion.model.config.embedding_shape == (256, 256)
    loaded = dict(diffusion.model.named_parameters())
    assert set(f"model.{k}" for k in loaded) == {k for k in state if k.startswith("model.")}
    assert all(tuple(loaded[k[6:]].shape) == tuple(v.shape) for k, v in state.items() if k.startswith("model."))
    assert sum(1 for k in state if not k.startswith(("model.", "embedder."))) == len(BUFFER_NAMES) == 13


def test_full_size_chromogen_round_trip(tmp_path):
    """ChromoGen's exact U-Net (dim 64, mults 1,2,4,8, 256 x 256 embedding, its linear attention),
    randomly initialised, written in chromogen.pt's layout by hand with its schedule buffers (2.3 GB),
    loaded back by our loader: every tensor equal, and the same forward output."""
    torch.manual_seed(0)
    model = Unet(unet_config_from_chromogen(CHROMOGEN_UNET_CONFIG)).eval()
    assert 560e6 < parameter_count(model) < 570e6 and not model.config.scale_linear_attention_values
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    buffers = {k: v.float() for k, v in schedule_buffers(1000, "pred_noise").items()}
    path = tmp_path / "chromogen.pt"
    torch.save(
        {
            "unet_config": CHROMOGEN_UNET_CONFIG,
            "diffusion_config": {"objective": "pred_noise", "timesteps": 1000},
            "model": {**state, **buffers, "embedder.some.weight": torch.zeros(1)},
            "epcot_config": {},
            "state_dict": {},
        },
        path,
    )
    try:
        diffusion, _, _ = load_checkpoint(path)
    finally:
        path.unlink()  # 2.3 GB: not left in pytest's kept temporary directories
    loaded = diffusion.model.state_dict()
    assert set(f"model.{k}" for k in loaded) == set(state)
    for name, tensor in loaded.items():
        assert torch.equal(tensor, state[f"model.{name}"]), name
    assert diffusion.objective == "pred_noise"
    assert torch.equal(diffusion.alphas_cumprod.float(), buffers["alphas_cumprod"])
    g = torch.Generator().manual_seed(1)
    x, emb = torch.randn(2, 2, 32, 32, generator=g), torch.rand(2, 256, 256, generator=g)
    t, use_null = torch.tensor([10, 900]), torch.tensor([False, True])
    with torch.no_grad():
        expected = model(x, t, emb, use_null)
        assert torch.isfinite(expected).all()
        assert torch.equal(diffusion.model(x, t, emb, use_null), expected)


def test_round_trip_of_a_reduced_chromogen_variant(tmp_path):
    config = dict(CHROMOGEN_UNET_CONFIG, embedding_dimensions=(1, 8, 8))  # same U-Net, 64-value embedding
    gen = torch.Generator().manual_seed(0)
    state = _chromogen_file(tmp_path / "small.pt", config, lambda s: torch.randn(s, generator=gen) * 0.05)
    diffusion, _, _ = load_checkpoint(tmp_path / "small.pt")
    for name, p in diffusion.model.state_dict().items():
        assert torch.equal(p, state[f"model.{name}"]), name
    assert torch.equal(diffusion.alphas_cumprod.float(), state["alphas_cumprod"])
    # our writer and loader agree too, and the loaded model computes what the saved one did
    ours = Unet(UNetConfig(dim=8, dim_mults=(1, 2), attn_heads=1, attn_dim_head=8, resnet_block_groups=4)).eval()
    maps = polymer.distance_maps(polymer.sample_conformations(polymer.site_track("c", 64, 1), 8, 1))
    save_checkpoint(tmp_path / "ours.pt", ours, "pred_v", Normalizer.fit(maps))
    again, norm, _ = load_checkpoint(tmp_path / "ours.pt")
    x, t, e = torch.randn(3, 2, 32, 32), torch.tensor([5, 500, 999]), torch.rand(3, 2, 64)
    with torch.no_grad():
        assert torch.equal(ours(x, t, e), again.model(x, t, e))
    assert torch.equal(norm.normalize(maps), Normalizer.fit(maps).normalize(maps))


def test_wrong_shape_checkpoint_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "wrong.pt"
    _chromogen_file(
        path,
        CHROMOGEN_UNET_CONFIG,
        lambda s: torch.zeros(1).expand(s),
        drop="downs.0.0.mlp.1.weight",
        reshape=(128, 256 + 128),
    )
    with pytest.raises(DiffusionInputError) as err:
        load_checkpoint(path, device="meta")
    message = str(err.value)
    assert str(path) in message and "downs.0.0.mlp.1.weight" in message and "\n" not in message
    missing = tmp_path / "missing.pt"
    _chromogen_file(missing, CHROMOGEN_UNET_CONFIG, lambda s: torch.zeros(1).expand(s), drop="final_conv.bias")
    with pytest.raises(DiffusionInputError, match="missing parameter model.final_conv.bias"):
        load_checkpoint(missing, device="meta")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(DiffusionInputError, match="junk.pt: not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_region_embedding_files(tmp_path):
    torch.save(torch.rand(256, 256), tmp_path / "tile0.pt")
    assert load_region_embedding(tmp_path / "tile0.pt", (256, 256)).shape == (256, 256)
    with pytest.raises(DiffusionInputError, match="tile1.pt: no such region embedding file"):
        load_region_embedding(tmp_path / "tile1.pt", (256, 256))
    with pytest.raises(DiffusionInputError, match=r"tile0.pt: embedding has shape \(256, 256\)"):
        load_region_embedding(tmp_path / "tile0.pt", (2, 64))


def test_cli_bad_input_is_one_line_naming_the_file(tmp_path):
    small = Unet(UNetConfig(dim=8, dim_mults=(1, 2), attn_heads=1, attn_dim_head=8, resnet_block_groups=4))
    maps = polymer.distance_maps(polymer.sample_conformations(polymer.site_track("c", 64, 1), 8, 1))
    save_checkpoint(tmp_path / "m.pt", small, "pred_v", Normalizer.fit(maps))
    (tmp_path / "emb" / "chr22").mkdir(parents=True)
    torch.save(torch.rand(2, 64), tmp_path / "emb" / "chr22" / "tile0.pt")  # tile1 missing
    base = [
        sys.executable,
        "-m",
        "chromosched_pipeline.diffusion",
        "sample",
        "--chrom",
        "chr22",
        "--tiles",
        "2",
        "--last",
        "1",
        "--steps",
        "2",
        "--mem-mb",
        "4000",
        "--out",
        str(tmp_path / "o.npz"),
    ]
    run = subprocess.run(
        base + ["--checkpoint", str(tmp_path / "m.pt"), "--embeddings-dir", str(tmp_path / "emb")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"chromosched diffusion: error: {tmp_path / 'emb' / 'chr22' / 'tile1.pt'}: no such region embedding file"
    ]
    wrong = tmp_path / "wrong.pt"
    _chromogen_file(
        wrong,
        dict(CHROMOGEN_UNET_CONFIG, embedding_dimensions=(1, 8, 8)),
        lambda s: torch.zeros(1).expand(s),
        drop="mid_block1.block1.proj.weight",
        reshape=(512, 512, 1, 1),
    )
    run = subprocess.run(base + ["--checkpoint", str(wrong)], capture_output=True, text=True)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1
    assert str(wrong) in lines[0] and "model.mid_block1.block1.proj.weight has shape (512, 512, 1, 1)" in lines[0]
    assert not (tmp_path / "o.npz").exists()
