"""Pure math of model_patches/flow/: TV-L1 flow, occlusion, splatting, interpolation, scene cuts."""
from __future__ import annotations

import pytest
import torch
from skimage import data


@pytest.fixture(scope="module")
def fl(pack):
    from types import SimpleNamespace

    from coherent_video.model_patches.flow import scene_cuts, tvl1, upsample, warp

    return SimpleNamespace(tvl1=tvl1, warp=warp, scene_cuts=scene_cuts, upsample=upsample)


def _img(name="astronaut"):
    return torch.from_numpy(getattr(data, name)()[..., :3].copy()).permute(2, 0, 1).float().div(255)


def crop(img, y, x, h=64, w=64):
    return img[:, y:y + h, x:x + w].unsqueeze(0)


def psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def test_gradient_divergence_adjoint(fl):
    """IPOL 2013 eqs. 8-9: <grad u, p> = -<u, div p> (for p vanishing on the last column/row)."""
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 1, 9, 11, generator=g)
    p = torch.randn(2, 1, 2, 9, 11, generator=g)
    p[..., 0, :, -1] = 0
    p[..., 1, -1, :] = 0
    lhs = (fl.tvl1.forward_gradient(u) * p).sum()
    rhs = -(u * fl.tvl1.divergence(p)).sum()
    assert torch.allclose(lhs, rhs, atol=1e-4)


def test_tvl1_level_step_minimises_pointwise_energy(fl):
    """The real step in tvl1_level (issue 10: the old test checked a helper production never called).

    With one warp, one iteration, no median filter and the dual variable starting at 0, tvl1_level returns
    exactly the thresholding step v of Zach et al. 2007 Prop. 1: the minimiser, per pixel, of
    |v - u|^2 / (2 theta) + lambda |rho(v)| with rho(v) = I1(x + u0) + grad I1 . (v - u0) - I0(x)."""
    import dataclasses

    g = torch.Generator().manual_seed(3)
    i0 = torch.rand(1, 1, 12, 14, generator=g)
    i1 = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 12, 14, generator=g), 3, 1, 1, count_include_pad=False)
    u0 = 0.5 * torch.randn(1, 2, 12, 14, generator=g)
    params = dataclasses.replace(fl.tvl1.PRESETS["balanced"], median=0, median_inner=0, lam=5.0)
    v = fl.tvl1.tvl1_level(i0, i1, u0, params, warps=1, iters=1)
    warped = fl.warp.backward_warp(torch.cat([i1, fl.tvl1.central_gradient(i1)[:, 0]], 1), u0)
    i1w, grad = warped[:, :1], warped[:, 1:]
    lt, theta = params.lam * params.theta, params.theta

    def energy(w):
        rho = i1w + (grad * (w - u0)).sum(1, keepdim=True) - i0
        return ((w - u0) ** 2).sum(1) / (2 * theta) + (lt / theta) * rho.abs()[:, 0]

    e = energy(v)
    assert (v - u0).abs().max() > 1e-3  # it moved
    for dx in (-0.02, 0.0, 0.02):
        for dy in (-0.02, 0.0, 0.02):
            d = torch.tensor([dx, dy]).view(1, 2, 1, 1)
            assert bool((e <= energy(v + d) + 1e-6).all()), (dx, dy)


def test_estimate_flow_recovers_translation(fl):
    img = _img()
    a = crop(img, 200, 200, 80, 80)
    b = crop(img, 200 + 2, 200 - 3, 80, 80)  # content moves by (+3, -2): flow01 = (3, -2)
    flow = fl.tvl1.estimate_flow(torch.cat([a, b]), torch.cat([b, a]), "fast")
    inner = flow[..., 8:-8, 8:-8]
    assert (inner[0, 0].mean() - 3.0).abs() < 0.2 and (inner[0, 1].mean() + 2.0).abs() < 0.2
    assert (inner[1, 0].mean() + 3.0).abs() < 0.2 and (inner[1, 1].mean() - 2.0).abs() < 0.2
    assert float((inner[0] - torch.tensor([3.0, -2.0]).view(2, 1, 1)).norm(dim=0).mean()) < 0.3


