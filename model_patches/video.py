"""Video conventions shared by every node: where the frames are, and which frame an anchor names.

Pure, no ``comfy`` import.

- Frame axis: 2 for 5-D video latents ``[B, C, T, H, W]``, else the batch axis 0 (ComfyUI /
  AnimateDiff latent batches ``[F, C, H, W]`` and IMAGE batches ``[F, H, W, C]``).
- Anchors: ``"first"`` = 0, ``"center"`` = ``(F - 1) // 2``, ``"last"`` = ``F - 1``, or a frame index
  (negative counts from the end). The centre of an even count is the earlier of the two middle
  frames, as VideoFusion's key frame. One spelling: ``center``.
"""
from __future__ import annotations

ANCHORS = ("first", "center", "last")


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
