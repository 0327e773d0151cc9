"""Drift of a long video made clip by clip: colour drift between clips and how far the subject moves.

Pure torch (+ the pack's own weight-free flow in :mod:`.flow`), no ``comfy`` import, so the same functions measure
random-weight wiring runs (``bench/iterative.py long_i2v``) and videos of trained models (the effect benchmark).

Input: decoded pixel frames, ``[N, H, W, 3]`` float in [0, 1] (ComfyUI's IMAGE layout), either a list of clips or
one long video cut at clip boundaries (:func:`split_clips`), and for the displacement the start image
(``[H, W, 3]`` or ``[1, H, W, 3]``).

**Colour drift** (a distance between colour distributions, blind to where the colours are, so motion alone does not
count): every pixel of every frame of clip k goes to CIELAB (sRGB, D65, :func:`srgb_to_lab`); ``Q_k(q)`` is the
vector of the three per-channel q-quantiles (L*, a*, b*) of clip k's pixels, for ``q`` = the midpoints
(j + 1/2)/J, j = 0..J-1 (J = 64). Then

    colour_drift_k = 1/J * sum_j || Q_k(q_j) - Q_0(q_j) ||_2         (CIE76 Delta E, in Lab units)

the mean CIE76 Delta E between matched quantiles of clip k and the first clip. It is 0 for identical clips and
for any re-arrangement of the same pixels (a subject that moves over a background), it is |d| for a uniform shift
d in Lab (a colour cast, brightening), and it grows when contrast or saturation spreads or shrinks. A JND is about
2.3. Beside it, per clip: ``mean_shift_k`` = || mean Lab_k - mean Lab_0 || (CIE76 of the mean colours; the cast
part only), ``contrast_ratio_k`` = std(L*_k) / std(L*_0) and ``saturation_ratio_k`` = mean chroma_k / mean
chroma_0, chroma = sqrt(a*^2 + b*^2) (1 = no change).

**Subject displacement** from the start image: TV-L1 optical flow (the pack's :func:`.flow.tvl1.estimate_flow`,
``fast`` preset) from the start image to every frame, frames resized to at most ``flow_side`` pixels on the long
side; per frame the mean flow magnitude over pixels; per clip the mean over its frames, divided by the image
diagonal (resolution-free: 0.1 = the content moved by a tenth of the frame diagonal on average). Weight-free; it
measures how far the content moved from the start image, background included, so a camera pan counts as well.
Flow between images that no longer share content (random weights, a cut) returns an arbitrary field; the figure
then says nothing about a subject.

Every function is vectorised over frames and pixels; the only python loop is over clips (a handful).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import ParameterError

QUANTILES = 64
MAX_PIXELS = 1 << 20      # pixels per clip used for the quantiles (a deterministic stride over the rest)
FLOW_SIDE = 128

# sRGB (D65) -> XYZ, IEC 61966-2-1; reference white D65 (CIE 15)
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
               (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
_WHITE_D65 = (0.95047, 1.0, 1.08883)


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (L* in [0, 100]) of sRGB values ``[..., 3]`` in [0, 1] (clamped), D65 white, in float64.

    Linearise: ``c <= 0.04045 ? c/12.92 : ((c+0.055)/1.055)^2.4``; XYZ = M c; f(t) = t^(1/3) for t > (6/29)^3 else
    t/(3 (6/29)^2) + 4/29; L* = 116 f(Y/Yn) - 16, a* = 500 (f(X/Xn) - f(Y/Yn)), b* = 200 (f(Y/Yn) - f(Z/Zn)).
    """
    if rgb.shape[-1] != 3:
        raise ParameterError("frames", f"expected [..., 3] RGB values, got shape {tuple(rgb.shape)}")
    c = rgb.to(torch.float64).clamp(0.0, 1.0)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64, device=c.device)
    xyz = (lin @ m.T) / torch.tensor(_WHITE_D65, dtype=torch.float64, device=c.device)
    d = 6.0 / 29.0
    f = torch.where(xyz > d ** 3, xyz.clamp_min(1e-12) ** (1.0 / 3.0), xyz / (3 * d * d) + 4.0 / 29.0)
    return torch.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def _frames(x, name: str) -> torch.Tensor:
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] < 1:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ParameterError(name, f"expected frames [N, H, W, 3] in [0, 1], got {shape}")
    return x


def split_clips(video: torch.Tensor, boundaries) -> list[torch.Tensor]:
    """Cut ``video`` ``[T, H, W, 3]`` at ``boundaries``: the first frame index of every clip after the first
    (strictly increasing, inside (0, T)). Returns views."""
    video = _frames(video, "video")
    cuts = [int(b) for b in boundaries]
    if any(b <= a for a, b in zip([0] + cuts, cuts + [video.shape[0]])):
        raise ParameterError("boundaries", f"{cuts} must increase strictly inside (0, {video.shape[0]})")
    edges = [0] + cuts + [video.shape[0]]
    return [video[a:b] for a, b in zip(edges[:-1], edges[1:])]


