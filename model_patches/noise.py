"""Correlated video noise: VideoFusion's base + residual decomposition and PYoCo's noise priors.

Pure tensor math, no ComfyUI import. Frames lie on ``frame_dim`` of the noise tensor
(dim 0 for ComfyUI/AnimateDiff batches ``[F, C, H, W]``, dim 2 for 5-D ``[B, C, T, H, W]``).

Every function keeps the marginal distribution of each frame exactly N(0, I): the weights of
the two Gaussian terms always satisfy a^2 + b^2 = 1 (VidRD's reference code passes a variance
where a standard deviation belongs; we do not).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .video import anchor_index

MODES = ("shared", "progressive", "mixed")


def parse_schedule(text: str) -> list[float]:
    """``"1.0, 0.5 0.5"`` -> ``[1.0, 0.5, 0.5]`` (commas and/or spaces; empty -> ``[]``)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    return [float(p) for p in parts]


def resolve_key_frame(num_frames: int, key_frame: int) -> int:
    """``key_frame < 0`` means the center frame, as in VideoFusion: index ``(F - 1) // 2``
    (:func:`model_patches.video.anchor_index`); other values are returned as they are (callers check
    the range and name the input)."""
    return anchor_index(num_frames, "center") if key_frame < 0 else int(key_frame)


def frame_lambdas(num_frames: int, base_ratio: float, key_frame: int = -1,
                  schedule: Sequence[float] | None = None) -> torch.Tensor:
    """Per-frame base ratios lambda_i of VideoFusion (arXiv 2303.08320, eq. 4).

    The key frame gets lambda = 1 (its noise *is* the base noise); every other frame gets
    ``base_ratio``, unless a per-frame ``schedule`` of length F is given, which is used as is.
    ``base_ratio == 0`` switches the decomposition off for every frame, the key frame included,
    so the result is the independent residual noise itself.
    Returns a float64 tensor of shape [F].
    """
    if schedule:
        if len(schedule) != num_frames:
            raise ValueError(f"schedule has {len(schedule)} values for {num_frames} frames")
        lam = torch.tensor(list(schedule), dtype=torch.float64)
    else:
        lam = torch.full((num_frames,), float(base_ratio), dtype=torch.float64)
        if base_ratio > 0:
            lam[resolve_key_frame(num_frames, key_frame)] = 1.0
    if not bool(((lam >= 0) & (lam <= 1)).all()):
        raise ValueError("every lambda must lie in [0, 1]")
    return lam


def _frame_view(values: torch.Tensor, ndim: int, frame_dim: int, like: torch.Tensor) -> torch.Tensor:
    shape = [1] * ndim
    shape[frame_dim] = values.numel()
    return values.to(device=like.device, dtype=like.dtype).view(shape)


def decompose_noise(residual: torch.Tensor, base: torch.Tensor, lambdas: torch.Tensor,
                    frame_dim: int = 0, inplace: bool = False) -> torch.Tensor:
    """VideoFusion's decomposed noise (arXiv 2303.08320, eq. 4):

        eps_i = sqrt(lambda_i) * b + sqrt(1 - lambda_i) * r_i

    ``residual`` holds r_i (independent per frame), ``base`` holds b with size 1 on ``frame_dim``
    (shared by all frames). Each eps_i is N(0, I); frames i != j correlate by
    sqrt(lambda_i * lambda_j). Two fused passes; ``inplace=True`` reuses ``residual``'s memory.
    """
    lam = lambdas.to(torch.float64)
    w = torch.stack([lam.sqrt(), (1.0 - lam).sqrt()]).to(device=residual.device, dtype=residual.dtype)
    shape = [1] * residual.ndim
    shape[frame_dim] = lam.numel()
    w_base, w_res = w[0].view(shape), w[1].view(shape)
    out = residual.mul_(w_res) if inplace else residual * w_res
    return out.addcmul_(base, w_base)


