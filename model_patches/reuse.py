"""Reuse and Diffuse (VidRD): pure tensor math for long videos made clip by clip.

Gu et al., "Reuse and Diffuse: Iterative Denoising for Text-to-Video Generation", 2023
(arXiv:2309.03549). Each new clip c+1 reuses the previous clip c:

- FNR, frame-level noise reversion: the first M frames start from the previous clip's initial
  noise in reverse frame order, eps^{c+1}_k = eps^c_{N-1-k}  (k < M).
- PNS, past-dependent noise sampling: the other frames mix the reversed previous noise with fresh
  noise, eps^{c+1}_k = s/sqrt(1+s^2) * eps^c_{N-1-k} + 1/sqrt(1+s^2) * eta_k  (k >= M).
- DSG, denoising with staged guidance: at step s the overlap frame k < M is replaced by the
  previous clip's latent of frame N-1-k at the same step while s < (M-k) * (S/M) * g.

No ``comfy`` import here; the sampling loop that uses these functions is in ``reuse_hooks.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def frame_dim_of(x: torch.Tensor) -> int:
    """Frame axis of a latent: 2 for video latents ``[B, C, T, H, W]``, else the batch axis 0."""
    return 2 if x.ndim == 5 else 0


def pns_weights(noise_recycle: float) -> tuple[float, float]:
    """PNS mixing weights ``(a, b) = (s/sqrt(1+s^2), 1/sqrt(1+s^2))`` (VidRD Sec. 3.2, PNS).

    ``a^2 + b^2 = 1`` for every ``s``, so the mix of two independent unit-variance noises has unit
    variance, and ``a`` is its correlation with the reused (reversed) previous noise.
    """
    s = float(noise_recycle)
    inv = 1.0 / math.sqrt(1.0 + s * s)
    return s * inv, inv


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
    if prev_noise.shape != fresh_noise.shape:
        raise ValueError(f"prev_noise {tuple(prev_noise.shape)} and fresh_noise {tuple(fresh_noise.shape)} differ")
    fd = frame_dim_of(prev_noise) if frame_dim is None else frame_dim
    frames = prev_noise.shape[fd]
    if not 0 <= overlap < frames:
        raise ValueError(f"overlap {overlap} must be in [0, {frames - 1}]")
    reversed_prev = prev_noise.to(device=fresh_noise.device, dtype=fresh_noise.dtype).flip(fd)
    a, b = pns_weights(noise_recycle)
    out = reversed_prev * a + fresh_noise * b
    if fnr and overlap > 0:
        out.narrow(fd, 0, overlap).copy_(reversed_prev.narrow(fd, 0, overlap))
    return out


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


def guided_overlap_frames(step: int, stage_steps: list[int]) -> list[int]:
    """Overlap frames k whose input is replaced at step ``step`` (``step < n_k``), in order."""
    return [k for k, n in enumerate(stage_steps) if step < n]


@dataclass(frozen=True)
class ClipSlice:
    """Frames ``[src_start, src_end)`` of a sampled clip go to output frames from ``dst_start``."""

    src_start: int
    src_end: int
    dst_start: int

    @property
    def length(self) -> int:
        return self.src_end - self.src_start


OVERLAP_MODES = ("drop", "concat")


def plan_clips(total_frames: int, clip_frames: int, overlap: int, mode: str = "drop") -> list[ClipSlice]:
    """Clip plan giving exactly ``total_frames`` output frames.

    - ``drop`` (default): clip 0 gives its N frames; every later clip gives frames M..N-1 (the M
      re-traced overlap frames are dropped), so the stride is N-M and there are
      ``1 + ceil((T-N)/(N-M))`` clips.
    - ``concat`` (the official VidRD output): every clip gives all N frames, the re-traced reversed
      overlap included; ``ceil(T/N)`` clips.

    In both modes the last clip gives only the frames still missing.
    """
    if mode not in OVERLAP_MODES:
        raise ValueError(f"overlap mode {mode!r} is not one of {OVERLAP_MODES}")
    if clip_frames < 2:
        raise ValueError("a clip needs at least 2 frames")
    if not 0 <= overlap < clip_frames:
        raise ValueError(f"overlap {overlap} must be in [0, {clip_frames - 1}]")
    if total_frames < clip_frames:
        raise ValueError(f"total_frames {total_frames} is shorter than one clip ({clip_frames})")
    plan = [ClipSlice(0, clip_frames, 0)]
    done = clip_frames
    skip = overlap if mode == "drop" else 0
    while done < total_frames:
        take = min(clip_frames - skip, total_frames - done)
        plan.append(ClipSlice(skip, skip + take, done))
        done += take
    return plan


def clip_count(total_frames: int, clip_frames: int, overlap: int, mode: str = "drop") -> int:
    """Number of clips :func:`plan_clips` samples."""
    return len(plan_clips(total_frames, clip_frames, overlap, mode))


def place_clip(out: torch.Tensor, clip: torch.Tensor, piece: ClipSlice, frame_dim: int = 0) -> torch.Tensor:
    """Copy the frames ``piece`` selects from ``clip`` into the preallocated output ``out`` (in place)."""
    src = clip.narrow(frame_dim, piece.src_start, piece.length)
    out.narrow(frame_dim, piece.dst_start, piece.length).copy_(src)
    return out


def assemble_clips(clips: list[torch.Tensor], plan: list[ClipSlice], frame_dim: int = 0) -> torch.Tensor:
    """Concatenate sampled clips along the frame axis following ``plan`` (drop or concat)."""
    if len(clips) != len(plan):
        raise ValueError(f"{len(clips)} clips for a plan of {len(plan)}")
    return torch.cat([c.narrow(frame_dim, p.src_start, p.length) for c, p in zip(clips, plan)], dim=frame_dim)


def seam_ratio(frames: torch.Tensor, plan: list[ClipSlice], frame_dim: int = 0) -> float:
    """Mean |z_{t+1} - z_t| across clip seams / the same mean within clips (1 = seams look like
    ordinary frame steps; larger = visible jumps). Diagnostic for the benchmark."""
    diffs = (frames.narrow(frame_dim, 1, frames.shape[frame_dim] - 1)
             - frames.narrow(frame_dim, 0, frames.shape[frame_dim] - 1)).abs()
    per_step = diffs.movedim(frame_dim, 0).reshape(diffs.shape[frame_dim], -1).mean(dim=1)
    seams = {p.dst_start - 1 for p in plan[1:]}
    seam_mask = torch.zeros(per_step.shape[0], dtype=torch.bool)
    seam_mask[sorted(seams)] = True
    return float(per_step[seam_mask].mean() / per_step[~seam_mask].mean())
