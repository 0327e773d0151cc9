"""Scene cuts: never interpolate across one (pure torch, no comfy)."""
from __future__ import annotations

import torch

# ----------------------------------------------------------------------------- scene cuts

def color_histograms(frames: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """Per-frame, per-channel normalised histograms ``(N, C, bins)`` of ``(N, C, H, W)`` in [0, 1]."""
    n, c, h, w = frames.shape
    idx = (frames.float().clamp(0, 1) * (bins - 1e-4)).long().reshape(n, c, -1)
    hist = torch.zeros(n, c, bins, device=frames.device)
    hist.scatter_add_(2, idx, torch.ones_like(idx, dtype=hist.dtype))
    return hist / (h * w)


def scene_cut_scores(frames: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """Histogram difference between consecutive frames, in [0, 1] (Zhang, Kankanhalli, Smoliar 1993).

    ``score_k = 1/2 mean_c sum_bins |H_k - H_{k+1}|``; returns ``(N-1,)``.
    """
    hist = color_histograms(frames, bins)
    return 0.5 * (hist[1:] - hist[:-1]).abs().sum(-1).mean(-1)


def detect_scene_cuts(frames: torch.Tensor, threshold: float = 0.35) -> torch.Tensor:
    """Boolean ``(N-1,)``: True where the pair (k, k+1) straddles a cut (score > threshold)."""
    return scene_cut_scores(frames) > threshold


def cut_fill(img0: torch.Tensor, img1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Across a cut, repeat the nearest original frame instead of interpolating.

    ``img0, img1``: ``(B, C, H, W)``; ``t``: ``(B,)``; returns ``(B, C, H, W)``.
    """
    pick1 = (t >= 0.5).view(-1, 1, 1, 1).to(img0.device)
    return torch.where(pick1, img1, img0)