def test_fb_consistency_flags_inconsistent_flow(fl):
    f = torch.zeros(1, 2, 16, 16)
    f[:, 0] = 2.0
    assert fl.warp.fb_consistency(f, -f).min() == 1.0
    bad = -f.clone()
    bad[..., 4:8, :] = 5.0
    vis = fl.warp.fb_consistency(f, bad)
    assert vis[..., 4:8, 2:10].max() == 0.0 and vis[..., 10:, :].min() == 1.0


def test_softmax_splat_moves_and_resolves_by_z(fl):
    x = torch.arange(16.0).view(1, 1, 4, 4)
    s, w = fl.warp.softmax_splat(x, torch.zeros(1, 2, 4, 4))
    assert torch.equal(s / w, x)
    f = torch.zeros(1, 2, 4, 4)
    f[:, 0] = 1.0
    s, w = fl.warp.softmax_splat(x, f)
    assert torch.equal((s / w.clamp_min(1e-6))[..., 1:], x[..., :3]) and w[..., 0].max() == 0
    # two pixels land on the same target: the higher z wins (Niklaus & Liu 2020 eq. 4)
    v = torch.tensor([[[[1.0, 2.0]]]])
    f = torch.tensor([[[[0.0, -1.0]], [[0.0, 0.0]]]])
    z = torch.tensor([[[[0.0, 20.0]]]])
    s, w = fl.warp.softmax_splat(v, f, z)
    assert abs(float(s[0, 0, 0, 0] / w[0, 0, 0, 0]) - 2.0) < 1e-6


def test_fill_holes_fills_from_neighbours(fl):
    v = torch.ones(1, 1, 8, 8) * 3.0
    w = torch.ones(1, 1, 8, 8)
    w[..., 3:5, 3:5] = 0
    out = fl.warp.fill_holes(v * w, w)
    assert torch.allclose(out, torch.full_like(out, 3.0), atol=1e-5)


@pytest.mark.parametrize("occ", ["visibility_warp", "softmax_splat", "off"])
def test_interpolate_midpoint_of_translation(fl, occ):
    img = _img()
    a, b = crop(img, 150, 150), crop(img, 150, 154)  # content moves 4 px left
    mid = crop(img, 150, 152)
    f01 = torch.zeros(1, 2, 64, 64)
    f01[:, 0] = -4.0
    out = fl.warp.interpolate(a, b, f01, -f01, torch.tensor([0.5]), occ)[:, 0]
    assert psnr(out[..., 6:-6, 6:-6], mid[..., 6:-6, 6:-6]) > 32
    blend = (a + b) / 2
    assert psnr(out[..., 6:-6, 6:-6], mid[..., 6:-6, 6:-6]) > psnr(blend[..., 6:-6, 6:-6], mid[..., 6:-6, 6:-6]) + 8


def test_interpolate_handles_occlusion_better_than_linear(fl):
    """A square moving over a static background: occlusion-aware modes beat the linear 'off' mode."""
    bg = _img("coffee")[:, 100:164, 100:164]
    fg = _img("astronaut")[:, 180:196, 200:216]

    def frame(x):
        f = bg.clone()
        f[:, 24:40, x:x + 16] = fg
        return f.unsqueeze(0)

    a, b, mid = frame(16), frame(32), frame(24)
    f01 = torch.zeros(1, 2, 64, 64)
    f01[:, 0, 24:40, 16:32] = 16.0
    f10 = torch.zeros(1, 2, 64, 64)
    f10[:, 0, 24:40, 32:48] = -16.0
    scores = {occ: psnr(fl.warp.interpolate(a, b, f01, f10, torch.tensor([0.5]), occ)[:, 0], mid)
              for occ in fl.warp.OCCLUSION_MODES}
    assert scores["visibility_warp"] > 30 and scores["softmax_splat"] > 30
    assert scores["visibility_warp"] > scores["off"] + 3


def test_output_times(fl):
    k, t = fl.upsample.output_times(4, multiplier=3)
    assert k.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert torch.allclose(t, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], dtype=torch.float64) / 3)
    k, t = fl.upsample.output_times(3, source_fps=24, target_fps=60)  # step 0.4: 0, .4, .8, 1.2, 1.6, 2.0
    assert k.tolist() == [0, 0, 0, 1, 1, 2]
    assert torch.allclose(t, torch.tensor([0, .4, .8, .2, .6, 0], dtype=torch.float64), atol=1e-9)


