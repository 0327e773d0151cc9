"""Weight-free effect metrics of generated videos (the effect benchmarks ``bench/effect.py`` and
``bench/effect_long.py``). Pure torch (+ the pack's own flow in :mod:`.flow` and Lab in :mod:`.drift`), no ``comfy``.

Frames are ComfyUI IMAGEs: ``[T, H, W, 3]`` float in [0, 1]. Every function is vectorised over frames (one batched
flow call for all consecutive pairs); python loops only run over seeds or boundaries (a handful).

- :func:`flicker` -- VBench temporal flickering (Huang et al. 2024, ``vbench/temporal_flickering.py``), on 8-bit
  values: ``(255 - mean_t mean_p |x_{t+1}(p) - x_t(p)| * 255) / 255`` = ``1 - mean |frame difference|`` in [0, 1];
  **higher is steadier** (1 = a still video).
- :func:`warp_error` -- flow warping error (Lai et al., ECCV 2018, eq. 8): TV-L1 flow (``fast`` preset) between
  consecutive frames, frame t+1 warped back onto frame t, squared RGB error over the pixels the forward-backward
  check (Sundaram et al. 2010) marks visible, averaged over pairs. **Lower is more coherent.**
- :func:`dynamic_degree` -- a motion proxy (VBench's dynamic degree uses RAFT; here the same TV-L1 flow): mean flow
  magnitude between consecutive frames divided by the frame diagonal (0.01 = content moves a hundredth of the
  diagonal per frame). Report it beside every consistency figure: a still video wins every consistency score.
- :func:`colour_drift` -- per frame, the mean CIE76 Delta E between matched Lab quantiles (the distribution distance
  of :mod:`.drift`, blind to where colours are, so motion alone does not count) to frame 0, or to ``ref`` (e.g.
  the first clip); the mean over frames (frame 0 excluded when it is the reference).
- :func:`seam_jump` -- at clip or window boundaries: mean |frame difference| across each boundary divided by the
  median |frame difference| of the pairs inside clips; 1 = a boundary looks like any other frame step.
- :func:`psnr`, :func:`ssim` -- reference fidelity; SSIM is Wang et al. 2004 (Gaussian window 11, sigma 1.5,
  K1 = 0.01, K2 = 0.03, per RGB channel, averaged), PSNR ``10 log10(1 / MSE)``; per image, mean over images.
- :func:`diversity` -- across seeds: mean over seed pairs of the mean |difference| of their videos (pixel L1, no
  learned features); 0 = every seed gives the same video.
- :func:`summary` -- ``{"median", "min", "max", "n"}`` of per-seed values.
"""
from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

from .drift import srgb_to_lab
from .errors import ParameterError

FLOW_PRESET = "fast"
FLOW_SIDE = 128           # flow is computed at most this many pixels on the long side (64x64 frames: full size)
QUANTILES = 64


def _frames(x, name: str = "frames", min_frames: int = 1) -> torch.Tensor:
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] < min_frames:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ParameterError(name, f"expected frames [T >= {min_frames}, H, W, 3] in [0, 1], got {shape}")
    return x


def _images(x, name: str) -> torch.Tensor:
    """``[H, W, 3]`` or ``[N, H, W, 3]`` -> ``[N, H, W, 3]``."""
    if torch.is_tensor(x) and x.ndim == 3:
        x = x[None]
    return _frames(x, name)


def frame_differences(frames: torch.Tensor) -> torch.Tensor:
    """``[T - 1]``: mean |x_{t+1} - x_t| over pixels and channels (float64)."""
    x = _frames(frames, min_frames=2).double()
    return (x[1:] - x[:-1]).abs().mean(dim=(1, 2, 3))


@torch.no_grad()
def flicker(frames: torch.Tensor) -> float:
    """VBench temporal flickering ``(255 - mean |frame diff| * 255) / 255`` in [0, 1]; higher = steadier."""
    return float((255.0 - frame_differences(frames).mean() * 255.0) / 255.0)


