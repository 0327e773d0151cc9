"""Video conventions shared by every node: where the frames are, and which frame an anchor names.

Pure, no ``comfy`` import.

- Frame axis: 2 for 5-D video latents ``[B, C, T, H, W]``, else the batch axis 0 (ComfyUI /
  AnimateDiff latent batches ``[F, C, H, W]`` and IMAGE batches ``[F, H, W, C]``).
- Anchors: ``"first"`` = 0, ``"center"`` = ``(F - 1) // 2``, ``"last"`` = ``F - 1``, or a frame index
  (negative counts from the end). The centre of an even count is the earlier of the two middle
  frames, as VideoFusion's key frame. One spelling: ``center``. In a window of a longer video
  (:func:`resolve_anchor`) ``F`` is the whole video's length.
"""
from __future__ import annotations

from typing import Sequence

ANCHORS = ("first", "center", "last")
ANCHOR_MODES = ANCHORS + ("index",)  # an anchor by name, or "index": an absolute frame given separately


def frame_axis(x) -> int:
    """Frame axis of a video tensor: 2 for 5-D ``[B, C, T, H, W]``, else 0."""
    return 2 if x.ndim == 5 else 0


def anchor_index(num_frames: int, anchor: int | str) -> int:
    """Index in ``[0, num_frames)`` of ``anchor`` (``first``/``center``/``last`` or an int)."""
    n = int(num_frames)
    if n < 1:
        raise ValueError(f"no anchor in a {n}-frame video")
    if isinstance(anchor, str):
        if anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {ANCHORS} or a frame index, got {anchor!r}")
        return {"first": 0, "center": (n - 1) // 2, "last": n - 1}[anchor]
    a = int(anchor)
    if not -n <= a < n:
        raise ValueError(f"anchor {a} is outside a {n}-frame video")
    return a % n



def resolve_anchor(anchor: str, index: int, total_frames: int | None, frame_index: Sequence[int]) -> int:
    """Absolute index of the anchor frame of a video of ``total_frames`` frames, sampled (maybe in a
    window) at the absolute frames ``frame_index``: :func:`anchor_index` of the whole video (``first`` = 0,
    Text2Video-Zero's choice; ``center``; ``last``), of the current window's frames when the total is
    unknown; ``index`` = ``index``.
    """
    if anchor == "index":
        return int(index)
    if anchor not in ANCHORS:
        raise ValueError(f"unknown anchor {anchor!r}; expected one of {ANCHOR_MODES}")
    if total_frames:
        return anchor_index(int(total_frames), anchor)
    return int(frame_index[anchor_index(len(frame_index), anchor)])

def percent_sigmas(model_sampling, start_percent: float, end_percent: float) -> tuple[float, float]:
    """``(sigma_start, sigma_end)`` of the part ``[start_percent, end_percent]`` of sampling (0 = first step)."""
    return float(model_sampling.percent_to_sigma(start_percent)), float(model_sampling.percent_to_sigma(end_percent))
