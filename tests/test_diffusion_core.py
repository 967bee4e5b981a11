"""The diffusion stage's building blocks: representation round trips, polymer ground truth,
schedule, seam projection, seeds independent of chunking, the memory model's chunk choice."""

import numpy as np
import pytest
import torch

from chromosched_pipeline.diffusion import memory, polymer, schedule, tiling
from chromosched_pipeline.diffusion import representation as rep
from chromosched_pipeline.diffusion.model import Unet, UNetConfig
from chromosched_pipeline.diffusion.sampler import Diffusion

torch.set_num_threads(1)


def _random_maps(n=6, beads=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, beads, 3, generator=g, dtype=torch.float64).cumsum(dim=1)
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")


def test_fold_unfold_round_trip_and_layout():
    maps = _random_maps()
    folded = rep.fold(maps)
    assert folded.shape == (6, 2, 32, 32)
    # channel 0 is the upper-right block; channel 1 holds the top-left and turned bottom-right triangles
    assert torch.equal(folded[:, 0], maps[:, :32, 32:])
    assert folded[0, 1, 3, 10] == maps[0, 3, 10]
    assert folded[0, 1, 10, 3] == maps[0, 63 - 10, 63 - 3]
    back = rep.unfold(folded)
    off = ~torch.eye(64, dtype=torch.bool)
    assert torch.equal(back[:, off], maps[:, off])
    assert torch.equal(rep.fold(back), folded)  # exact both ways


def test_normaliser_round_trip_and_range():
    maps = _random_maps(40)
    norm = rep.Normalizer.fit(maps)
    values = norm.normalize(maps)
    off = ~torch.eye(64, dtype=torch.bool)
    assert values[:, off].min() > -1 and values[:, off].max() < 1
    assert torch.all(values[:, ~off] == -1)
    assert torch.allclose(norm.denormalize(values), maps, atol=1e-9, rtol=0)
    # and the other way: any value in (-1, 1) survives denormalise -> normalise
    z = torch.rand(3, 64, 64, dtype=torch.float64) * 1.8 - 0.9
    z = (z + z.transpose(-1, -2)) / 2
    z[:, ~off] = -1
    assert torch.allclose(norm.normalize(norm.denormalize(z)), z, atol=1e-9)
    # the statistics survive a checkpoint round trip
    again = rep.Normalizer.from_state(norm.state())
    assert torch.equal(again.normalize(maps), values)


def test_schedule_buffers_and_ddim_pairs():
    bufs = schedule.schedule_buffers()
    assert tuple(bufs) == schedule.BUFFER_NAMES and len(bufs) == 13
    assert bufs["betas"].shape == (1000,) and 0 < bufs["alphas_cumprod"][-1] < 1e-4
    pairs = schedule.ddim_time_pairs(10)
    assert pairs[0][0] == 999 and pairs[-1][1] == -1 and len(pairs) == 10
    with pytest.raises(ValueError):
        schedule.ddim_time_pairs(0)


def test_site_track_is_per_chromosome_and_windows_share_overlaps():
    track = polymer.site_track("chr22", tiling.chain_beads(3), seed=5)
    assert np.array_equal(track, polymer.site_track("chr22", tiling.chain_beads(3), seed=5))
    assert not np.array_equal(track, polymer.site_track("chr21", tiling.chain_beads(3), seed=5))
    assert (track > 0).any() and not ((track[0] > 0) & (track[1] > 0)).any()  # one orientation per site
    a = polymer.window_embedding(track, 0).reshape(2, 64)
    b = polymer.window_embedding(track, tiling.STRIDE).reshape(2, 64)
    assert np.array_equal(a[:, tiling.STRIDE :], b[:, : tiling.OVERLAP])


def test_polymer_is_an_exact_gaussian_chain_and_loops_bring_anchors_together():
    track = polymer.site_track("t", 80, seed=1)
    bare = polymer.distance_maps(polymer.sample_conformations(track, 400, seed=2, loops=False)).double()
    for s in (1, 9, 30):
        r2 = bare.diagonal(offset=s, dim1=-2, dim2=-1).square().mean().item()
        assert abs(r2 / s - 1) < 0.12, (s, r2)  # <r^2> = s bond lengths^2 (400 cells x ~70 pairs)
    looped = polymer.distance_maps(polymer.sample_conformations(track, 400, seed=2)).double()
    assert looped.diagonal(offset=30, dim1=-2, dim2=-1).mean() < 0.9 * bare.diagonal(offset=30, dim1=-2, dim2=-1).mean()


