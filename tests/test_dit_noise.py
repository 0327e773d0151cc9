"""BaseResidualNoise on 5-D video latents: correlation along the LATENT time axis T of [B, C, T, H, W], exactly
unit-variance marginals, and the causal first latent frame of the video VAEs (one image frame, then
``c`` pixel frames per latent frame: Wan/HunyuanVideo 4x, LTXV 8x)."""
from __future__ import annotations

import math

import pytest
import torch

from support import families as F

T = 6


@pytest.fixture(scope="module", autouse=True)
def _env(comfy, pack):
    return comfy


@pytest.fixture(scope="module")
def video(pack):
    import coherent_video.model_patches.video as v

    return v


def frame_corr(x: torch.Tensor) -> torch.Tensor:
    """[T, T] correlation of the latent frames of a 5-D noise tensor (over batch, channels and pixels)."""
    f = x.movedim(2, 0).reshape(x.shape[2], -1).double()
    f = f - f.mean(dim=1, keepdim=True)
    f = f / f.norm(dim=1, keepdim=True)
    return f @ f.T


def family_noise(family: str, mode: str, base_ratio=0.5, alpha=1.0, key_frame=-1, schedule="", seed=11, hw=48):
    lat = F.latent(family, frames=T, height=hw, width=hw)
    gen = F.run_node("BaseResidualNoise", seed, mode, base_ratio, alpha, key_frame, schedule)[0]
    return gen.generate_noise(lat)


@pytest.mark.parametrize("family", list(F.VIDEO_FAMILIES) + ["wan22_i2v_a14b"] + list(F.AV_FAMILIES))
def test_temporal_compression_of_each_family(video, family):
    m = F.build_model(family)
    c = video.temporal_compression(m.model.latent_format)
    assert c == F.spec(family).temporal_compression
    # what the NOISE node infers (an audio-video latent: from its video stream)
    assert video.temporal_compression(latent=F.video_part(F.latent(family)["samples"])) == c
    if family != "minimax_h3":  # H3's VAE restarts its causal chunk every 5 latent frames (families.pixel_frames)
        assert video.pixel_frame_count(T, c) == F.pixel_frames(family, T)


def test_pixel_latent_frame_mapping(video):
    assert video.pixel_frame_count(21, 4) == 81 and video.pixel_frame_count(13, 8) == 97
    assert [video.latent_frame_of_pixel(p, 4) for p in (0, 1, 4, 5, 80)] == [0, 1, 1, 2, 20]
    assert video.pixel_frame_count(16, 1) == 16 and video.latent_frame_of_pixel(7, 1) == 7
    assert video.first_latent_gap(4) == 0.625 and video.first_latent_gap(8) == 0.5625 and video.first_latent_gap(1) == 1
    assert video.temporal_compression() == 1


@pytest.mark.parametrize("family", F.VIDEO_FAMILIES)
def test_shared_mode_correlates_latent_frames_with_unit_marginals(family):
    x = family_noise(family, "shared", base_ratio=0.5)
    assert x.shape == F.latent(family, frames=T, height=48, width=48)["samples"].shape
    var = x.movedim(2, 0).reshape(T, -1).double().var(dim=1)
    assert float((var - 1).abs().max()) < 0.03, var
    corr = frame_corr(x)
    key = (T - 1) // 2  # the centre LATENT frame
    want = torch.full((T, T), 0.5, dtype=torch.float64)
    want[key, :] = want[:, key] = math.sqrt(0.5)
    want.fill_diagonal_(1.0)
    assert float((corr - want).abs().max()) < 0.03, corr
    # frames correlate along T only: channels and pixels stay independent
    assert abs(float(torch.corrcoef(torch.stack([x[0, 0].flatten(), x[0, 1].flatten()]))[0, 1])) < 0.03


@pytest.mark.parametrize("family", F.VIDEO_FAMILIES)
def test_schedule_and_key_frame_are_latent_frames(family):
    x = family_noise(family, "shared", schedule="1, 0, 0.25, 0.25, 0, 1")
    corr = frame_corr(x)
    assert abs(float(corr[0, 5]) - 1.0) < 1e-6  # lambda 1 twice: both latent frames are the base
    assert abs(float(corr[2, 3]) - 0.25) < 0.03 and abs(float(corr[1, 0])) < 0.03
    k = family_noise(family, "shared", base_ratio=0.3, key_frame=1)
    corr = frame_corr(k)
    assert abs(float(corr[1, 4]) - math.sqrt(0.3)) < 0.03 and abs(float(corr[2, 4]) - 0.3) < 0.03


def test_schedule_length_must_be_latent_frames():
    gen = F.run_node("BaseResidualNoise", 1, "shared", 0.5, 1.0, -1, "1, 0.5")[0]
    with pytest.raises(Exception, match=r"BaseResidualNoise.*lambda_schedule.*2 values.*6"):
        gen.generate_noise(F.latent("wan21_t2v", frames=T))


@pytest.mark.parametrize("family", F.VIDEO_FAMILIES)
def test_progressive_mode_knows_the_causal_first_latent_frame(video, family):
    """AR(1) in pixel time: corr(i, j) = rho^|tau_i - tau_j| with tau_0 = 0, tau_i = g + i - 1, where
    g = (c + 1) / (2c) is the gap from the one-image-frame latent 0 to latent 1 (0.625 for Wan)."""
    alpha = 1.5
    rho = alpha / math.sqrt(1 + alpha * alpha)
    g = video.first_latent_gap(F.spec(family).temporal_compression)
    tau = torch.tensor([0.0] + [g + i - 1 for i in range(1, T)], dtype=torch.float64)
    want = rho ** (tau[:, None] - tau[None, :]).abs()
    x = family_noise(family, "progressive", alpha=alpha)
    var = x.movedim(2, 0).reshape(T, -1).double().var(dim=1)
    assert float((var - 1).abs().max()) < 0.03, var
    corr = frame_corr(x)
    assert float((corr - want).abs().max()) < 0.03, (corr, want)
    assert float(corr[0, 1]) > rho + 0.05  # the first gap is shorter than the others


@pytest.mark.parametrize("family", list(F.FAMILIES) + ["wan22_i2v_a14b"] + list(F.AV_FAMILIES))
def test_model_patch_reads_the_compression_of_the_model(family):
    """BaseResidualNoiseModel takes c from the sampled model's latent format, not from the latent's channels."""
    import coherent_video.model_patches.hooks.noise as hooks

    s = hooks._with_model_compression(hooks.NoiseSettings(mode="progressive"), F.build_model(family))
    assert s.temporal_compression == F.spec(family).temporal_compression
