"""The fixture builder (tests/support/families.py): every family builds from its real
``comfy.supported_models`` class and samples through KSampler and SamplerCustomAdvanced."""
from __future__ import annotations

import pytest
import torch

from support import families as F

ALL = list(F.FAMILIES) + list(F.EXTRA_FAMILIES) + list(F.AV_FAMILIES)


@pytest.fixture(scope="module", autouse=True)
def _nodes(comfy):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and steadiest on a shared machine
    yield comfy
    torch.set_num_threads(threads)


@pytest.mark.parametrize("family", ALL)
def test_real_class_and_latent_format(family):
    import comfy.supported_models

    s = F.spec(family)
    m = F.build_model(family)
    assert type(m.model.model_config) is getattr(comfy.supported_models, s.supported_model)
    # H3's AV format says 32 (the wider of its two streams, so per-stream slices keep both whole); the video has 24
    assert m.model.latent_format.latent_channels == (32 if family == "minimax_h3" else s.latent_channels)
    lat = F.latent(family, frames=3)["samples"]
    if s.audio:
        video, audio = lat.unbind()
        assert video.shape[1] == s.latent_channels and video.shape[2] == 3
        assert audio.ndim == 4 and audio.shape[0] == video.shape[0]
        # the audio stream lasts as long as the video (LTX-2: 25 latents per second at 25 fps; H3: 40 per 24 frames)
        frames = F.pixel_frames(family, 3)
        assert audio.shape[-2 if family == "ltx2" else -1] == (frames if family == "ltx2" else round(frames * 5 / 3))
        assert m.model.latent_format.latent_dimensions == 3
    elif s.video:
        assert lat.ndim == 5 and lat.shape[1] == s.latent_channels and lat.shape[2] == 3
        assert m.model.latent_format.latent_dimensions == 3
    else:
        assert lat.shape == (3, 4, 8, 8)
    text = F.conditioning(family)[0][0]
    assert text.shape[-1] == s.text_dim


@pytest.mark.parametrize("family", ALL)
def test_seeded_weights_are_deterministic(family):
    a = F.build_model(family, seed=3).model.diffusion_model.state_dict()
    b = F.build_model(family, seed=3).model.diffusion_model.state_dict()
    c = F.build_model(family, seed=4).model.diffusion_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("family", ALL)
def test_samples_through_ksampler_and_custom_advanced(family):
    fx = F.build(family, frames=3)
    before = F.model_fingerprint(fx.model)
    a = F.sample_ksampler(*fx, seed=5, steps=2)
    b = F.sample_custom_advanced(*fx, seed=5, steps=2)
    assert [t.shape for t in F.streams(a)] == [t.shape for t in F.streams(fx.latent["samples"])]
    assert all(torch.isfinite(t).all() and t.abs().sum() > 0 for t in F.streams(a))  # audio too
    # Same noise (seeded), same sampler and sigmas: the two sampling paths agree exactly.
    assert F.same(a, b)
    assert not F.same(a, F.sample_ksampler(*fx, seed=6, steps=2))
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))
    for expert in fx.experts.values():  # Wan 2.2 A14B: both experts sample, with different weights
        assert torch.isfinite(F.sample_ksampler(expert, *list(fx)[1:], seed=5, steps=2)).all()
    if fx.experts:
        assert not F.same(F.sample_ksampler(fx.experts["low_noise"], *list(fx)[1:], seed=5, steps=2), a)


def test_pixel_frame_mapping():
    assert F.pixel_frames("wan21_t2v", 21) == 81
    assert F.pixel_frames("hunyuan15_t2v", 31) == 121
    assert F.pixel_frames("ltxv", 13) == 97
    assert F.pixel_frames("sd15", 16) == 16
    assert F.pixel_frames("minimax_h3", 2) == 5 and F.pixel_frames("minimax_h3", 7) == 22  # the 17k + 5 grid


def test_av_families_skip_with_a_reason_where_comfyui_has_no_class():
    """On a ComfyUI without LTXAV / MiniMaxH3 (0.3.75) building them skips, naming the class; with it, builds."""
    import comfy.supported_models

    for family in F.AV_FAMILIES:
        cls = F.spec(family).supported_model
        if hasattr(comfy.supported_models, cls):
            assert F.build_model(family) is not None
        else:
            with pytest.raises(pytest.skip.Exception, match=cls):
                F.build_model(family)
