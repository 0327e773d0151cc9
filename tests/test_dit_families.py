"""The fixture builder (tests/support/families.py): every family builds from its real
``comfy.supported_models`` class and samples through KSampler and SamplerCustomAdvanced."""
from __future__ import annotations

import pytest
import torch

from support import families as F

ALL = list(F.FAMILIES) + list(F.EXTRA_FAMILIES)


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
    assert m.model.latent_format.latent_channels == s.latent_channels
    lat = F.latent(family, frames=3)["samples"]
    if s.video:
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
    assert a.shape == fx.latent["samples"].shape
    assert torch.isfinite(a).all() and a.abs().sum() > 0
    # Same noise (seeded), same sampler and sigmas: the two sampling paths agree exactly.
    assert torch.equal(a, b)
    assert not torch.equal(a, F.sample_ksampler(*fx, seed=6, steps=2))
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_pixel_frame_mapping():
    assert F.pixel_frames("wan21_t2v", 21) == 81
    assert F.pixel_frames("hunyuan15_t2v", 31) == 121
    assert F.pixel_frames("ltxv", 13) == 97
    assert F.pixel_frames("sd15", 16) == 16
