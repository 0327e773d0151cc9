"""Whole videos: output frame times and chunked temporal upsampling of aligned streams (pure torch, no comfy)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .scene_cuts import cut_fill, detect_scene_cuts
from .tvl1 import FlowParams, bidirectional_flow
from .warp import interpolate, resize_flow

def guide_from_channels(x: torch.Tensor) -> torch.Tensor:
    """First principal component of the channels, rescaled to [0, 1]: a gray guide image for flow.

    For latents (no natural luma). ``x``: ``(N, C, H, W)``; the projection is shared by all
    frames so brightness constancy still holds across them (Pearson 1901, PCA).
    """
    n, c, h, w = x.shape
    flat = x.float().permute(1, 0, 2, 3).reshape(c, -1)
    flat = flat - flat.mean(1, keepdim=True)
    cov = flat @ flat.T / max(flat.shape[1] - 1, 1)
    _, vecs = torch.linalg.eigh(cov)
    g = (vecs[:, -1:].T @ flat).reshape(1, n, h, w).permute(1, 0, 2, 3)
    lo, hi = g.amin(), g.amax()
    return (g - lo) / (hi - lo).clamp_min(1e-8)

# ----------------------------------------------------------------------------- whole videos

def output_times(n: int, multiplier: int | None = None, source_fps: float | None = None,
                 target_fps: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Output frame times as ``(k, t)``: pair index ``k`` (long) and fraction ``t`` in [0, 1).

    Multiplier ``m``: ``(n-1) m + 1`` frames, output ``j`` at ``k = j // m``, ``t = (j mod m) / m``
    (exact, so output ``k m`` is input ``k``). Target fps: output ``j`` at source time
    ``j * source_fps / target_fps``; times within 1e-6 of an integer are snapped to it.
    """
    if multiplier is not None:
        j = torch.arange((n - 1) * multiplier + 1)
        return j // multiplier, (j % multiplier).double() / multiplier
    step = float(source_fps) / float(target_fps)
    count = int(math.floor((n - 1) / step + 1e-6)) + 1
    tau = torch.arange(count, dtype=torch.float64) * step
    k = torch.floor(tau + 1e-6)
    t = (tau - k).clamp_min(0.0)
    t = torch.where(t < 1e-6, torch.zeros_like(t), t)
    return k.long().clamp(max=n - 1), t


def upsample_video(streams: list[torch.Tensor], k: torch.Tensor, t: torch.Tensor, interp_fn,
                   chunk_pairs: int = 4, on_chunk=None) -> list[torch.Tensor]:
    """Temporal upsampling of aligned frame streams, chunk by chunk (peak memory: output + one chunk).

    ``streams[0]`` is the guide the flow is computed on; ``streams[1:]`` ``(N, C_s, H_s, W_s)`` are
    upsampled. Output frames with ``t == 0`` are copies of input frame ``k`` (bit-identical);
    the others come from ``interp_fn(clips, local_k, t)``, ``clips`` being each stream's frames
    ``[start, end]`` of the chunk, returning one ``(S, C_s, H_s, W_s)`` tensor per output stream.
    ``on_chunk(n_pairs)`` is called after every chunk (progress bar, interrupt check).
    """
    n = streams[0].shape[0]
    outs = [torch.empty((k.numel(), *s.shape[1:]), dtype=s.dtype, device=s.device) for s in streams[1:]]
    keep = t == 0
    kept_at, kept_src = keep.nonzero().flatten(), k[keep]
    for o, s in zip(outs, streams[1:]):
        for c0 in range(0, kept_at.numel(), 64):  # in slices: no whole-video temporary
            o[kept_at[c0:c0 + 64]] = s[kept_src[c0:c0 + 64]]
    for start in range(0, n - 1, chunk_pairs):
        end = min(start + chunk_pairs, n - 1)
        sel = (~keep) & (k >= start) & (k < end)
        if bool(sel.any()):
            clips = [s[start:end + 1] for s in streams]
            res = interp_fn(clips, k[sel] - start, t[sel])
            for o, r in zip(outs, res):
                o[sel] = r.to(device=o.device, dtype=o.dtype)
        if on_chunk is not None:
            on_chunk(end - start)
    return outs


def flow_interpolator(params: FlowParams | str = "balanced", occlusion: str = "visibility_warp",
                      cut_threshold: float | None = 0.35, device: torch.device | str = "cpu",
                      max_batch: int = 8, clamp: list[bool] | None = None):
    """``interp_fn`` for :func:`upsample_video` using the weight-free flow.

    Flows of all pairs of the chunk are estimated in one batched call on the guide stream
    (pairs across a detected cut are skipped and filled by :func:`cut_fill`); for streams of
    another resolution (latents) the flow is resized and the guide area-downsampled.
    ``clamp[s]`` clamps stream ``s``'s output to [0, 1] (images).
    """
    def fn(clips, local_k, t):
        g = clips[0].to(device=device, dtype=torch.float32)
        pairs = g.shape[0] - 1
        cut = detect_scene_cuts(g, cut_threshold) if cut_threshold is not None else \
            torch.zeros(pairs, dtype=torch.bool, device=g.device)
        f01 = torch.zeros(pairs, 2, *g.shape[-2:], device=g.device)
        f10 = torch.zeros_like(f01)
        live = ~cut
        if bool(live.any()):
            a, b = bidirectional_flow(g[:-1][live], g[1:][live], params)
            f01[live], f10[live] = a, b
        lk = local_k.to(g.device)
        tt = t.to(device=g.device, dtype=torch.float32)
        results = []
        for si, clip in enumerate(clips[1:]):
            x = clip.to(device=device, dtype=torch.float32)
            size = tuple(x.shape[-2:])
            gs = g if tuple(g.shape[-2:]) == size else F.interpolate(g, size=size, mode="area")
            a = f01 if tuple(f01.shape[-2:]) == size else resize_flow(f01, size)
            b = f10 if tuple(f10.shape[-2:]) == size else resize_flow(f10, size)
            parts = []
            for s0 in range(0, lk.numel(), max_batch):
                idx = lk[s0:s0 + max_batch]
                ts = tt[s0:s0 + max_batch]
                y = interpolate(x[:-1][idx], x[1:][idx], a[idx], b[idx], ts.view(-1, 1), occlusion,
                                gs[:-1][idx], gs[1:][idx])[:, 0]
                c = cut[idx].view(-1, 1, 1, 1)
                y = torch.where(c, cut_fill(x[:-1][idx], x[1:][idx], ts), y)
                if clamp is not None and clamp[si]:
                    y = y.clamp(0.0, 1.0)
                parts.append(y)
            results.append(torch.cat(parts))
        return results

    return fn
