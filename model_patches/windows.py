"""Context windows over a latent of several streams (video + audio) whose time axes differ: the pure math.

A window over the video's latent frames covers, in every other stream, the frames of the same span of time, in
proportion to the stream lengths: video frame ``i`` of ``P`` spans ``[i/P, (i+1)/P)`` of the clip, which stream frames
``round(i*M/P) .. round((i+1)*M/P) - 1`` of ``M`` cover (at least one, clamped to ``M - 1``). Frames come out in window
order without repeats, so a window that wraps (looped schedules) stays in the order the model sees it.
"""
from __future__ import annotations

from typing import Sequence

import torch


def stream_window(index_list: Sequence[int], primary_total: int, stream_total: int) -> list[int]:
    """The frames of a stream of ``stream_total`` frames that the primary window ``index_list`` (of
    ``primary_total`` frames) covers."""
    if primary_total <= 0 or stream_total <= 0:
        raise ValueError(f"stream lengths must be positive, got {primary_total} and {stream_total}")
    idx = torch.as_tensor(list(index_list), dtype=torch.float64)
    if idx.numel() == 0:
        return []
    if bool(((idx < 0) | (idx >= primary_total)).any()):
        raise ValueError(f"window {list(index_list)} is outside the {primary_total} primary frames")
    scale = stream_total / primary_total
    start = torch.round(idx * scale).clamp(max=stream_total - 1).long()
    end = torch.maximum(torch.round((idx + 1) * scale).clamp(max=stream_total).long(), start + 1)
    counts = end - start
    # every covered frame: start repeated per count plus its offset inside the run
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    frames = torch.repeat_interleave(start, counts) + offsets
    # first occurrence of each frame, in window order
    uniq, inverse = torch.unique(frames, return_inverse=True)
    first = torch.full((uniq.numel(),), frames.numel(), dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(frames.numel()), reduce="amin")
    return frames[first.sort().values].tolist()


def moved_shape(shape: Sequence[int], axis: int, to: int) -> tuple[int, ...]:
    """``shape`` after ``movedim(axis, to)``."""
    dims = list(shape)
    size = dims.pop(axis)
    dims.insert(to, size)
    return tuple(dims)