def _chw(frames: torch.Tensor, side: int) -> torch.Tensor:
    x = frames.permute(0, 3, 1, 2).to(torch.float32)
    h, w = x.shape[-2:]
    s = min(1.0, side / max(h, w))
    if s < 1.0:
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    return x


@torch.no_grad()
def consecutive_flow(frames: torch.Tensor, flow_side: int = FLOW_SIDE, preset: str = FLOW_PRESET):
    """``(x, flow_fw, flow_bw)``: frames ``[T, 3, h, w]`` (resized to ``flow_side``) and the TV-L1 flow of every
    consecutive pair, forward (t -> t+1) and backward (t+1 -> t), ``[T-1, 2, h, w]`` in pixels; one batched call."""
    from .flow.tvl1 import bidirectional_flow

    x = _chw(_frames(frames, min_frames=2), flow_side)
    fw, bw = bidirectional_flow(x[:-1], x[1:], preset)
    return x, fw, bw


@torch.no_grad()
def motion_metrics(frames: torch.Tensor, flow_side: int = FLOW_SIDE, preset: str = FLOW_PRESET) -> dict:
    """``{"warp_error", "dynamic_degree"}`` from one flow computation (see :func:`warp_error`, :func:`dynamic_degree`)."""
    from .flow.warp import backward_warp, fb_consistency

    x, fw, bw = consecutive_flow(frames, flow_side, preset)
    back = backward_warp(x[1:], fw)                                   # x_{t+1}(p + flow_fw(p)) ~ x_t(p)
    visible = fb_consistency(fw, bw)                                  # [T-1, 1, h, w]
    err = ((back - x[:-1]) ** 2).sum(1, keepdim=True)                 # squared RGB error per pixel
    per_pair = (err * visible).sum(dim=(1, 2, 3)) / visible.sum(dim=(1, 2, 3)).clamp_min(1.0)
    diag = math.hypot(*x.shape[-2:])
    dyn = fw.norm(dim=1).mean(dim=(1, 2)) / diag
    return {"warp_error": float(per_pair.double().mean()), "dynamic_degree": float(dyn.double().mean())}


def warp_error(frames: torch.Tensor, flow_side: int = FLOW_SIDE, preset: str = FLOW_PRESET) -> float:
    """Flow warping error (Lai et al. 2018): mean over consecutive pairs of the squared RGB error between frame t
    and frame t+1 warped back by the flow, over the visible (forward-backward consistent) pixels. Lower = better."""
    return motion_metrics(frames, flow_side, preset)["warp_error"]


def dynamic_degree(frames: torch.Tensor, flow_side: int = FLOW_SIDE, preset: str = FLOW_PRESET) -> float:
    """Mean TV-L1 flow magnitude between consecutive frames, divided by the frame diagonal."""
    return motion_metrics(frames, flow_side, preset)["dynamic_degree"]


def _lab_quantiles(frames: torch.Tensor, quantiles: int) -> torch.Tensor:
    """``[T, J, 3]`` per-frame, per-channel Lab quantiles at q_j = (j + 1/2) / J."""
    lab = srgb_to_lab(frames.reshape(frames.shape[0], -1, 3))                       # [T, P, 3] float64
    q = (torch.arange(quantiles, dtype=torch.float64, device=lab.device) + 0.5) / quantiles
    return torch.quantile(lab, q, dim=1).permute(1, 0, 2)                           # [T, J, 3]


@torch.no_grad()
def colour_drift_per_frame(frames: torch.Tensor, ref: torch.Tensor | None = None,
                           quantiles: int = QUANTILES) -> torch.Tensor:
    """``[T]``: per frame, mean CIE76 Delta E between its matched Lab quantiles and the reference's (frame 0, or
    all pixels of ``ref`` ``[N, H, W, 3]`` / ``[H, W, 3]``)."""
    frames = _frames(frames)
    qf = _lab_quantiles(frames, quantiles)
    if ref is None:
        qr = qf[:1]
    else:
        ref = _images(ref, "ref")
        qr = _lab_quantiles(ref.reshape(1, -1, ref.shape[-2], 3), quantiles)
    return (qf - qr).norm(dim=2).mean(dim=1)