def test_projection_makes_overlaps_equal_and_leaves_the_rest():
    maps = torch.stack([_random_maps(3, seed=i) for i in range(4)], dim=1)  # 3 chains x 4 tiles
    norm = rep.Normalizer.fit(maps.reshape(-1, 64, 64))
    x0 = rep.encode(maps.reshape(-1, 64, 64), norm).float()
    before = rep.decode(x0.double(), norm).reshape(3, 4, 64, 64)
    assert tiling.seam_discrepancy(before).min() > 0.1
    projected = tiling.project_overlaps(x0, norm, 4)
    after = rep.decode(projected.double(), norm).reshape(3, 4, 64, 64)
    assert tiling.seam_discrepancy(after).max() < 1e-4
    mean = (before[:, :-1, 52:, 52:] + before[:, 1:, :12, :12]) / 2
    assert torch.allclose(after[:, 1:, :12, :12], mean, atol=1e-4)
    inside = torch.ones(64, 64, dtype=torch.bool)
    inside[52:, 52:] = inside[:12, :12] = False
    assert torch.equal(
        projected.reshape(3, 4, 2, 32, 32)[:, :, 0, :20, :20], x0.reshape(3, 4, 2, 32, 32)[:, :, 0, :20, :20]
    )
    assert torch.allclose(after[..., inside], before[..., inside], atol=1e-4)


def _tiny_diffusion(seed=0):
    torch.manual_seed(seed)
    cfg = UNetConfig(dim=8, dim_mults=(1, 2), attn_heads=1, attn_dim_head=8, resnet_block_groups=4)
    return Diffusion(Unet(cfg).eval())


@pytest.mark.parametrize("mode,cond_scale,eta", [("independent", 1.0, 0.0), ("synced", 3.0, 0.5)])
def test_samples_do_not_depend_on_chunk_size(mode, cond_scale, eta):
    diffusion = _tiny_diffusion()
    maps = torch.stack([_random_maps(2, seed=i) for i in range(3)], dim=1)
    norm = rep.Normalizer.fit(maps.reshape(-1, 64, 64))
    emb = torch.rand(3, 2, 64)
    kw = dict(chrom="chrT", seed=11, steps=4, eta=eta, cond_scale=cond_scale, rescaled_phi=0.5, mode=mode)
    whole = tiling.sample_chains(diffusion, norm, emb, sample_ids=range(5), chunk_samples=None, **kw)
    ones = tiling.sample_chains(diffusion, norm, emb, sample_ids=range(5), chunk_samples=1, **kw)
    twos = tiling.sample_chains(diffusion, norm, emb, sample_ids=range(5), chunk_samples=2, **kw)
    tail = tiling.sample_chains(diffusion, norm, emb, sample_ids=[3, 4], chunk_samples=2, **kw)  # another job's part
    assert whole.shape == (5, 3, 64, 64)
    assert torch.equal(whole, ones) and torch.equal(whole, twos)  # bitwise: rows never see their neighbours
    assert torch.equal(whole[3:], tail)
    other = tiling.sample_chains(diffusion, norm, emb, sample_ids=range(5), chunk_samples=5, **{**kw, "seed": 12})
    assert not torch.allclose(whole, other, atol=1e-2)


def test_single_row_chunks_match_batched_sampling():
    """One tile, cond_scale 1, one chain per chunk: every forward has a single row (padded)."""
    diffusion = _tiny_diffusion(2)
    maps = torch.stack([_random_maps(2, seed=i) for i in range(1)], dim=1)
    norm = rep.Normalizer.fit(maps.reshape(-1, 64, 64))
    kw = dict(chrom="chrU", seed=3, steps=3, mode="independent")
    emb = torch.rand(1, 2, 64)
    whole = tiling.sample_chains(diffusion, norm, emb, sample_ids=range(5), chunk_samples=None, **kw)
    assert torch.equal(whole, tiling.sample_chains(diffusion, norm, emb, sample_ids=range(5), chunk_samples=1, **kw))


@pytest.mark.parametrize("threads", [1, 2])
def test_shipped_model_rows_do_not_depend_on_row_count(threads):
    """The U-Net itself (the shipped model's shapes): row i's output is bitwise the same in a forward
    of any number of rows, at any position - what makes chunked sampling identical."""
    from pathlib import Path

    from chromosched_pipeline.diffusion.checkpoint import load_checkpoint

    diffusion, _, _ = load_checkpoint(Path(__file__).resolve().parents[1] / "config" / "diffusion" / "small.pt")
    g = torch.Generator().manual_seed(5)
    total = 12
    x, emb = torch.randn(total, 2, 32, 32, generator=g), torch.rand(3, 2, 64, generator=g)
    times, rows = torch.full((3,), 640), torch.arange(total) % 3
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            whole = diffusion.forward_rows(x, times, emb, None, rows)
            for n in range(1, total):
                for lo in sorted({0, 1, total - n}):
                    part = diffusion.forward_rows(x[lo : lo + n], times, emb, None, rows[lo : lo + n])
                    assert torch.equal(part, whole[lo : lo + n]), (threads, n, lo)
    finally:
        torch.set_num_threads(before)


