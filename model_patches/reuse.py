"""Reuse and Diffuse (VidRD): pure tensor math for long videos made clip by clip.

Gu et al., "Reuse and Diffuse: Iterative Denoising for Text-to-Video Generation", 2023
(arXiv:2309.03549). Each new clip c+1 reuses the previous clip c. The paper (``reverse`` order):

- FNR, frame-level noise reversion: the first M frames start from the previous clip's initial
  noise in reverse frame order, eps^{c+1}_k = eps^c_{N-1-k}  (k < M).
- PNS, past-dependent noise sampling: the other frames mix the reversed previous noise with fresh
  noise, eps^{c+1}_k = s/sqrt(1+s^2) * eps^c_{N-1-k} + 1/sqrt(1+s^2) * eta_k  (k >= M).
- DSG, denoising with staged guidance: at step s the overlap frame k < M is replaced by the
  previous clip's latent of frame N-1-k at the same step while s < (M-k) * (S/M) * g.

Beyond the paper (``forward`` order, the node's default): the overlap frame k < M re-traces the
previous clip's frame N-M+k (same noise, DSG on its trajectory), so the re-traced frames run forward
in time, and they are left out of the output; the new frames k >= M continue from the last past
frame r = eps^c_{N-1} like the conditional of an AR(1) chain given its last value:
eps^{c+1}_k = a^{k-M+1} r + sqrt(1 - a^{2(k-M+1)}) eta_k with a = s/sqrt(1+s^2) (see
:func:`forward_reuse_noise`).

No ``comfy`` import here; the sampling loop that uses these functions is in ``hooks/reuse.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import ParameterError
from .video import frame_axis


def pns_weights(noise_recycle: float) -> tuple[float, float]:
    """PNS mixing weights ``(a, b) = (s/sqrt(1+s^2), 1/sqrt(1+s^2))`` (VidRD Sec. 3.2, PNS).

    ``a^2 + b^2 = 1`` for every ``s``, so the mix of two independent unit-variance noises has unit
    variance, and ``a`` is its correlation with the reused (reversed) previous noise.
    """
    s = float(noise_recycle)
    inv = 1.0 / math.sqrt(1.0 + s * s)
    return s * inv, inv


def _clip_pair(prev_noise: torch.Tensor, fresh_noise: torch.Tensor, overlap: int,
               frame_dim: int | None) -> tuple[int, int]:
    """``(frame axis, frames)`` of two clips' noises of one shape with ``0 <= overlap < frames``."""
    if prev_noise.shape != fresh_noise.shape:
        raise ParameterError("fresh_noise", f"shape {tuple(fresh_noise.shape)} differs from prev_noise's "
                                            f"{tuple(prev_noise.shape)}")
    fd = frame_axis(prev_noise) if frame_dim is None else frame_dim
    frames = prev_noise.shape[fd]
    if not 0 <= overlap < frames:
        raise ParameterError("overlap", f"{overlap} must be in [0, {frames - 1}]")
    return fd, frames


def reverse_reuse_noise(prev_noise: torch.Tensor, fresh_noise: torch.Tensor, overlap: int,
                        noise_recycle: float, fnr: bool = True, frame_dim: int | None = None) -> torch.Tensor:
    """Initial noise of clip c+1 from clip c's initial noise: FNR + PNS (VidRD Sec. 3.2).

    With ``r_k = eps^c_{N-1-k}`` (the previous clip's noise in reverse frame order) and fresh
    noise ``eta``:

    - FNR:  ``eps^{c+1}_k = r_k``                                   for k < M (when ``fnr``);
    - PNS:  ``eps^{c+1}_k = s/sqrt(1+s^2) r_k + 1/sqrt(1+s^2) eta_k``  for k >= M
      (for every k when ``fnr`` is off).

    Both branches have exactly unit variance when ``prev_noise`` and ``fresh_noise`` are independent
    unit-variance noises. ``overlap`` = M, ``noise_recycle`` = s. Shapes must match; the result has
    the dtype and device of ``fresh_noise``.
    """
    fd, frames = _clip_pair(prev_noise, fresh_noise, overlap, frame_dim)
    reversed_prev = prev_noise.to(device=fresh_noise.device, dtype=fresh_noise.dtype).flip(fd)
    a, b = pns_weights(noise_recycle)
    out = reversed_prev * a + fresh_noise * b
    if fnr and overlap > 0:
        out.narrow(fd, 0, overlap).copy_(reversed_prev.narrow(fd, 0, overlap))
    return out


