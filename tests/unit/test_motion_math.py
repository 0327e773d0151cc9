"""DSDN motion decomposition math (model_patches/motion.py): exact round trips, the content choices, the temporal
filters and the flicker metric. Pure math: torch only, no ComfyUI."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def mm(pack):
    import coherent_video.model_patches.motion as mm

    return mm

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_round_trip_other_dtypes_bit_exact(mm, dtype):
    x = (torch.randn(5, 4, 3, 3) * 3).to(dtype)
    for anchor in ("first", "center", "last"):
        c, m = mm.decompose_motion(x, anchor)
        assert torch.equal(mm.combine_motion(c, m), x)
    c, m = mm.decompose_motion(x, mode="mean")
    y = mm.combine_motion(c, m)
    assert y.dtype == dtype and float((y.double() - x.double()).abs().max()) <= 1e-6 * float(x.abs().max())


def test_content_is_anchor_or_mean(mm):
    x = torch.randn(7, 4, 3, 3)
    assert torch.equal(mm.decompose_motion(x, "first")[0], x[:1])
    assert torch.equal(mm.decompose_motion(x, "center")[0], x[3:4])
    assert torch.equal(mm.decompose_motion(x, "last")[0], x[6:7])
    assert torch.allclose(mm.decompose_motion(x, mode="mean")[0], x.mean(0, keepdim=True), atol=1e-7)
    c, m = mm.decompose_motion(x)
    assert m.num_frames == 7 and m.diffs.shape == (6, 4, 3, 3)
    assert torch.allclose(m.diffs.float(), x[1:] - x[:-1], atol=1e-6)


def test_gaussian_keeps_constant_motion_and_is_low_pass(mm):
    const = torch.ones(9, 2, 3) * 0.7
    assert torch.allclose(mm.gaussian_smooth_frames(const.double(), 2.0), const.double())
    alt = torch.tensor([1.0, -1.0] * 8).double().view(16, 1)
    assert float(mm.gaussian_smooth_frames(alt, 1.0)[3:-3].abs().max()) < 0.05  # Nyquist jitter removed (interior)


def test_bilateral_keeps_a_step_smooths_jitter(mm):
    g = torch.Generator().manual_seed(0)
    step = torch.cat([torch.zeros(10), torch.ones(10) * 5]).double().view(20, 1)
    noisy = step + 0.05 * torch.randn(20, 1, generator=g).double()
    bil = mm.bilateral_smooth_frames(noisy, 2.0, 0.2)
    gau = mm.gaussian_smooth_frames(noisy, 2.0)
    assert float((bil - step).abs().max()) < float((gau - step).abs().max())
    assert float((bil - step)[:8].std()) < float((noisy - step)[:8].std())


def test_smooth_motion_component_keeps_mean_and_reduces_flicker(mm):
    x = torch.randn(10, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    assert mm.smooth_motion_component(x, 0.0) is x
    prev = mm.flicker_metric(x)
    for s in (0.25, 0.5, 1.0):
        y = mm.smooth_motion_component(x, s)
        assert torch.allclose(y.mean(0), x.mean(0), atol=1e-5)
        f = mm.flicker_metric(y)
        assert f < prev
        prev = f
    five = x.view(2, 5, 4, 6, 6).permute(0, 2, 1, 3, 4)       # [B, C, T, H, W]
    y5 = mm.smooth_motion_component(five, 0.5, frame_dim=2)
    ref = torch.stack([mm.smooth_motion_component(five[b].movedim(1, 0), 0.5).movedim(0, 1) for b in range(2)])
    assert torch.allclose(y5, ref, atol=1e-6)


def test_flicker_metric_definition(mm):
    lin = torch.arange(6.0).view(6, 1) * torch.ones(1, 3)
    assert mm.flicker_metric(lin) == 0.0
    zig = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(4, 1)
    assert mm.flicker_metric(zig) == pytest.approx(2.0)
