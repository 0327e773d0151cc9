"""BaseResidualNoise math (model_patches/noise.py): the statistics of the correlated noise (>= 1e6 samples) and the
papers' equations. Pure math: torch only, no ComfyUI."""
from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture(scope="module")
def noise_math(pack):
    import coherent_video.model_patches.noise as m

    return m

def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.double().flatten() - a.double().mean()
    b = b.double().flatten() - b.double().mean()
    return float((a @ b) / (a.norm() * b.norm()))


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
