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


# --- Video VAEs: latent frames and pixel frames ---------------------------------------------------------------------
# Pixel frames per latent frame of the causal video VAEs ComfyUI ships, by latent format class name (as ComfyUI's own
# Empty*LatentVideo nodes size them: T_latent = (pixel_frames - 1) // c + 1). Causal: latent frame 0 holds ONE image
# frame, latent frame i >= 1 holds pixel frames 1 + c*(i-1) .. c*i, so T latent frames decode to 1 + c*(T-1) pixel
# frames (Wan: 21 -> 81, LTXV: 13 -> 97). Image models (SD1.5, AnimateDiff batches): 1, one latent per frame.
TEMPORAL_COMPRESSION = {"Wan21": 4, "Wan22": 4, "HunyuanVideo": 4, "HunyuanVideo15": 4, "LTXV": 8, "Mochi": 6,
                        "Cosmos1CV8x8x8": 8}
# For code that sees only a 5-D latent (a NOISE object): channels -> compression. 16 channels is Wan 2.1 / Wan 2.2
# A14B / HunyuanVideo (4x); Cosmos-1's 16-channel latent (8x) is read as 4x here. 24 is MiniMax H3's video stream
# (4x; its VAE restarts the causal chunk every 5 latent frames, which the noise's first-gap rule does not model);
# LTX-2's video stream is LTXV's 128 (8x). Audio-video latents are read by their video stream.
TEMPORAL_COMPRESSION_BY_CHANNELS = {16: 4, 24: 4, 32: 4, 48: 4, 128: 8, 12: 6}


def temporal_compression(latent_format=None, latent=None) -> int:
    """Pixel frames per latent frame (after the causal first one): from a ComfyUI latent format (its own
    ``temporal_downscale_ratio`` on ComfyUI 0.33+, else its class or a base class named in
    :data:`TEMPORAL_COMPRESSION`), else from a 5-D latent's channel count, else 1."""
    if latent_format is not None:
        # ComfyUI 0.33+ latent formats carry their own ratio (hooks/comfy_compat.py lists the version differences);
        # the table below is for older ComfyUI, whose formats have none.
        own = getattr(latent_format, "temporal_downscale_ratio", None)
        if getattr(latent_format, "latent_dimensions", 2) == 3 and isinstance(own, int) and own >= 1:
            return own
        for cls in type(latent_format).__mro__ if not isinstance(latent_format, type) else latent_format.__mro__:
            if cls.__name__ in TEMPORAL_COMPRESSION:
                return TEMPORAL_COMPRESSION[cls.__name__]
        if getattr(latent_format, "latent_dimensions", 2) != 3:
            return 1
    if latent is not None and latent.ndim == 5:
        return TEMPORAL_COMPRESSION_BY_CHANNELS.get(int(latent.shape[1]), 1)
    return 1


def pixel_frame_count(latent_frames: int, compression: int) -> int:
    """Pixel frames that ``latent_frames`` decode to: ``1 + c * (T - 1)`` (``T`` when ``c == 1``)."""
    t = int(latent_frames)
    return t if compression <= 1 or t < 1 else 1 + compression * (t - 1)


def latent_frame_of_pixel(pixel_frame: int, compression: int) -> int:
    """Latent frame holding ``pixel_frame``: 0 for the causal first frame, ``(p - 1) // c + 1`` after it."""
    p = int(pixel_frame)
    return p if compression <= 1 else (0 if p <= 0 else (p - 1) // compression + 1)


def first_latent_gap(compression: int) -> float:
    """Time from latent frame 0 to latent frame 1, in units of the spacing of later latent frames. Frame 0 is
    pixel frame 0; frame i >= 1 is centred on pixel frame ``c*i - (c-1)/2``; so the first gap is
    ``(c + 1) / (2c)`` (0.625 for 4x, 0.5625 for 8x) and 1 when there is no compression."""
    c = int(compression)
    return 1.0 if c <= 1 else (c + 1) / (2.0 * c)
