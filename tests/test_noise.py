"""BaseResidualNoise in real ComfyUI: the NOISE object against ComfyUI's noise and end-to-end sampling. The noise
statistics (pure math) are in tests/unit/test_noise_math.py."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def noise_nodes(pack, comfy):
    import coherent_video.nodes.base_residual_noise as n

    return n


# ---------------------------------------------------------------- the NOISE object against ComfyUI's noise

def _rand_noise(seed):
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    return Noise_RandomNoise(seed)


def _brn(noise_nodes, seed=7, **kw):
    args = dict(mode="shared", base_ratio=0.5, alpha=1.0, key_frame=-1, lambda_schedule="")
    args.update(kw)
    return noise_nodes.BaseResidualNoise.execute(seed, **args).result[0]


@pytest.mark.parametrize("batch_index", [None, [3, 4, 5, 6]])
def test_lambda_zero_is_comfy_noise_bit_for_bit(noise_nodes, batch_index):
    latent = {"samples": torch.zeros(4, 4, 8, 8)}
    if batch_index is not None:
        latent["batch_index"] = batch_index
    ours = _brn(noise_nodes, seed=42, base_ratio=0.0).generate_noise(latent)
    theirs = _rand_noise(42).generate_noise(latent)
    assert torch.equal(ours, theirs)
    for mode in ("progressive", "mixed"):
        assert torch.equal(_brn(noise_nodes, seed=42, mode=mode, alpha=0.0).generate_noise(latent), theirs)


def test_same_seed_same_noise_and_batch_index_honoured(noise_nodes):
    latent = {"samples": torch.zeros(6, 4, 8, 8)}
    a = _brn(noise_nodes, seed=3).generate_noise(latent)
    b = _brn(noise_nodes, seed=3).generate_noise(latent)
    c = _brn(noise_nodes, seed=4).generate_noise(latent)
    assert torch.equal(a, b) and not torch.equal(a, c)
    shifted = _brn(noise_nodes, seed=3).generate_noise({"samples": torch.zeros(6, 4, 8, 8),
                                                        "batch_index": [10, 11, 12, 13, 14, 15]})
    assert not torch.equal(a, shifted)


def test_five_d_latent_frames_on_dim_two(noise_nodes):
    latent = {"samples": torch.zeros(1, 4, 6, 8, 8)}
    eps = _brn(noise_nodes, seed=1, base_ratio=1.0).generate_noise(latent)
    assert eps.shape == (1, 4, 6, 8, 8)
    for t in range(1, 6):
        assert torch.equal(eps[:, :, t], eps[:, :, 0])


# ---------------------------------------------------------------- end to end through ComfyUI's samplers

def _ksample(comfy, model, pos, neg, latent, seed=5, sampler="euler", steps=3):
    return comfy.KSampler().sample(model, seed, steps, 5.0, sampler, "normal", pos, neg, latent)[0]["samples"]


def _custom_advanced(model, pos, neg, latent, noise, sampler="euler", steps=3):
    from comfy_extras.nodes_custom_sampler import BasicScheduler, CFGGuider, KSamplerSelect, SamplerCustomAdvanced

    guider = CFGGuider.execute(model, pos, neg, 5.0).result[0]
    sampler_obj = KSamplerSelect.execute(sampler).result[0]
    sigmas = BasicScheduler.execute(model, "normal", steps, 1.0).result[0]
    return SamplerCustomAdvanced.execute(noise, guider, sampler_obj, sigmas, latent).result[0]["samples"]


def _model_patch(noise_nodes, model, **kw):
    args = dict(mode="shared", base_ratio=0.5, alpha=1.0, key_frame=-1, initial_noise=True,
                per_step_noise=False, lambda_schedule="")
    args.update(kw)
    return noise_nodes.BaseResidualNoiseModel.execute(model, **args).result[0]


def _assert_frames_identical(x):
    """Identical up to float reassociation in batched kernels (relative 1e-5 of the signal)."""
    scale = float(x.abs().max())
    for f in range(1, x.shape[0]):
        assert float((x[f] - x[0]).abs().max()) <= 1e-5 * scale, f"frame {f} differs from frame 0"


def test_ksampler_lambda_one_gives_identical_frames(comfy, noise_nodes, tiny_model, tiny_cond):
    from support.fixtures import assert_same_fingerprint, model_fingerprint

    pos, neg = tiny_cond
    before = model_fingerprint(tiny_model)
    latent = {"samples": torch.zeros(4, 4, 8, 8)}
    plain = _ksample(comfy, tiny_model, pos, neg, latent)
    assert (plain[1] - plain[0]).abs().max() > 1e-2  # independent noise: frames differ
    patched = _model_patch(noise_nodes, tiny_model, base_ratio=1.0)
    same = _ksample(comfy, patched, pos, neg, latent)
    _assert_frames_identical(same)
    assert_same_fingerprint(before, model_fingerprint(tiny_model))


def test_ksampler_lambda_zero_equals_unpatched_bit_for_bit(comfy, noise_nodes, tiny_model, tiny_cond):
    pos, neg = tiny_cond
    latent = {"samples": torch.zeros(3, 4, 8, 8)}
    plain = _ksample(comfy, tiny_model, pos, neg, latent)
    patched = _ksample(comfy, _model_patch(noise_nodes, tiny_model, base_ratio=0.0), pos, neg, latent)
    assert torch.equal(plain, patched)
    # ... and the patch really acts when lambda > 0
    acting = _ksample(comfy, _model_patch(noise_nodes, tiny_model, base_ratio=0.5), pos, neg, latent)
    assert not torch.equal(plain, acting)


def test_sampler_custom_advanced_lambda_one_and_zero(comfy, noise_nodes, tiny_model, tiny_cond):
    from support.fixtures import assert_same_fingerprint, model_fingerprint

    pos, neg = tiny_cond
    before = model_fingerprint(tiny_model)
    latent = {"samples": torch.zeros(4, 4, 8, 8)}
    same = _custom_advanced(tiny_model, pos, neg, latent, _brn(noise_nodes, seed=9, base_ratio=1.0))
    _assert_frames_identical(same)
    zero = _custom_advanced(tiny_model, pos, neg, latent, _brn(noise_nodes, seed=9, base_ratio=0.0))
    plain = _custom_advanced(tiny_model, pos, neg, latent, _rand_noise(9))
    assert torch.equal(zero, plain)
    assert_same_fingerprint(before, model_fingerprint(tiny_model))


def test_noise_object_and_model_patch_give_the_same_result(comfy, noise_nodes, tiny_model, tiny_cond):
    pos, neg = tiny_cond
    latent = {"samples": torch.zeros(4, 4, 8, 8)}
    via_noise = _custom_advanced(tiny_model, pos, neg, latent, _brn(noise_nodes, seed=11, mode="progressive", alpha=2.0))
    via_patch = _custom_advanced(_model_patch(noise_nodes, tiny_model, mode="progressive", alpha=2.0),
                                 pos, neg, latent, _rand_noise(11))
    assert torch.equal(via_noise, via_patch)


def test_per_step_noise_for_ancestral_samplers(comfy, noise_nodes, tiny_model, tiny_cond):
    pos, neg = tiny_cond
    latent = {"samples": torch.zeros(3, 4, 8, 8)}
    initial_only = _ksample(comfy, _model_patch(noise_nodes, tiny_model, base_ratio=1.0), pos, neg, latent,
                            sampler="euler_ancestral")
    # fresh independent per-step noise breaks the identical frames...
    assert (initial_only[1] - initial_only[0]).abs().max() > 1e-3
    both = _ksample(comfy, _model_patch(noise_nodes, tiny_model, base_ratio=1.0, per_step_noise=True),
                    pos, neg, latent, sampler="euler_ancestral")
    # ...correlated per-step noise keeps them
    _assert_frames_identical(both)
    again = _ksample(comfy, _model_patch(noise_nodes, tiny_model, base_ratio=1.0, per_step_noise=True),
                     pos, neg, latent, sampler="euler_ancestral")
    assert torch.equal(both, again)


# ---------------------------------------------------------------- bad input

def test_bad_inputs_name_node_and_input(comfy, noise_nodes, tiny_model, tiny_cond):
    from support.fixtures import assert_same_fingerprint, model_fingerprint

    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'base_ratio'"):
        _brn(noise_nodes, base_ratio=1.5)
    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'base_ratio'"):
        _brn(noise_nodes, base_ratio=float("nan"))
    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'lambda_schedule'"):
        _brn(noise_nodes, lambda_schedule="0.5, 2")
    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'lambda_schedule'"):
        _brn(noise_nodes, lambda_schedule="0.5, x")
    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'key_frame'"):
        _brn(noise_nodes, key_frame=9).generate_noise({"samples": torch.zeros(4, 4, 8, 8)})
    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'lambda_schedule'"):
        _brn(noise_nodes, lambda_schedule="1, 0.5").generate_noise({"samples": torch.zeros(4, 4, 8, 8)})
    nan_latent = torch.zeros(4, 4, 8, 8)
    nan_latent[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"\[BaseResidualNoise\] input 'latent_image'"):
        _brn(noise_nodes).generate_noise({"samples": nan_latent})
    with pytest.raises(ValueError, match=r"\[BaseResidualNoiseModel\] input 'base_ratio'"):
        _model_patch(noise_nodes, tiny_model, base_ratio=-0.1)
    # key frame beyond the batch through KSampler: clear error, model unchanged
    pos, neg = tiny_cond
    before = model_fingerprint(tiny_model)
    with pytest.raises(ValueError, match=r"\[BaseResidualNoiseModel\] input 'key_frame'"):
        _ksample(comfy, _model_patch(noise_nodes, tiny_model, key_frame=5), pos, neg,
                 {"samples": torch.zeros(2, 4, 8, 8)})
    assert_same_fingerprint(before, model_fingerprint(tiny_model))


def test_one_frame_batch_is_comfy_noise(noise_nodes):
    """Documented behaviour: a one-frame batch has nothing to correlate and gets ComfyUI's noise."""
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    assert torch.equal(_brn(noise_nodes, seed=5, base_ratio=0.7).generate_noise(latent),
                       _rand_noise(5).generate_noise(latent))
