"""Content / motion streams of a video, after DSDN (Liu et al., "Dual-Stream Diffusion Net for
Text-to-Video Generation", arXiv 2308.08316).

Pure tensor math, no ComfyUI import. Frames lie on ``frame_dim`` of a video tensor: dim 0 for
ComfyUI/AnimateDiff latent batches ``[F, C, H, W]`` and IMAGE batches ``[F, H, W, C]``, dim 2 for
5-D latents ``[B, C, T, H, W]``.

DSDN splits a video into a *content* stream and a *motion* stream (paper section "Motion
Decomposition and Combination"). Its motion decomposer takes differences of adjacent frame
latents through a learned 1x1 convolution, and its combiner fuses the motion back with learned
convolutions; neither was released. The training-free core kept here:

- motion is the F-1 adjacent differences ``m_i = z_{i+1} - z_i`` (the decomposer with its 1x1
  conv taken as the identity);
- content is one anchor frame ``z_a`` or the temporal mean ``mean_i z_i``;
- the combiner is the exact inverse: integrate the differences (a cumulative sum) and pin the
  result to the content.

Exactness. Differences and the cumulative sum are held in float64 (float32 on MPS, which has no
float64). For float32/float16/bfloat16 input whose values span a moderate dynamic range (every
difference and partial sum fits float64's 53-bit significand: magnitudes within about 2^29 of each
other for float32) the difference of two values is exact, every partial sum is itself an exact
difference of two input values, and the anchor-mode round trip is bit-exact. With a larger dynamic
range in float32 (e.g. 1e-30 next to 1e10 in one pixel's time series) the differences are rounded and
the round trip is exact only to float64 rounding of the largest value, not bit for bit. The temporal
mean is rounded once when it is stored as content in the input dtype; the rounding remainder travels
with the motion (``residual``), which makes the mean-mode round trip exact to float64 precision before
the final cast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .video import anchor_index

MODES = ("anchor", "mean")


def accumulation_dtype(device: torch.device | str) -> torch.dtype:
    """float64 wherever the device has it (everything but Apple MPS), else float32."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


@dataclass(eq=False)
class Motion:
    """The motion stream and everything the inverse needs (the MOTION type's payload).

    ``diffs``: ``[F-1, *frame]`` adjacent differences, frame-major, in the accumulation dtype.
    ``frame`` is the input shape with its frame axis removed.
    """

    diffs: torch.Tensor
    anchor: int
    mode: str
    dtype: torch.dtype
    frame_dim: int
    shape: tuple
    residual: torch.Tensor | None = None
    kind: str = "tensor"
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return self.diffs.shape[0] + 1

    @property
    def content_shape(self) -> tuple:
        """Shape of the CONTENT tensor this motion combines with (the frame axis has size 1)."""
        s = list(self.shape)
        s[self.frame_dim] = 1
        return tuple(s)

    @property
    def device(self) -> torch.device:
        return self.diffs.device

    def with_diffs(self, diffs: torch.Tensor) -> "Motion":
        """A copy holding edited differences (same length, same layout)."""
        if diffs.shape != self.diffs.shape:
            raise ValueError(f"edited motion has shape {tuple(diffs.shape)}, expected {tuple(self.diffs.shape)}")
        return replace(self, diffs=diffs.to(self.diffs.dtype))

    def __repr__(self) -> str:  # keep ComfyUI's caches and logs short
        return (f"Motion(frames={self.num_frames}, shape={tuple(self.shape)}, frame_dim={self.frame_dim}, "
                f"mode={self.mode}, anchor={self.anchor}, dtype={self.dtype}, kind={self.kind})")


def _frame_major(x: torch.Tensor, frame_dim: int) -> torch.Tensor:
    return x.movedim(frame_dim, 0)


def adjacent_differences(frames: torch.Tensor) -> torch.Tensor:
    """DSDN motion decomposer with its learned 1x1 conv as the identity: ``m_i = z_{i+1} - z_i``.

    ``frames`` is frame-major ``[F, ...]``; returns ``[F-1, ...]``.
    """
    return frames[1:] - frames[:-1]