def colour_drift(frames: torch.Tensor, ref: torch.Tensor | None = None, quantiles: int = QUANTILES) -> float:
    """Mean colour drift (Delta E, Lab units; a JND is about 2.3) of the frames to frame 0 (frame 0 excluded) or to
    ``ref`` (every frame). See :func:`colour_drift_per_frame`."""
    d = colour_drift_per_frame(frames, ref, quantiles)
    if ref is None:
        d = d[1:]
    return float(d.mean()) if d.numel() else 0.0


@torch.no_grad()
def seam_jump(frames: torch.Tensor, boundaries) -> float:
    """Mean |frame difference| across the boundaries (each the first frame index of a new clip/window, inside
    (0, T)) divided by the median |frame difference| of the other consecutive pairs. 1 = no visible seam."""
    d = frame_differences(frames)
    cuts = sorted({int(b) for b in boundaries})
    if not cuts or cuts[0] < 1 or cuts[-1] > d.shape[0]:
        raise ParameterError("boundaries", f"{list(boundaries)} must be non-empty frame indices inside "
                                           f"(0, {d.shape[0] + 1})")
    at = torch.zeros_like(d, dtype=torch.bool)
    at[torch.tensor(cuts) - 1] = True
    if bool(at.all()):
        raise ParameterError("boundaries", "every frame step is a boundary: nothing inside clips to compare to")
    return float(d[at].mean() / d[~at].median().clamp_min(1e-12))


@torch.no_grad()
def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB, ``10 log10(1 / MSE)`` per image (peak 1), mean over images; ``b`` broadcasts (one reference)."""
    a, b = _images(a, "a").double(), _images(b, "b").double()
    if a.shape[1:] != b.shape[1:]:
        raise ParameterError("b", f"size {tuple(b.shape[1:3])} differs from {tuple(a.shape[1:3])}")
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return float((10.0 * torch.log10(1.0 / mse)).mean())


def _gauss_window(size: int, sigma: float, dtype, device) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2) ** 2) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size)


@torch.no_grad()
def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, eq. 13): Gaussian window (valid positions only), C1 = (0.01)^2,
    C2 = (0.03)^2 for data range 1, per RGB channel; mean over channels, positions and images."""
    a, b = _images(a, "a").double(), _images(b, "b").double()
    if a.shape[1:] != b.shape[1:]:
        raise ParameterError("b", f"size {tuple(b.shape[1:3])} differs from {tuple(a.shape[1:3])}")
    x, y = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2).expand(a.shape[0], -1, -1, -1)
    w = _gauss_window(min(window, *x.shape[-2:]), sigma, x.dtype, x.device)
    blur = lambda t: F.conv2d(t, w, groups=3)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


@torch.no_grad()
def diversity(videos) -> float:
    """Mean over pairs of seeds of the mean |difference| of their videos (a list of equal-shape ``[T, H, W, 3]``,
    or one ``[S, T, H, W, 3]``); needs at least 2."""
    v = torch.stack(list(videos)) if not torch.is_tensor(videos) else videos
    if v.ndim != 5 or v.shape[0] < 2 or v.shape[-1] != 3:
        raise ParameterError("videos", f"expected at least 2 videos [T, H, W, 3] of one shape, got {tuple(v.shape)}")
    flat = v.reshape(v.shape[0], -1).double()
    d = torch.cdist(flat[None], flat[None], p=1)[0] / flat.shape[1]                 # [S, S] mean |a - b|
    i, j = torch.triu_indices(v.shape[0], v.shape[0], 1)
    return float(d[i, j].mean())


def summary(values) -> dict:
    """``{"median", "min", "max", "n"}`` of per-seed values (the median of an even count is the mean of the two
    middle values)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ParameterError("values", "needs at least one value")
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
