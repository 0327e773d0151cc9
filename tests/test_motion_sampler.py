"""MotionSmoothingPatch on the tiny SD1.5-architecture U-Net, sampled through ComfyUI's own KSampler."""
from __future__ import annotations

import pytest
import torch

from tools import fixtures

FRAMES, STEPS, SEED = 8, 3, 42


@pytest.fixture(scope="module")
def parts(comfy, pack):
    import coherent_video.model_patches.motion as mm
    import coherent_video.nodes.motion as N

    return comfy, N, mm


def _sample(comfy, model, cond, seed=SEED, frames=FRAMES, cfg=5.0):
    pos, neg = cond
    latent = {"samples": torch.zeros(frames, 4, 8, 8)}
    return comfy.KSampler().sample(model, seed, STEPS, cfg, "euler", "normal", pos, neg, latent, 1.0)[0]["samples"]


def test_insampler_strength0_identical_and_strength_reduces_flicker(parts, tiny_model, tiny_cond):
    comfy, N, mm = parts
    before = fixtures.model_fingerprint(tiny_model)
    base = _sample(comfy, tiny_model, tiny_cond)

    zero = N.MotionSmoothingPatch.execute(tiny_model, 0.0).args[0]
    assert zero is not tiny_model
    assert torch.equal(_sample(comfy, zero, tiny_cond), base), "strength 0 must be bit-identical"

    smooth = N.MotionSmoothingPatch.execute(tiny_model, 0.5).args[0]
    out = _sample(comfy, smooth, tiny_cond)
    f_base, f_out = mm.flicker_metric(base), mm.flicker_metric(out)
    assert f_out < 0.8 * f_base, (f_base, f_out)
    assert torch.isfinite(out).all()

    # an empty sigma range leaves the sampling untouched
    off = N.MotionSmoothingPatch.execute(tiny_model, 1.0, 1.0, 1.0, 1.0).args[0]
    assert torch.equal(_sample(comfy, off, tiny_cond), base)

    fixtures.assert_same_fingerprint(before, fixtures.model_fingerprint(tiny_model))
    assert "sampler_post_cfg_function" not in tiny_model.model_options
    assert len(smooth.model_options["sampler_post_cfg_function"]) == 1


def test_insampler_input_model_unchanged_on_error_inside_the_hook(parts, tiny_model, tiny_cond):
    """The error is raised inside the patch's own post-CFG hook, after it has smoothed a step (the
    hook's class is swapped for one that raises after calling it): sampling stops with that error and
    the input model is unchanged."""
    comfy, N, _ = parts
    from coherent_video.model_patches.hooks.motion import MotionSmoothingPostCFG

    calls = []

    class RaisingAfterSmoothing(MotionSmoothingPostCFG):
        def __call__(self, args):
            out = super().__call__(args)
            calls.append(bool(torch.equal(out, args["denoised"])))
            raise RuntimeError("raised inside MotionSmoothingPostCFG")

    before = fixtures.model_fingerprint(tiny_model)
    options_before = repr(tiny_model.model_options)
    patched = N.MotionSmoothingPatch.execute(tiny_model, 0.5).args[0]
    hooks = patched.model_options["sampler_post_cfg_function"]
    assert len(hooks) == 1 and type(hooks[0]) is MotionSmoothingPostCFG
    hooks[0].__class__ = RaisingAfterSmoothing
    with pytest.raises(RuntimeError, match="raised inside MotionSmoothingPostCFG"):
        _sample(comfy, patched, tiny_cond, frames=4)
    assert calls == [False]  # the hook ran once and had changed the prediction before the error
    fixtures.assert_same_fingerprint(before, fixtures.model_fingerprint(tiny_model))
    assert repr(tiny_model.model_options) == options_before


def test_post_cfg_hook_layouts_and_range(parts):
    _, _, mm = parts
    from coherent_video.model_patches.hooks.motion import MotionSmoothingPostCFG, MotionSmoothingSettings
    from coherent_video.model_patches.hooks.state import SigmaRange

    hook = MotionSmoothingPostCFG(MotionSmoothingSettings(0.5, 1.0), SigmaRange(None, None, (10.0, 1.0)))
    x4 = torch.randn(6, 4, 5, 5)
    args = {"denoised": x4, "sigma": torch.full((6,), 5.0)}
    assert torch.allclose(hook(args), mm.smooth_motion_component(x4, 0.5), atol=1e-6)
    assert hook({"denoised": x4, "sigma": torch.full((6,), 0.5)}) is x4       # outside the sigma range
    two = x4[:2].clone()
    assert hook({"denoised": two, "sigma": torch.full((2,), 5.0)}) is two      # < 3 frames: nothing to smooth
    x5 = torch.randn(1, 4, 6, 5, 5)                                            # [B, C, T, H, W]
    y5 = hook({"denoised": x5, "sigma": torch.full((1,), 5.0)})
    assert torch.allclose(y5, mm.smooth_motion_component(x5, 0.5, frame_dim=2), atol=1e-6)
    assert MotionSmoothingPostCFG(MotionSmoothingSettings(0.0, 1.0), SigmaRange(None, None, (10.0, 1.0)))(args) is x4