def progressive_noise(eta: torch.Tensor, alpha: float, frame_dim: int = 0, first_gap: float = 1.0) -> torch.Tensor:
    """PYoCo's progressive noise prior (arXiv 2305.10474, eq. 6), an AR(1) over frames:

        eps_0 = eta_0,   eps_i = alpha/sqrt(1+alpha^2) * eps_{i-1} + 1/sqrt(1+alpha^2) * eta_i

    Every eps_i is N(0, I); corr(eps_i, eps_j) = (alpha/sqrt(1+alpha^2))^|i-j|.
    Vectorised as a log2(F)-step parallel prefix scan over the frame axis (no per-frame loop).

    ``first_gap`` (beyond the paper): the time from frame 0 to frame 1 in units of the later spacing, for
    the causal first latent frame of video VAEs (:func:`model_patches.video.first_latent_gap`, 0.625 for
    Wan). The chain is then AR(1) in that time, corr(eps_i, eps_j) = a^|tau_i - tau_j| with tau_0 = 0,
    tau_i = first_gap + i - 1: eps_1 = a^g eps_0 + sqrt(1 - a^2g) eta_1, still N(0, I).
    """
    a = alpha / math.sqrt(1.0 + alpha * alpha)
    if first_gap != 1.0 and eta.shape[frame_dim] > 1 and a > 0.0:
        x = eta.movedim(frame_dim, 0)
        a0 = a ** float(first_gap)
        head = x[1] * math.sqrt(max(0.0, 1.0 - a0 * a0)) + x[0] * a0
        rest = progressive_noise(torch.cat([head.unsqueeze(0), x[2:]]), alpha)  # starts from eps_1 as it is
        return torch.cat([x[:1], rest]).movedim(0, frame_dim)
    c = 1.0 / math.sqrt(1.0 + alpha * alpha)
    x = eta.movedim(frame_dim, 0)
    frames = x.shape[0]
    scale = torch.full((frames,), c, dtype=torch.float64)
    scale[0] = 1.0
    x = x * _frame_view(scale, x.ndim, 0, x)
    y = torch.empty_like(x)
    d = 1
    while d < frames and a ** d > 0.0:
        # Hillis-Steele step: x_i <- x_i + a^d x_{i-d}; after it x_i sums a^j u_{i-j} for j < 2d.
        # Ping-pong between two buffers: one pass per level, no allocation.
        y[:d].copy_(x[:d])
        torch.add(x[d:], x[:-d], alpha=a ** d, out=y[d:])
        x, y = y, x
        d *= 2
    return x.movedim(0, frame_dim)


def mixed_lambda(alpha: float) -> float:
    """PYoCo's mixed noise prior (arXiv 2305.10474, eq. 5) as a VideoFusion base ratio:
    eps_i = alpha/sqrt(1+alpha^2) * eps_shared + 1/sqrt(1+alpha^2) * eps_ind_i,
    so lambda = alpha^2 / (1 + alpha^2), which is also the inter-frame correlation."""
    return alpha * alpha / (1.0 + alpha * alpha)


def correlated_noise(residual: torch.Tensor, base: torch.Tensor, mode: str, base_ratio: float = 0.5,
                     alpha: float = 1.0, key_frame: int = -1, schedule: Sequence[float] | None = None,
                     frame_dim: int = 0, inplace: bool = False, first_gap: float = 1.0) -> torch.Tensor:
    """Dispatch over the three modes. ``residual`` is the independent per-frame noise (used as
    eta in progressive mode); ``base`` is the shared noise (unused in progressive mode).
    ``inplace=True`` lets shared/mixed modes overwrite ``residual``. ``first_gap``: progressive mode's
    causal first frame (:func:`progressive_noise`); shared and mixed modes do not depend on time."""
    frames = residual.shape[frame_dim]
    if mode == "shared" and not schedule:
        # The same equation with scalar weights: lambda is base_ratio everywhere but at the key frame,
        # whose noise is the base itself (sqrt(1) * b + sqrt(0) * r).
        if base_ratio == 0:
            return residual
        k = resolve_key_frame(frames, key_frame)
        # One fused pass over the F-frame tensor (base, one frame, is scaled first): sqrt(l) b + sqrt(1-l) r.
        out = torch.add(base * math.sqrt(base_ratio), residual, alpha=math.sqrt(1.0 - base_ratio),
                        out=residual if inplace else None)
        out.select(frame_dim, k).copy_(base.select(frame_dim, 0))
        return out
    if mode == "shared":
        lam = frame_lambdas(frames, base_ratio, key_frame, schedule)
        if not bool(lam.any()):
            return residual
        return decompose_noise(residual, base, lam, frame_dim, inplace)
    if mode == "mixed":
        lam = torch.full((frames,), mixed_lambda(alpha), dtype=torch.float64)
        if alpha == 0:
            return residual
        return decompose_noise(residual, base, lam, frame_dim, inplace)
    if mode == "progressive":
        if alpha == 0:
            return residual
        return progressive_noise(residual, alpha, frame_dim, first_gap)
    raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def derived_seed(seed: int, salt: int = 0x9E3779B97F4A7C15) -> int:
    """A second seed for the shared base noise, decorrelated from ``seed`` and ``seed + 1``
    (so neighbouring seeds do not share a base with each other's residuals)."""
    x = (seed * 6364136223846793005 + salt) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 33
    return x & 0x7FFFFFFFFFFFFFFF
