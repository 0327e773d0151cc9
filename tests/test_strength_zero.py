"""Strength 0 turns every part of a node's patch off, with every other input at the node's default:
the patched model samples bit for bit like the unpatched one, and nothing is installed on it."""
from __future__ import annotations

import pytest
import torch

from support import fixtures


def sample(model, cond, latent, seed=5):
    from comfy_extras.nodes_custom_sampler import (BasicScheduler, CFGGuider, KSamplerSelect, RandomNoise,
                                                   SamplerCustomAdvanced)

    guider = CFGGuider.execute(model, cond[0], cond[1], 2.0).result[0]
    return SamplerCustomAdvanced.execute(RandomNoise.execute(seed).result[0], guider,
                                         KSamplerSelect.execute("euler").result[0],
                                         BasicScheduler.execute(model, "normal", 2, 1.0).result[0],
                                         latent).result[0]["samples"]


def no_patches(patched, model) -> bool:
    """Nothing installed: the clone carries exactly the input model's options and weight patches."""
    return repr(patched.model_options) == repr(model.clone().model_options) and patched.patches == model.patches


@pytest.fixture()
def video():
    return {"samples": torch.zeros(3, 4, 8, 8)}


def test_reference_image_condition_strength_zero_defaults(pack, comfy, tiny_model, tiny_cond, video):
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    ref = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 3}
    before = fixtures.model_fingerprint(tiny_model)
    m, lat = ReferenceImageCondition.execute(tiny_model, ref, video, strength=0.0).result  # anchor_first_frame default on
    assert lat is video and "noise_mask" not in lat
    assert no_patches(m, tiny_model)
    assert torch.equal(sample(m, tiny_cond, lat), sample(tiny_model, tiny_cond, video))
    fixtures.assert_same_fingerprint(before, fixtures.model_fingerprint(tiny_model))


@pytest.mark.parametrize("mode", ["anchor", "sparse_causal", "mutual"])
def test_cross_stream_attention_strength_zero_defaults(pack, comfy, tiny_model, tiny_cond, video, mode):
    from coherent_video.nodes.cross_stream import CrossStreamAttention

    m = CrossStreamAttention.execute(tiny_model, mode=mode, strength=0.0).result[0]
    assert no_patches(m, tiny_model)
    assert torch.equal(sample(m, tiny_cond, video), sample(tiny_model, tiny_cond, video))


def test_motion_smoothing_patch_strength_zero_defaults(pack, comfy, tiny_model, tiny_cond, video):
    from coherent_video.nodes.motion import MotionSmoothingPatch

    m = MotionSmoothingPatch.execute(tiny_model, strength=0.0).result[0]
    assert no_patches(m, tiny_model)
    assert torch.equal(sample(m, tiny_cond, video), sample(tiny_model, tiny_cond, video))


@pytest.mark.parametrize("method", ["gaussian", "bilateral"])
def test_motion_smooth_strength_zero_defaults(pack, comfy, method):
    from coherent_video.nodes.motion import MotionDecomposer, MotionSmooth

    x = torch.randn(6, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    motion = MotionDecomposer.execute({"samples": x}).result[2]
    edited = MotionSmooth.execute(motion, method=method, strength=0.0).result[0]
    assert torch.equal(edited.diffs, motion.diffs)