def integrate_differences(diffs: torch.Tensor) -> torch.Tensor:
    """Offsets of every frame from frame 0: ``o_0 = 0``, ``o_i = sum_{k<i} m_k`` -> ``[F, ...]``."""
    zero = torch.zeros_like(diffs[:1])
    return torch.cat([zero, torch.cumsum(diffs, dim=0)], dim=0)


def decompose_motion(x: torch.Tensor, anchor: int | str = "first", mode: str = "anchor",
                     frame_dim: int = 0) -> tuple[torch.Tensor, Motion]:
    """Split a video into content and motion (DSDN motion decomposer, training-free).

    ``mode="anchor"``: content is frame ``anchor`` (``"first"``, ``"center"``, ``"last"`` or an int).
    ``mode="mean"``: content is the temporal mean ``(1/F) sum_i z_i``.
    Content keeps the input's layout with a frame axis of size 1 and the input dtype, so a
    latent content is a valid one-frame LATENT and an image content a one-frame IMAGE.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not x.is_floating_point():
        raise TypeError(f"video must be a floating point tensor, got {x.dtype}")
    frame_dim = frame_dim % x.ndim
    num_frames = x.shape[frame_dim]
    if num_frames < 2:
        raise ValueError(f"a video needs at least 2 frames to have motion, got {num_frames}")
    acc = accumulation_dtype(x.device)
    frames = _frame_major(x, frame_dim).to(acc)
    diffs = adjacent_differences(frames)
    residual = None
    if mode == "anchor":
        a = anchor_index(num_frames, anchor)
        content = x.narrow(frame_dim, a, 1).clone()
    else:
        a = 0
        mean = frames.mean(dim=0)
        stored = mean.to(x.dtype)
        residual = mean - stored.to(acc)
        content = stored.unsqueeze(frame_dim)
    motion = Motion(diffs=diffs, anchor=a, mode=mode, dtype=x.dtype, frame_dim=frame_dim,
                    shape=tuple(x.shape), residual=residual)
    return content, motion


def combine_motion(content: torch.Tensor, motion: Motion) -> torch.Tensor:
    """Exact inverse of :func:`decompose_motion` (DSDN motion combiner without the learned fusion).

    Anchor mode: ``z_i = c + (o_i - o_a)`` with ``o`` the integrated differences.
    Mean mode: solve for frame 0 from the mean, ``z_0 = c - (1/F) sum_i o_i``, then ``z_i = z_0 + o_i``.
    ``content`` may come from another video with the same per-frame shape: that is motion
    transfer. The result has ``motion.num_frames`` frames and the content's dtype.
    """
    if tuple(content.shape) != motion.content_shape:
        raise ValueError(f"content has shape {tuple(content.shape)}, the motion needs {motion.content_shape}")
    acc = motion.diffs.dtype
    c = _frame_major(content, motion.frame_dim)[0].to(acc)
    offsets = integrate_differences(motion.diffs)
    if motion.mode == "anchor":
        frames = c.unsqueeze(0) + (offsets - offsets[motion.anchor])
    else:
        if motion.residual is not None:
            c = c + motion.residual
        frames = c.unsqueeze(0) + (offsets - offsets.mean(dim=0, keepdim=True))
    return frames.to(content.dtype).movedim(0, motion.frame_dim).contiguous()


# ---------------------------------------------------------------- motion operations (frame-major)

def scale_motion(diffs: torch.Tensor, factor: float) -> torch.Tensor:
    """Amplify (``factor > 1``) or damp (``factor < 1``) motion: ``m_i <- factor * m_i``."""
    return diffs * factor


def gaussian_kernel1d(sigma: float, radius: int | None = None, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian taps ``exp(-k^2 / 2 sigma^2)``, ``k = -r..r`` with ``r = ceil(3 sigma)``."""
    if sigma <= 0:
        return torch.ones(1, dtype=dtype)
    r = int(math.ceil(3.0 * sigma)) if radius is None else int(radius)
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (k / sigma) ** 2)
    return (w / w.sum()).to(dtype)


