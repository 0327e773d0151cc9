"""Warping, occlusion and splatting: frames at time t between two frames (pure torch, no comfy).

Forward-backward consistency (Sundaram, Brox, Keutzer 2010) gives occlusion masks, softmax splatting
(Niklaus & Liu 2020) moves flow or pixels to time t, and the frames are then backward-warped and blended
with visibility weights (Baker et al. IJCV 2011, Jiang et al. "Super SloMo" CVPR 2018 eq. 1).
Conventions: see :mod:`model_patches.flow`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

def pixel_grid(b: int, h: int, w: int, device, dtype) -> torch.Tensor:
    """Pixel coordinates ``(B, 2, H, W)``: channel 0 = x, channel 1 = y."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys]).unsqueeze(0).expand(b, 2, h, w)


def backward_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinear backward warp ``out(p) = img(p + flow(p))`` (border replicated), via ``grid_sample``."""
    b, _, h, w = img.shape
    pos = pixel_grid(b, h, w, img.device, img.dtype) + flow
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)

def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a flow field to ``size`` and rescale its vectors by the size ratio per axis."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = out.new_tensor([size[1] / w, size[0] / h]).view(1, 2, 1, 1)
    return out * scale

# ----------------------------------------------------------------------------- occlusion

def fb_consistency(flow01: torch.Tensor, flow10: torch.Tensor, a: float = 0.01, b: float = 0.5
                   ) -> torch.Tensor:
    """Forward-backward consistency of ``flow01``: 1 where visible in frame 1, 0 where occluded.

    Sundaram, Brox, Keutzer (ECCV 2010) eq. 5: occluded if
    ``|w + w_hat|^2 > a (|w|^2 + |w_hat|^2) + b`` with ``w_hat = flow10(p + flow01(p))``.
    Returns ``(B, 1, H, W)`` float mask.
    """
    back = backward_warp(flow10, flow01)
    lhs = ((flow01 + back) ** 2).sum(1, keepdim=True)
    rhs = a * ((flow01 ** 2).sum(1, keepdim=True) + (back ** 2).sum(1, keepdim=True)) + b
    return (lhs <= rhs).to(flow01.dtype)


# ----------------------------------------------------------------------------- splatting

def softmax_splat(values: torch.Tensor, flow: torch.Tensor, z: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax splatting (Niklaus & Liu, CVPR 2020, eq. 4), un-normalised.

    Forward-warps ``values`` ``(B, C, H, W)`` by ``flow`` with bilinear kernels weighted by
    ``exp(z)``; returns ``(sum_p exp(z_p) k(q - p - f_p) v_p, sum_p exp(z_p) k(q - p - f_p))``.
    Divide the first by the second for eq. 4 (``z = None`` gives summation splatting's average).
    ``z`` is used as is (no per-image normalisation) so splats from two frames can be summed.
    """
    b, c, h, w = values.shape
    dtype = values.dtype
    weight = torch.ones(b, 1, h, w, device=values.device, dtype=dtype) if z is None else \
        torch.exp(z.clamp(-80.0, 60.0)).to(dtype)
    pos = pixel_grid(b, h, w, values.device, flow.dtype) + flow
    x, y = pos[:, 0].reshape(b, -1), pos[:, 1].reshape(b, -1)
    x0, y0 = torch.floor(x), torch.floor(y)
    data = torch.cat([values * weight, weight], dim=1).reshape(b, c + 1, -1)
    out = torch.zeros(b, c + 1, h * w, device=values.device, dtype=dtype)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        k = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
        ok = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long()
        kk = (k * ok).to(dtype).unsqueeze(1)
        out.scatter_add_(2, idx.unsqueeze(1).expand(b, c + 1, -1), data * kk)
    out = out.reshape(b, c + 1, h, w)
    return out[:, :c], out[:, c:]


