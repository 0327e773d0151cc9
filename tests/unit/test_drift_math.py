"""Drift measurement (model_patches/drift.py): CIELAB, colour drift between clips, subject displacement by flow.
Pure math: torch only, no ComfyUI."""
from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture(scope="module")
def drift(pack):
    import coherent_video.model_patches.drift as m

    return m


def texture(h=48, w=48, seed=0, frames=1) -> torch.Tensor:
    """A smooth random colour texture ``[frames, h, w, 3]`` in [0.1, 0.9] (flow needs gradients)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(frames, 3, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (0.1 + 0.8 * x.clamp(0, 1)).permute(0, 2, 3, 1).contiguous()


def test_srgb_to_lab_reference_values(drift):
    """CIE reference values (sRGB D65): white, black, red, mid grey. Breaks with a missing sRGB linearisation."""
    rgb = torch.tensor([[1.0, 1, 1], [0, 0, 0], [1, 0, 0], [0.5, 0.5, 0.5]])
    lab = drift.srgb_to_lab(rgb)
    want = torch.tensor([[100.0, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [53.39, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(lab, want, atol=0.02, rtol=0)


def test_identical_clips_have_no_drift(drift):
    clip = texture(frames=4)
    s = drift.colour_stats([clip, clip.clone(), clip.clone()])
    assert s["colour_drift"].abs().max() == 0 and s["mean_shift"].abs().max() == 0
    torch.testing.assert_close(s["contrast_ratio"], torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(s["saturation_ratio"], torch.ones(3, dtype=torch.float64))


def test_colour_drift_ignores_motion_but_not_a_colour_cast(drift):
    """Moving the same content (roll, shuffled frames) is no colour drift; a per-pixel-mean measure would see it.
    Breaks when the drift compares pixel by pixel instead of distributions."""
    clip = texture(frames=3, seed=1)
    moved = torch.roll(clip, shifts=(7, 11), dims=(1, 2)).flip(0)
    s = drift.colour_stats([clip, moved])
    assert float(s["colour_drift"][1]) < 1e-9
    assert float((clip.mean(0) - moved.mean(0)).abs().mean()) > 0.01  # the content did move
    warm = (clip * torch.tensor([1.08, 1.0, 0.9])).clamp(0, 1)
    assert float(drift.colour_stats([clip, warm])["colour_drift"][1]) > 2.0  # above a JND


def test_colour_drift_of_a_flat_clip_is_the_delta_e_between_its_colours(drift):
    """A one-colour clip: every quantile is the colour, so the drift is exactly CIE76 between the two colours."""
    a, b = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.55, 0.42, 0.25])
    ca, cb = a.expand(2, 8, 8, 3), b.expand(3, 8, 8, 3)
    s = drift.colour_stats([ca, cb])
    want = float((drift.srgb_to_lab(a) - drift.srgb_to_lab(b)).norm())
    assert math.isclose(float(s["colour_drift"][1]), want, rel_tol=1e-9)
    assert math.isclose(float(s["mean_shift"][1]), want, rel_tol=1e-9)


def test_contrast_and_saturation_ratios(drift):
    clip = texture(frames=2, seed=2)
    flat = 0.5 + 0.5 * (clip - 0.5)                                    # half the contrast
    grey = clip.mean(-1, keepdim=True).expand_as(clip)                 # no saturation
    s = drift.colour_stats([clip, flat, grey])
    assert 0.4 < float(s["contrast_ratio"][1]) < 0.6
    assert float(s["saturation_ratio"][2]) < 0.05
    assert float(s["colour_drift"][1]) > 1.0 and float(s["mean_shift"][1]) < float(s["colour_drift"][1])


def test_split_clips_and_measure_long_video_agree(drift):
    video = torch.cat([texture(frames=3, seed=3), texture(frames=4, seed=4), texture(frames=2, seed=5)])
    clips = drift.split_clips(video, [3, 7])
    assert [c.shape[0] for c in clips] == [3, 4, 2]
    a = drift.measure_long_video(video=video, boundaries=[3, 7])
    b = drift.measure_long_video(clips=clips)
    assert a == b and a["frames"] == [3, 4, 2] and a["colour_drift"][0] == 0
    with pytest.raises(ValueError, match="boundaries"):
        drift.split_clips(video, [7, 3])
    with pytest.raises(ValueError, match="frames"):
        drift.measure_long_video(clips=[video[..., :2]])


def test_displacement_follows_the_shift_from_the_start_image(drift):
    """Clips whose frames are the start image shifted by 0, 2 and 4 pixels: the displacement is about 0, 2 and 4
    pixels over the diagonal. Breaks when the flow is taken between consecutive frames instead of from the start."""
    start = texture(64, 64, seed=6)[0]
    clips = [torch.stack([torch.roll(start, shifts=(0, s), dims=(0, 1))] * 2) for s in (0, 2, 4)]
    d = drift.displacement(start, clips) * math.hypot(64, 64)
    assert float(d[0]) < 0.1
    assert 1.5 < float(d[1]) < 2.5 and 3.2 < float(d[2]) < 4.8, d
    out = drift.measure_long_video(clips=clips, start_image=start)
    assert len(out["displacement"]) == 3 and out["displacement"][2] > out["displacement"][1]