def _shifted(x: torch.Tensor, offset: int) -> torch.Tensor:
    """``x[t + offset]`` along dim 0 with zeros where ``t + offset`` leaves the range."""
    if offset == 0:
        return x
    out = torch.zeros_like(x)
    n = x.shape[0]
    if abs(offset) >= n:
        return out
    if offset > 0:
        out[: n - offset] = x[offset:]
    else:
        out[-offset:] = x[: n + offset]
    return out


def _frame_weights_view(values: torch.Tensor, ndim: int) -> torch.Tensor:
    return values.view([-1] + [1] * (ndim - 1))


def gaussian_smooth_frames(x: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Gaussian low-pass over dim 0: ``y_t = sum_k g_k x_{t+k} / sum_k g_k [0 <= t+k < T]``.

    The kernel is truncated at the ends and renormalised, so a constant sequence is unchanged
    and nothing is reflected in from outside the clip. Vectorised: one shifted add per tap.
    """
    if sigma <= 0 or x.shape[0] < 2:
        return x.clone()
    taps = gaussian_kernel1d(sigma, radius)
    r = (taps.numel() - 1) // 2
    n = x.shape[0]
    num = torch.zeros_like(x)
    den = torch.zeros(n, dtype=torch.float64)
    valid = torch.ones(n, dtype=torch.float64)
    for j, w in enumerate(taps.tolist()):
        k = j - r
        if abs(k) >= n:
            continue
        num = num + w * _shifted(x, k)
        den = den + w * _shifted(valid, k)
    return num / _frame_weights_view(den.to(device=x.device, dtype=x.dtype), x.ndim)


def bilateral_smooth_frames(x: torch.Tensor, sigma: float, range_sigma: float = 1.0,
                            radius: int | None = None) -> torch.Tensor:
    """Edge-preserving (bilateral, Tomasi & Manduchi 1998) low-pass over dim 0.

    ``y_t = sum_k g_k r_tk x_{t+k} / sum_k g_k r_tk`` with ``r_tk = exp(-(x_{t+k}-x_t)^2 / 2 s^2)``
    and ``s = range_sigma * std(x)``: large changes (real motion onsets) are kept, small
    jitter is averaged away. Per element; one shifted multiply-add per tap.
    """
    if sigma <= 0 or x.shape[0] < 2:
        return x.clone()
    scale = float(x.float().std()) * float(range_sigma)
    if not math.isfinite(scale) or scale <= 0:
        return gaussian_smooth_frames(x, sigma, radius)
    taps = gaussian_kernel1d(sigma, radius)
    r = (taps.numel() - 1) // 2
    n = x.shape[0]
    valid = torch.ones([n] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
    num = torch.zeros_like(x)
    den = torch.zeros_like(x)
    inv = -0.5 / (scale * scale)
    for j, w in enumerate(taps.tolist()):
        k = j - r
        if abs(k) >= n:
            continue
        xs = _shifted(x, k)
        wk = w * _shifted(valid, k) * torch.exp(inv * (xs - x) ** 2)
        num = num + wk * xs
        den = den + wk
    return num / den


def clamp_motion_outliers(x: torch.Tensor, threshold: float = 3.0) -> torch.Tensor:
    """Clamp flicker spikes: per element, limit ``x_t`` to ``median_t +- threshold * 1.4826 * MAD_t``.

    ``1.4826 * MAD`` is the robust estimate of the standard deviation over time, so ``threshold``
    reads as "how many standard deviations a change may be". Needs >= 3 motion frames; with
    fewer there is no outlier to speak of and ``x`` is returned unchanged.
    """
    if x.shape[0] < 3:
        return x.clone()
    med = x.median(dim=0, keepdim=True).values
    mad = (x - med).abs().median(dim=0, keepdim=True).values
    limit = threshold * 1.4826 * mad
    return torch.maximum(torch.minimum(x, med + limit), med - limit)


def frame_range_mask(num_diffs: int, start: int = 0, end: int = -1) -> torch.Tensor:
    """Which differences lie inside the video frame range ``[start, end]`` (inclusive, end -1 = last).

    Difference ``i`` is the change from frame ``i`` to frame ``i+1``; it is inside when both
    frames are. Returns a bool tensor ``[F-1]``.
    """
    num_frames = num_diffs + 1
    end = num_frames - 1 if end < 0 else min(end, num_frames - 1)
    start = max(0, start)
    i = torch.arange(num_diffs)
    return (i >= start) & (i + 1 <= end)


def apply_in_frame_range(original: torch.Tensor, edited: torch.Tensor, start: int = 0, end: int = -1) -> torch.Tensor:
    """Keep ``edited`` for the differences inside ``[start, end]`` and ``original`` elsewhere."""
    mask = frame_range_mask(original.shape[0], start, end).to(original.device)
    return torch.where(_frame_weights_view(mask, original.ndim), edited, original)


# ---------------------------------------------------------------- in-sampler smoothing

def motion_smoothing_matrix(num_frames: int, strength: float, sigma: float = 1.0) -> torch.Tensor:
    """The [F, F] linear operator of :func:`smooth_motion_component` (float64, CPU).

    Built by running the decomposition itself on the identity video (frame j is the indicator of
    j): mean content, Gaussian low-pass of the motion, recombination, blended with the identity
    by ``strength``. Row i gives output frame i as a weighted sum of input frames.
    """
    eye = torch.eye(num_frames, dtype=torch.float64)
    if num_frames < 3 or strength == 0 or sigma <= 0:
        return eye
    content, motion = decompose_motion(eye, mode="mean")
    smoothed = combine_motion(content, motion.with_diffs(gaussian_smooth_frames(motion.diffs, sigma)))
    return (1.0 - strength) * eye + strength * smoothed


def apply_frame_operator(x: torch.Tensor, matrix: torch.Tensor, frame_dim: int = 0) -> torch.Tensor:
    """``y_i = sum_j M_ij x_j`` along ``frame_dim``: one matmul for all pixels and channels."""
    frames = x.movedim(frame_dim, 0)
    shape = frames.shape
    y = torch.matmul(matrix.to(device=x.device, dtype=x.dtype), frames.reshape(shape[0], -1))
    return y.reshape(shape).movedim(0, frame_dim)


def smooth_motion_component(x: torch.Tensor, strength: float, sigma: float = 1.0, frame_dim: int = 0) -> torch.Tensor:
    """DSDN's motion stream smoothing applied to a denoised estimate (training-free).

    ``x = mean + motion``; the motion ``m_i = x_{i+1} - x_i`` is Gaussian low-passed over time
    (``sigma`` frames), re-integrated around the unchanged temporal mean, and blended:
    ``x' = (1 - s) x + s * combine(mean, G_sigma * m)``. The temporal mean (content) is kept
    exactly; only the frame-to-frame changes are smoothed. Fewer than 3 frames: unchanged.
    """
    n = x.shape[frame_dim]
    if strength == 0 or n < 3 or sigma <= 0:
        return x
    return apply_frame_operator(x, motion_smoothing_matrix(n, float(strength), float(sigma)), frame_dim)


# ---------------------------------------------------------------- metrics

def second_temporal_difference(x: torch.Tensor, frame_dim: int = 0) -> torch.Tensor:
    """``x_{i+1} - 2 x_i + x_{i-1}`` along ``frame_dim`` (``F-2`` frames)."""
    f = x.movedim(frame_dim, 0).double()
    return f[2:] - 2.0 * f[1:-1] + f[:-2]


def flicker_metric(x: torch.Tensor, frame_dim: int = 0) -> float:
    """Flicker: mean |second temporal difference| (0 for any video moving at constant speed)."""
    if x.shape[frame_dim] < 3:
        return 0.0
    return float(second_temporal_difference(x, frame_dim).abs().mean())


def temporal_hf_energy(x: torch.Tensor, frame_dim: int = 0) -> float:
    """Temporal high-frequency energy: mean squared second temporal difference."""
    if x.shape[frame_dim] < 3:
        return 0.0
    return float(second_temporal_difference(x, frame_dim).pow(2).mean())