def lab_pixels(clip: torch.Tensor, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """``[P, 3]`` Lab values of the clip's pixels (every frame), at most ``max_pixels`` of them (a fixed stride)."""
    flat = _frames(clip, "clips").reshape(-1, 3)
    stride = max(1, math.ceil(flat.shape[0] / max_pixels))
    return srgb_to_lab(flat[::stride])


def colour_quantiles(clip: torch.Tensor, quantiles: int = QUANTILES, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """``[J, 3]``: the per-channel Lab quantiles of the clip's pixels at q_j = (j + 1/2) / J."""
    lab = lab_pixels(clip, max_pixels)
    q = (torch.arange(quantiles, dtype=torch.float64, device=lab.device) + 0.5) / quantiles
    return torch.quantile(lab, q, dim=0)


@torch.no_grad()
def colour_stats(clips, quantiles: int = QUANTILES, max_pixels: int = MAX_PIXELS) -> dict:
    """Per clip, against clip 0 (see the module docstring): ``colour_drift`` (mean CIE76 Delta E of matched Lab
    quantiles), ``mean_shift`` (CIE76 of the mean colours), ``contrast_ratio``, ``saturation_ratio``; each a
    float64 tensor ``[K]`` (clip 0: 0, 0, 1, 1)."""
    clips = list(clips)
    if not clips:
        raise ParameterError("clips", "needs at least one clip")
    labs = [lab_pixels(c, max_pixels) for c in clips]
    q = (torch.arange(quantiles, dtype=torch.float64, device=labs[0].device) + 0.5) / quantiles
    quant = torch.stack([torch.quantile(lab, q, dim=0) for lab in labs])            # [K, J, 3]
    mean = torch.stack([lab.mean(0) for lab in labs])                               # [K, 3]
    std_l = torch.stack([lab[:, 0].std(unbiased=False) for lab in labs])           # [K]
    chroma = torch.stack([lab[:, 1:].norm(dim=1).mean() for lab in labs])          # [K]
    eps = 1e-9
    return {"colour_drift": (quant - quant[:1]).norm(dim=2).mean(1),
            "mean_shift": (mean - mean[:1]).norm(dim=1),
            "contrast_ratio": (std_l + eps) / (std_l[0] + eps),
            "saturation_ratio": (chroma + eps) / (chroma[0] + eps)}


def _resize(frames: torch.Tensor, side: int) -> torch.Tensor:
    """``[N, H, W, 3]`` -> ``[N, 3, h, w]`` with max(h, w) <= side (area resampling), float32."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    h, w = x.shape[-2:]
    s = min(1.0, side / max(h, w))
    if s < 1.0:
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    return x


@torch.no_grad()
def displacement(start_image: torch.Tensor, clips, flow_side: int = FLOW_SIDE, preset: str = "fast") -> torch.Tensor:
    """Per clip, the mean over its frames of the mean TV-L1 flow magnitude from ``start_image`` to the frame,
    divided by the image diagonal (float64 ``[K]``; see the module docstring). All frame pairs in one batch."""
    from .flow.tvl1 import estimate_flow

    clips = [_frames(c, "clips") for c in clips]
    start = start_image[None] if torch.is_tensor(start_image) and start_image.ndim == 3 else start_image
    start = _frames(start, "start_image")[:1]
    if start.shape[1:] != clips[0].shape[1:]:
        raise ParameterError("start_image", f"size {tuple(start.shape[1:3])} differs from the frames' "
                                            f"{tuple(clips[0].shape[1:3])}")
    frames = _resize(torch.cat(clips), flow_side)
    img0 = _resize(start, flow_side).to(frames.device).expand_as(frames)
    flow = estimate_flow(img0, frames, preset)                                        # [N, 2, h, w] pixels
    diag = math.hypot(*frames.shape[-2:])
    per_frame = flow.norm(dim=1).mean(dim=(1, 2)).double() / diag                    # [N]
    lengths = torch.tensor([c.shape[0] for c in clips], device=per_frame.device)
    clip_of = torch.repeat_interleave(torch.arange(len(clips), device=per_frame.device), lengths)
    return torch.zeros(len(clips), dtype=torch.float64, device=per_frame.device).index_add_(
        0, clip_of, per_frame) / lengths.double()


@torch.no_grad()
def measure_long_video(clips=None, start_image: torch.Tensor | None = None, video: torch.Tensor | None = None,
                       boundaries=None, flow_side: int = FLOW_SIDE, quantiles: int = QUANTILES) -> dict:
    """Drift of a long video, per clip: ``{colour_drift, mean_shift, contrast_ratio, saturation_ratio,
    displacement, frames}`` as lists of floats (one per clip; ``displacement`` only with a ``start_image``).

    Give ``clips`` (a list of ``[N_k, H, W, 3]``) or ``video`` + ``boundaries`` (:func:`split_clips`). The
    definitions and formulas are in the module docstring; this is the one entry point the benchmarks call.
    """
    if (clips is None) == (video is None):
        raise ParameterError("clips", "give either clips or video + boundaries")
    if video is not None:
        clips = split_clips(video, boundaries if boundaries is not None else [])
    clips = [_frames(c, "clips") for c in clips]
    if len({tuple(c.shape[1:]) for c in clips}) != 1:
        raise ParameterError("clips", f"clips of different frame sizes: {sorted({tuple(c.shape[1:]) for c in clips})}")
    out = {k: v.tolist() for k, v in colour_stats(clips, quantiles).items()}
    if start_image is not None:
        out["displacement"] = displacement(start_image, clips, flow_side).tolist()
    out["frames"] = [int(c.shape[0]) for c in clips]
    return out
