"""Effect metrics (model_patches/effect_metrics.py): flicker, warping error, dynamic degree, colour drift, seam jump,
PSNR/SSIM, diversity, summary. Pure math: torch only, no ComfyUI."""
from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture(scope="module")
def em(pack):
    import coherent_video.model_patches.effect_metrics as m

    return m


def texture(h=64, w=64, seed=0) -> torch.Tensor:
    """A smooth random colour texture ``[H, W, 3]`` in [0.1, 0.9] (flow needs gradients)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (0.1 + 0.8 * x.clamp(0, 1))[0].permute(1, 2, 0).contiguous()


def panning(frames=6, step=2, size=64, seed=0) -> torch.Tensor:
    """``[T, size, size, 3]``: a window moving ``step`` px right per frame over a larger texture (a camera pan)."""
    big = texture(size, size + step * frames, seed)
    return torch.stack([big[:, t * step:t * step + size] for t in range(frames)])


def test_flicker_is_vbench_formula(em):
    """(255 - mean|diff|*255)/255: a still video is 1, a constant step of 0.1 is 0.9, black/white toggling is 0.
    Breaks if the mean |difference| is not subtracted from 1 (or is taken over squared differences)."""
    still = texture()[None].expand(5, -1, -1, -1)
    assert em.flicker(still) == pytest.approx(1.0)
    ramp = torch.stack([torch.full((8, 8, 3), 0.1 * t) for t in range(6)])
    assert em.flicker(ramp) == pytest.approx(0.9)
    toggle = torch.stack([torch.full((8, 8, 3), float(t % 2)) for t in range(4)])
    assert em.flicker(toggle) == pytest.approx(0.0)


def test_warp_error_low_for_a_pan_high_for_noise(em):
    """A camera pan is explained by the flow (warping error near 0) while independent textures are not; the
    dynamic degree of the pan is its step over the diagonal. Breaks if the warp uses the wrong flow direction."""
    pan = panning(step=2)
    m = em.motion_metrics(pan)
    noise = torch.stack([texture(seed=s) for s in range(6)])
    assert m["warp_error"] < 0.1 * em.warp_error(noise)
    assert m["dynamic_degree"] == pytest.approx(2 / math.hypot(64, 64), rel=0.25)


def test_dynamic_degree_zero_for_a_still_video_and_grows_with_speed(em):
    """A still video has (almost) no motion; a faster pan has more. Breaks if the flow magnitude is not used."""
    still = texture()[None].expand(4, -1, -1, -1).contiguous()
    assert em.dynamic_degree(still) < 1e-3
    assert em.dynamic_degree(panning(step=3)) > 1.3 * em.dynamic_degree(panning(step=1))


def test_colour_drift_blind_to_motion_sees_a_cast(em):
    """Rearranged pixels (a pan wrapping around) have no drift; a brightening has; ``ref`` replaces frame 0.
    Breaks if the distance is taken per pixel instead of between distributions."""
    x = texture()
    rolled = torch.stack([torch.roll(x, shifts=4 * t, dims=1) for t in range(4)])
    assert em.colour_drift(rolled) < 1e-6
    bright = torch.stack([x, (x + 0.1).clamp(0, 1)])
    assert em.colour_drift(bright) > 2.3
    assert em.colour_drift(rolled, ref=x) < 1e-6
    assert em.colour_drift(rolled, ref=(x + 0.1).clamp(0, 1)) > 2.3
    per = em.colour_drift_per_frame(bright)
    assert per.shape == (2,) and per[0] == 0


def test_seam_jump_is_boundary_step_over_median_step(em):
    """Steps of 0.01 inside clips and one of 0.05 at frame 4: seam jump 5. Breaks with an off-by-one boundary."""
    steps = [0.01, 0.01, 0.01, 0.05, 0.01, 0.01]
    levels = torch.tensor([0.0] + steps).cumsum(0)
    video = levels.view(-1, 1, 1, 1).expand(-1, 4, 4, 3).contiguous()
    assert em.seam_jump(video, [4]) == pytest.approx(5.0)
    assert em.seam_jump(video, [2]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="boundaries"):
        em.seam_jump(video, [0])


def test_psnr_and_ssim(em):
    """PSNR of a uniform error 0.1 is 20 dB; SSIM of identical images is 1 and drops with noise; one reference
    broadcasts over frames. Breaks if PSNR uses the RMSE without the square (10 vs 20 log10)."""
    x = texture()
    assert em.psnr(x, (x + 0.1)) == pytest.approx(20.0, abs=1e-6)
    assert em.ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    g = torch.Generator().manual_seed(1)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert em.ssim(noisy, x) < 0.7
    frames = torch.stack([x, noisy])
    assert em.ssim(frames, x) == pytest.approx((1 + em.ssim(noisy, x)) / 2)
    with pytest.raises(ValueError, match="'b'"):
        em.psnr(x, x[:32])


def test_diversity_mean_pairwise_l1(em):
    """Videos offset by 0, 0.2, 0.4: pairwise mean |diff| 0.2, 0.4, 0.2 -> 0.8/3; identical videos: 0."""
    base = torch.full((3, 8, 8, 3), 0.2)
    vids = [base, base + 0.2, base + 0.4]
    assert em.diversity(vids) == pytest.approx(0.8 / 3)
    assert em.diversity([base, base.clone()]) == 0
    with pytest.raises(ValueError, match="videos"):
        em.diversity([base])


def test_summary_and_bad_frames(em):
    assert em.summary([3, 1, 2, 10]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    with pytest.raises(ValueError, match="frames"):
        em.flicker(torch.zeros(1, 8, 8, 3))
    with pytest.raises(ValueError, match="frames"):
        em.warp_error(torch.zeros(4, 8, 8))