def forward_reuse_noise(prev_noise: torch.Tensor, fresh_noise: torch.Tensor, overlap: int,
                        noise_recycle: float, fnr: bool = True, frame_dim: int | None = None) -> torch.Tensor:
    """Initial noise of clip c+1 in ``forward`` order (beyond the paper): forward FNR + PNS.

    - FNR, forward: ``eps^{c+1}_k = eps^c_{N-M+k}`` for k < M (when ``fnr``): the overlap re-traces the
      previous clip's last M frames in their own order;
    - PNS, forward: with ``a = s/sqrt(1+s^2)``, ``r = eps^c_{N-1}`` (the last past frame) and
      ``d = k - M + 1`` (distance to it),
      ``eps^{c+1}_k = a^d r + sqrt(1 - a^(2d)) eta_k`` for k >= M. This is the conditional marginal of a
      unit-variance AR(1) chain with coefficient ``a`` given its last value: the tie to the past decays
      with the distance in time instead of mirroring the past (the paper's ``N-1-k``), so the video keeps
      moving forward. With ``fnr`` off the overlap frames take ``a eps^c_{N-M+k} + b eta_k`` (paper PNS on
      the forward map).

    Every frame has exactly unit variance when ``prev_noise`` and ``fresh_noise`` are independent
    unit-variance noises. ``overlap`` = M, ``noise_recycle`` = s.
    """
    fd, frames = _clip_pair(prev_noise, fresh_noise, overlap, frame_dim)
    prev = prev_noise.to(device=fresh_noise.device, dtype=fresh_noise.dtype)
    a, b = pns_weights(noise_recycle)
    dist = torch.arange(1, frames - overlap + 1, dtype=torch.float64)
    w_past = a ** dist
    w_fresh = (1.0 - w_past * w_past).clamp_min(0.0).sqrt()
    shape = [1] * prev.ndim
    shape[fd] = frames - overlap
    last = prev.narrow(fd, frames - 1, 1)
    new = fresh_noise.narrow(fd, overlap, frames - overlap) * w_fresh.to(fresh_noise).view(shape)
    new = new + last * w_past.to(fresh_noise).view(shape)
    src = prev.narrow(fd, frames - overlap, overlap)
    if fnr:
        head = src
    else:
        head = src * a + fresh_noise.narrow(fd, 0, overlap) * b
    return torch.cat([head, new], dim=fd)


def overlap_sources(clip_frames: int, overlap: int, order: str) -> list[int]:
    """Frame of the previous clip that overlap frame k < M re-traces: ``N-1-k`` (``reverse``, the
    paper) or ``N-M+k`` (``forward``)."""
    if order == "reverse":
        return [clip_frames - 1 - k for k in range(overlap)]
    if order == "forward":
        return [clip_frames - overlap + k for k in range(overlap)]
    raise ValueError(f"order {order!r} is not 'reverse' or 'forward'")


def staged_guidance_steps(steps: int, overlap: int, guidance_ratio: float) -> list[int]:
    """DSG stage lengths: ``n_k`` = number of steps s in [0, S) with ``s < (M-k) * (S/M) * g``.

    VidRD Sec. 3.2 (DSG) and the official pipeline's test ``i < (M - frm) * (S / M) * g``: overlap
    frame k < M follows the previous clip's trajectory (of frame N-1-k) at steps ``s < n_k``; frame 0
    is guided longest, frame M-1 shortest; ``g = 0`` guides nothing and ``g = 1`` guides frame 0 for
    all S steps. Returns ``[n_0, ..., n_{M-1}]``.
    """
    if overlap <= 0:
        return []
    per = steps / overlap
    return [sum(1 for s in range(steps) if s < (overlap - k) * per * guidance_ratio) for k in range(overlap)]


@dataclass(frozen=True)
class ClipSlice:
    """Frames ``[src_start, src_end)`` of a sampled clip go to output frames from ``dst_start``."""

    src_start: int
    src_end: int
    dst_start: int

    @property
    def length(self) -> int:
        return self.src_end - self.src_start


OVERLAP_MODES = ("forward", "concat", "reversed_drop")


def overlap_order(mode: str) -> str:
    """``forward`` for the forward mode, ``reverse`` (the paper's FNR/DSG order) for the others."""
    if mode not in OVERLAP_MODES:
        raise ValueError(f"overlap mode {mode!r} is not one of {OVERLAP_MODES}")
    return "forward" if mode == "forward" else "reverse"