def fill_holes(values: torch.Tensor, weight: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Push-pull hole filling (Gortler et al. 1996, "The Lumigraph", sec. 3.3.1): normalised convolution.

    ``values`` are weight-premultiplied sums ``(B, C, H, W)``, ``weight`` ``(B, 1, H, W)``;
    returns the normalised values with holes (weight < eps) filled from coarser levels.
    """
    out = values / weight.clamp_min(eps)
    if min(values.shape[-2:]) <= 1:
        return out
    h, w = values.shape[-2:]
    cv = F.avg_pool2d(values, 2, ceil_mode=True)
    cw = F.avg_pool2d(weight, 2, ceil_mode=True)
    coarse = fill_holes(cv, cw, eps)
    up = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    alpha = (weight / eps).clamp(max=1.0)
    return alpha * out + (1 - alpha) * up


# ----------------------------------------------------------------------------- interpolation

OCCLUSION_MODES = ("visibility_warp", "softmax_splat", "off")


def photometric_z(img0: torch.Tensor, img1: torch.Tensor, flow01: torch.Tensor, alpha: float = 20.0
                  ) -> torch.Tensor:
    """Softmax-splatting importance metric, Niklaus & Liu 2020 eq. 5: ``Z = -alpha |I0 - warp(I1, F01)|``."""
    err = (img0 - backward_warp(img1, flow01)).abs().mean(1, keepdim=True)
    return -alpha * err


def interpolate(img0: torch.Tensor, img1: torch.Tensor, flow01: torch.Tensor, flow10: torch.Tensor,
                t: torch.Tensor, occlusion: str = "visibility_warp",
                guide0: torch.Tensor | None = None, guide1: torch.Tensor | None = None,
                z_alpha: float = 50.0, z_occluded: float = 2.0) -> torch.Tensor:
    """Frames at times ``t`` between ``img0`` (t=0) and ``img1`` (t=1), batched over pairs x times.

    ``img0, img1``: ``(B, C, H, W)``; flows ``(B, 2, H, W)``; ``t``: ``(T,)`` or per pair ``(B, T)``, in (0, 1).
    Returns ``(B, T, C, H, W)``. ``guide0/1`` (default: the images) feed the photometric terms.

    The splatting importance is ``Z = -z_alpha |I0 - warp(I1, F01)| - z_occluded [p occluded]``
    (Niklaus & Liu eq. 5 plus a penalty for forward-backward-inconsistent pixels).

    - ``visibility_warp``: the flows are softmax-splatted to time t (pixel ``p`` of frame 0
      lands at ``p + t F01(p)`` carrying ``F_t0 = -t F01``, ``F_t1 = (1-t) F01``; likewise from
      frame 1), holes are push-pull filled, both frames are backward-warped and blended with
      ``V_t0 (1-t) W0 + V_t1 t W1`` (Super SloMo eq. 1), the visibilities V coming from the
      forward-backward-consistent splat density of each frame.
    - ``softmax_splat``: the frames themselves are softmax-splatted (Niklaus & Liu eq. 4) with
      occluded pixels down-weighted; holes are filled from the ``visibility_warp`` result.
    - ``off``: linear flow ``F_t0 ~ -t F01(p)``, ``F_t1 ~ -(1-t) F10(p)``, plain blend.
    """
    if occlusion not in OCCLUSION_MODES:
        raise ValueError(f"occlusion must be one of {OCCLUSION_MODES}, got {occlusion!r}")
    b, c, h, w = img0.shape
    nt = t.shape[-1]
    dtype = torch.float32
    x0, x1 = img0.to(dtype), img1.to(dtype)
    f01, f10 = flow01.to(dtype), flow10.to(dtype)
    g0 = x0 if guide0 is None else guide0.to(dtype)
    g1 = x1 if guide1 is None else guide1.to(dtype)
    tt = t.to(device=x0.device, dtype=dtype).reshape(-1, nt, 1, 1, 1)

    def rep(x):  # (B, ...) -> (B*T, ...)
        return x.unsqueeze(1).expand(b, nt, *x.shape[1:]).reshape(b * nt, *x.shape[1:])

    tb = tt.expand(b, nt, 1, 1, 1).reshape(b * nt, 1, 1, 1)
    X0, X1 = rep(x0), rep(x1)
    if occlusion == "off":
        w0 = backward_warp(X0, rep(-f01) * tb)
        w1 = backward_warp(X1, rep(-f10) * (1 - tb))
        out = (1 - tb) * w0 + tb * w1
        return out.reshape(b, nt, c, h, w)

    vis0 = fb_consistency(f01, f10)  # pixels of frame 0 visible in frame 1
    vis1 = fb_consistency(f10, f01)
    z0 = photometric_z(g0, g1, f01, z_alpha) + z_occluded * (vis0 - 1)
    z1 = photometric_z(g1, g0, f10, z_alpha) + z_occluded * (vis1 - 1)
    F01, F10, Z0, Z1, V0, V1 = rep(f01), rep(f10), rep(z0), rep(z1), rep(vis0), rep(vis1)

    # frame 0 -> t: carries (F_t0, F_t1, visible-in-1 flag); frame 1 -> t likewise.
    s0, d0 = softmax_splat(torch.cat([-tb * F01, (1 - tb) * F01, torch.ones_like(V0)], 1), tb * F01, Z0)
    s1, d1 = softmax_splat(torch.cat([tb * F10, -(1 - tb) * F10, torch.ones_like(V1)], 1), (1 - tb) * F10, Z1)
    # raw splat densities (counts of landing pixels), for visibility
    _, n0 = softmax_splat(V0[:, :0], tb * F01)
    _, n1 = softmax_splat(V1[:, :0], (1 - tb) * F10)
    flows_t = fill_holes(s0[:, :4] + s1[:, :4], d0 + d1)
    ft0, ft1 = flows_t[:, :2], flows_t[:, 2:4]
    w0, w1 = backward_warp(X0, ft0), backward_warp(X1, ft1)
    # visibility of the t-pixel in frame 0 / frame 1: did any pixel of that frame land here?
    v0 = n0.clamp(max=1.0)
    v1 = n1.clamp(max=1.0)
    a0, a1 = (1 - tb) * v0, tb * v1
    den = a0 + a1
    blend = (1 - tb) * w0 + tb * w1
    out = torch.where(den > 1e-3, (a0 * w0 + a1 * w1) / den.clamp_min(1e-3), blend)
    if occlusion == "softmax_splat":
        si0, di0 = softmax_splat(X0, tb * F01, Z0 + torch.log((1 - tb).clamp_min(1e-6)))
        si1, di1 = softmax_splat(X1, (1 - tb) * F10, Z1 + torch.log(tb.clamp_min(1e-6)))
        splat = (si0 + si1) / (di0 + di1).clamp_min(1e-12)
        cover = ((n0 + n1) > 0.5).to(dtype)
        out = cover * splat + (1 - cover) * out
    return out.reshape(b, nt, c, h, w)