def test_scene_cuts(fl):
    img, other = _img(), _img("coffee")
    frames = torch.cat([crop(img, 100, 100), crop(img, 100, 103), crop(other, 100, 100), crop(other, 101, 100)])
    assert fl.scene_cuts.detect_scene_cuts(frames).tolist() == [False, True, False]


def test_upsample_video_keeps_originals_and_chunks_agree(fl):
    img = _img()
    frames = torch.cat([crop(img, 100, 100 + 2 * i, 32, 32) for i in range(4)])
    k, t = fl.upsample.output_times(4, multiplier=2)
    fn = fl.upsample.flow_interpolator("fast", "visibility_warp", 0.35, "cpu", clamp=[True])
    calls = []
    out1 = fl.upsample.upsample_video([frames, frames], k, t, fn, chunk_pairs=1, on_chunk=calls.append)[0]
    out3 = fl.upsample.upsample_video([frames, frames], k, t, fn, chunk_pairs=3)[0]
    assert out1.shape == (7, 3, 32, 32) and calls == [1, 1, 1]
    assert torch.equal(out1[::2], frames)
    assert torch.allclose(out1, out3, atol=1e-5)
    truth = torch.cat([crop(img, 100, 101 + 2 * i, 32, 32) for i in range(3)])
    assert psnr(out1[1::2][..., 4:-4, 4:-4], truth[..., 4:-4, 4:-4]) > 30


def test_guide_from_channels(fl):
    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 1, 8, 8, generator=g)
    lat = torch.cat([base * 2, -base, base * 0.5 + 0.01 * torch.rand(3, 1, 8, 8, generator=g), base], 1)
    guide = fl.upsample.guide_from_channels(lat)
    assert guide.shape == (3, 1, 8, 8) and guide.min() >= 0 and guide.max() <= 1
    corr = torch.corrcoef(torch.stack([guide.flatten(), base.flatten()]))[0, 1].abs()
    assert corr > 0.99


def test_median_and_box_filters(fl):
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 9, 12, generator=g)
    for k in (3, 5):
        r = k // 2
        rows = F.pad(x, (r, r, 0, 0), mode="replicate").unfold(-1, k, 1).median(-1).values
        ref = F.pad(rows, (0, 0, r, r), mode="replicate").unfold(-2, k, 1).median(-1).values
        assert torch.equal(fl.tvl1.median_filter(x, k), ref)
        box = F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), k, stride=1)
        assert torch.allclose(fl.tvl1.box_filter(x, k), box, atol=1e-5)
    flat = torch.zeros(1, 2, 8, 8)
    flat[..., 4, 4] = 50.0  # an isolated outlier is removed
    assert fl.tvl1.median_filter(flat, 5).abs().max() == 0


def test_block_matching_catches_small_fast_object(fl):
    """A 12x12 object moving 24 px over a static background: coarse-to-fine TV-L1 alone loses it,
    the fused block matches (FlowParams.match_level) recover it."""
    import dataclasses

    bg = _img("coffee")[:, 100:228, 100:228]
    obj = _img("astronaut")[:, 200:212, 230:242]

    def frame(x):
        f = bg.clone()
        f[:, 58:70, x:x + 12] = obj
        return f.unsqueeze(0)

    a, b = frame(30), frame(54)
    flow, cost = fl.tvl1.block_match(a, b, 24, 5)
    assert flow[0, 0, 64, 36] == 24 and flow[0, 1, 64, 36] == 0
    with_match = fl.tvl1.estimate_flow(a, b, "balanced")
    without = fl.tvl1.estimate_flow(a, b, dataclasses.replace(fl.tvl1.PRESETS["balanced"], match_level=0))
    err = lambda f: float((f[0, :, 61:67, 33:39] - torch.tensor([24.0, 0.0]).view(2, 1, 1)).norm(dim=0).mean())  # noqa: E731
    assert err(with_match) < 8.0 and err(without) > 16.0, (err(with_match), err(without))