def plan_clips(total_frames: int, clip_frames: int, overlap: int, mode: str = "forward") -> list[ClipSlice]:
    """Clip plan giving exactly ``total_frames`` output frames.

    - ``forward`` (default, beyond the paper): clip c+1's first M frames re-trace clip c's last M frames
      in forward order and are left out, so every later clip gives frames M..N-1: stride N-M,
      ``1 + ceil((T-N)/(N-M))`` clips, and each output frame follows the one before it in time.
    - ``concat`` (the official VidRD output): every clip gives all N frames, the re-traced reversed
      overlap included (a back-and-forth of M frames at each seam); ``ceil(T/N)`` clips.
    - ``reversed_drop``: the paper's reversed overlap, left out like ``forward``; clip c+1's frame M
      then continues from a re-trace of clip c's frame N-M, so each seam jumps back about M frames.
      Kept for comparison (it was this pack's first default, ``drop``).

    In every mode the last clip gives only the frames still missing.
    """
    if clip_frames < 2:
        raise ParameterError("clip_frames", f"has {clip_frames} frame; a clip needs at least 2 frames (the latent's "
                                            "batch size sets the clip length N)")
    if overlap >= clip_frames:
        raise ParameterError("overlap", f"must be smaller than the clip length N={clip_frames} (the latent's frame "
                                        f"count), got {overlap}")
    if overlap < 0:
        raise ParameterError("overlap", f"must be >= 0, got {overlap}")
    if total_frames < clip_frames:
        raise ParameterError("total_frames", f"{total_frames} is shorter than one clip (N={clip_frames}, the latent's "
                                             "frame count)")
    if mode not in OVERLAP_MODES:
        raise ParameterError("overlap_mode", f"must be one of {OVERLAP_MODES}, got {mode!r}")
    plan = [ClipSlice(0, clip_frames, 0)]
    done = clip_frames
    skip = 0 if mode == "concat" else overlap
    while done < total_frames:
        take = min(clip_frames - skip, total_frames - done)
        plan.append(ClipSlice(skip, skip + take, done))
        done += take
    return plan


def clip_count(total_frames: int, clip_frames: int, overlap: int, mode: str = "forward") -> int:
    """Number of clips :func:`plan_clips` samples."""
    return len(plan_clips(total_frames, clip_frames, overlap, mode))


def place_clip(out: torch.Tensor, clip: torch.Tensor, piece: ClipSlice, frame_dim: int = 0) -> torch.Tensor:
    """Copy the frames ``piece`` selects from ``clip`` into the preallocated output ``out`` (in place)."""
    src = clip.narrow(frame_dim, piece.src_start, piece.length)
    out.narrow(frame_dim, piece.dst_start, piece.length).copy_(src)
    return out


def latent_colour_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of a clip's latent over its frames and pixels:
    ``[B, C, 1, 1, 1]`` for a video latent ``[B, C, T, H, W]``, ``[1, C, 1, 1]`` for frames on the batch axis
    ``[F, C, H, W]`` (population std, float32)."""
    dims = (2, 3, 4) if x.ndim == 5 else (0, 2, 3)
    xf = x.float()
    return xf.mean(dim=dims, keepdim=True), xf.std(dim=dims, keepdim=True, unbiased=False)


def hold_colour(x: torch.Tensor, ref_mean: torch.Tensor, ref_std: torch.Tensor, strength: float = 1.0,
                eps: float = 1e-6) -> torch.Tensor:
    """Colour hold (beyond the paper): clip k's latent ``x`` with the per-channel statistics of the first clip.

    With ``(mu_k, sigma_k)`` = :func:`latent_colour_stats` of ``x`` and ``(mu_1, sigma_1)`` those of the first
    clip, per channel ``x' = (x - mu_k) / sigma_k * sigma_1 + mu_1``, blended by ``strength`` s:
    ``x'' = x + s (x' - x)`` (s = 0: unchanged, bit for bit; s = 1: clip k's channel means and stds equal the first
    clip's). An AdaIN over the whole clip: it removes a colour cast or contrast change that builds up from clip to
    clip (the latent channels carry colour and contrast), and, as a global statistic, it also pulls a clip whose
    content really changed (a new object, a scene change) towards the first clip's colours.
    """
    if strength == 0:
        return x
    mu, sigma = latent_colour_stats(x)
    held = (x.float() - mu) / (sigma + eps) * ref_std.to(mu) + ref_mean.to(mu)
    return (x.float() + float(strength) * (held - x.float())).to(x.dtype)


def retrace_frames(x: torch.Tensor, fd: int, count: int, sources: list[int], source: torch.Tensor | None = None):
    """``x`` with frames k < ``count`` replaced by frame ``sources[k]`` of ``source`` (default ``x``)."""
    if count <= 0:
        return x
    src = x if source is None else source
    dst_idx = torch.arange(count, device=x.device)
    return x.index_copy(fd, dst_idx, src.index_select(fd, torch.tensor(sources[:count], device=x.device)))


def retrace_mask(mask, latent_ndim: int, n_frames: int, count: int, sources: list[int]):
    """The noise mask with re-traced frames taking their source frame's mask, when the mask has one
    mask per frame (a mask shared by all frames needs nothing)."""
    if mask is None or count <= 0:
        return mask
    if latent_ndim == 5:
        if mask.ndim == 5 and mask.shape[2] == n_frames:
            return retrace_frames(mask, 2, count, sources)
        return mask
    per_frame = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1])
    if per_frame.shape[0] == n_frames:
        return retrace_frames(per_frame, 0, count, sources)
    return mask