def test_synced_projected_final_step_has_no_seam():
    diffusion = _tiny_diffusion(1)
    maps = torch.stack([_random_maps(2, seed=i) for i in range(3)], dim=1)
    norm = rep.Normalizer.fit(maps.reshape(-1, 64, 64))
    kw = dict(chrom="c", sample_ids=range(2), seed=1, steps=3)
    emb = torch.rand(3, 2, 64)
    exact = tiling.sample_chains(diffusion, norm, emb, mode="synced", project_final=True, **kw)
    loose = tiling.sample_chains(diffusion, norm, emb, mode="independent", **kw)
    assert tiling.seam_discrepancy(exact).max() < 1e-3 < tiling.seam_discrepancy(loose).mean()


def test_chunk_choice_never_exceeds_the_allocation():
    rng = np.random.default_rng(3)
    for _ in range(500):
        model = memory.MemoryModel(a_mb=float(rng.uniform(50, 2000)), b_mb_per_row=float(rng.uniform(0.01, 40)))
        rows_each = int(rng.integers(1, 600))
        alloc = float(rng.uniform(100, 64000))
        total = int(rng.integers(1, 5000))
        try:
            chunk = memory.choose_chunk(model, alloc, rows_each, total)
        except memory.AllocationTooSmall:
            assert model.peak_mb(rows_each) > alloc * memory.HEADROOM
            continue
        assert 1 <= chunk <= total
        assert model.peak_mb(chunk * rows_each) <= alloc * memory.HEADROOM
        if chunk < total:  # the largest that fits
            assert model.peak_mb((chunk + 1) * rows_each) > alloc * memory.HEADROOM


def test_memory_model_fit_recovers_a_line():
    fitted = memory.MemoryModel.fit((10, 50), (300.0, 500.0))
    assert fitted.b_mb_per_row == pytest.approx(5.0) and fitted.a_mb == pytest.approx(250.0)
    assert memory.rows_per_sample(4, 1.0) == 4 and memory.rows_per_sample(4, 5.0) == 8


def test_process_peak_is_measured_and_resettable():
    """In a fresh process, as a sampling job measures itself (a long-lived pytest process keeps
    freed pages resident, which a new allocation may reuse without raising RSS)."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from chromosched_pipeline.diffusion import memory\n"
        "base = memory.measure_peak_mb(lambda: None)\n"
        "grown = memory.measure_peak_mb(lambda: torch.ones(96 * 2**20 // 4).add_(1))\n"
        "after = memory.measure_peak_mb(lambda: None)\n"
        "print(base, grown, after)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    base, grown, after = map(float, out.split())
    assert grown > base + 80  # the 96 MB tensor is seen
    assert after < grown - 80  # and the reset forgets it once it is freed


def test_shared_overlap_noise_is_consistent_and_keeps_other_draws():
    noise = torch.randn(2 * 3, 2, 32, 32, generator=torch.Generator().manual_seed(4))
    shared = tiling.share_overlap_noise(noise, 3)
    maps = rep.unfold(shared).reshape(2, 3, 64, 64)
    assert torch.equal(maps[:, :-1, 52:, 52:], maps[:, 1:, :12, :12])
    original = rep.unfold(noise).reshape(2, 3, 64, 64)
    assert torch.equal(maps[:, 0], original[:, 0])  # the first tile keeps all its draws
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[:12, :12] = False
    assert torch.equal(maps[:, 1:, outside], original[:, 1:, outside])
    d = torch.arange(32)
    assert torch.equal(shared[:, 1, d, d], noise[:, 1, d, d])


def test_train_writes_a_loadable_checkpoint_with_its_record(tmp_path):
    from chromosched_pipeline.diffusion.checkpoint import load_checkpoint
    from chromosched_pipeline.diffusion.train import train

    cfg = UNetConfig(dim=8, dim_mults=(1, 2), attn_heads=1, attn_dim_head=8, resnet_block_groups=4)
    info = train(
        tmp_path / "m.pt",
        cfg,
        data_seed=3,
        chromosomes=2,
        cells=4,
        windows_per_cell=2,
        batch=4,
        max_steps=3,
        log=lambda m: None,
    )
    assert info["steps"] == 3 and info["objective"] == "pred_v" and info["windows"] == 16
    diffusion, norm, meta = load_checkpoint(tmp_path / "m.pt")
    assert diffusion.objective == "pred_v" and norm is not None and meta["train"]["data_seed"] == 3
    assert (tmp_path / "m.loss.png").stat().st_size > 1000
    assert len((tmp_path / "m.loss.csv").read_text().splitlines()) == 4
