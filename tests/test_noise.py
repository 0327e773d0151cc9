"""BaseResidualNoise: the noise statistics (pure math) and end-to-end sampling in real ComfyUI."""
from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture(scope="module")
def noise_math(pack):
    import coherent_video.model_patches.noise as m

    return m


@pytest.fixture(scope="module")
def noise_nodes(pack, comfy):
    import coherent_video.nodes.base_residual_noise as n

    return n


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.double().flatten() - a.double().mean()
    b = b.double().flatten() - b.double().mean()
    return float((a @ b) / (a.norm() * b.norm()))


# ---------------------------------------------------------------- statistics (pure math, >= 1e6 samples)

SHAPE = (8, 4, 256, 256)  # 262144 samples per frame, 2.1e6 in all


def _draw(noise_math, mode, base_ratio=0.5, alpha=1.0, seed=123):
    g = torch.Generator().manual_seed(seed)
    residual = torch.randn(SHAPE, generator=g)
    base = torch.randn((1,) + SHAPE[1:], generator=g)
    return noise_math.correlated_noise(residual, base, mode, base_ratio=base_ratio, alpha=alpha)


@pytest.mark.parametrize("mode,base_ratio,alpha", [("shared", 0.5, 1.0), ("shared", 0.9, 1.0),
                                                   ("progressive", 0.0, 1.0), ("progressive", 0.0, 3.0),
                                                   ("mixed", 0.0, 0.7)])
def test_marginals_are_unit_gaussian(noise_math, mode, base_ratio, alpha):
    eps = _draw(noise_math, mode, base_ratio, alpha)
    for f in range(SHAPE[0]):
        assert abs(float(eps[f].mean())) < 0.01, f"frame {f} mean"
        assert abs(float(eps[f].var()) - 1.0) < 0.01, f"frame {f} variance {float(eps[f].var())}"


def expected_correlation(mode: str, i: int, j: int, frames: int, base_ratio: float, alpha: float) -> float:
    """The papers' inter-frame correlations, written out here independently of the module under test:
    VideoFusion (2303.08320 eq. 4): sqrt(lambda_i lambda_j), lambda = 1 at the center key frame (F-1)//2;
    PYoCo (2305.10474) progressive (eq. 6): (alpha/sqrt(1+alpha^2))^|i-j|; mixed (eq. 5): alpha^2/(1+alpha^2)."""
    if mode == "shared":
        key = (frames - 1) // 2
        lam_i = 1.0 if i == key else base_ratio
        lam_j = 1.0 if j == key else base_ratio
        return math.sqrt(lam_i * lam_j)
    if mode == "progressive":
        return (alpha / math.sqrt(1 + alpha * alpha)) ** abs(i - j)
    return alpha * alpha / (1 + alpha * alpha)


@pytest.mark.parametrize("mode,base_ratio,alpha", [("shared", 0.5, 1.0), ("shared", 0.25, 1.0),
                                                   ("progressive", 0.0, 1.0), ("progressive", 0.0, 2.0),
                                                   ("mixed", 0.0, 0.7), ("mixed", 0.0, 2.0)])
def test_inter_frame_correlation_matches_formula(noise_math, mode, base_ratio, alpha):
    eps = _draw(noise_math, mode, base_ratio, alpha)
    key = (SHAPE[0] - 1) // 2
    pairs = [(0, 1), (1, 2), (0, 3), (2, 6), (key, 0), (key, 7)]
    for i, j in pairs:
        want = expected_correlation(mode, i, j, SHAPE[0], base_ratio, alpha)
        got = _corr(eps[i], eps[j])
        assert abs(got - want) < 0.01, f"{mode} frames {i},{j}: corr {got:.4f} want {want:.4f}"


def test_shared_formula_is_videofusion_equation(noise_math):
    g = torch.Generator().manual_seed(0)
    r, b = torch.randn(5, 2, 3, 3, generator=g), torch.randn(1, 2, 3, 3, generator=g)
    lam = noise_math.frame_lambdas(5, 0.3, key_frame=1)
    assert lam.tolist() == [0.3, 1.0, 0.3, 0.3, 0.3]
    eps = noise_math.decompose_noise(r, b, lam)
    for i in range(5):
        want = math.sqrt(lam[i]) * b[0] + math.sqrt(1 - lam[i]) * r[i]
        torch.testing.assert_close(eps[i], want, rtol=0, atol=1e-6)
    assert torch.equal(eps[1], b[0])  # the key frame is the base noise


def test_progressive_scan_equals_ar1_recursion(noise_math):
    g = torch.Generator().manual_seed(0)
    eta = torch.randn(37, 3, 4, 4, generator=g, dtype=torch.float64)
    alpha = 1.7
    a, c = alpha / math.sqrt(1 + alpha**2), 1 / math.sqrt(1 + alpha**2)
    want = [eta[0]]
    for i in range(1, 37):
        want.append(a * want[-1] + c * eta[i])
    torch.testing.assert_close(noise_math.progressive_noise(eta, alpha), torch.stack(want), rtol=0, atol=1e-12)
    # 5-D layout: frames on dim 2
    eta5 = eta.permute(1, 0, 2, 3).unsqueeze(0)
    out5 = noise_math.progressive_noise(eta5, alpha, frame_dim=2)
    torch.testing.assert_close(out5[0].permute(1, 0, 2, 3), torch.stack(want), rtol=0, atol=1e-12)


def test_schedule_overrides_base_ratio(noise_math):
    lam = noise_math.frame_lambdas(3, 0.5, schedule=[0.0, 0.25, 1.0])
    assert lam.tolist() == [0.0, 0.25, 1.0]
    with pytest.raises(ValueError):
        noise_math.frame_lambdas(3, 0.5, schedule=[0.0, 1.0])
    with pytest.raises(ValueError):
        noise_math.frame_lambdas(2, 0.5, schedule=[0.0, 1.5])


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
