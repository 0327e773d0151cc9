"""Coarse-to-fine TV-L1 optical flow (pure torch + kornia, no comfy).

Coarse-to-fine TV-L1 with image warping (Zach, Pock, Bischof 2007; Wedel et al. 2009;
the discretisation of Sanchez, Meinhardt-Llopis, Facciolo, IPOL 2013), robust L1 data term,
median filtering of the flow after every warp (Sun, Roth, Black 2010). Small objects that move
further than the coarse levels can see are caught by exhaustive colour block matching at one
coarse level, fused into the flow where it explains the frames better (in the spirit of
Brox & Malik's large-displacement flow, PAMI 2011, and Lempitsky et al.'s FusionFlow, CVPR 2008).
Every function is batched over all frame pairs. Conventions: images ``(B, C, H, W)`` float in [0, 1]; flow ``(B, 2, H, W)`` in pixels,
channel 0 = x (width), channel 1 = y (height); ``flow01`` maps a pixel of frame 0 to its
position in frame 1: ``img0(p) ~ img1(p + flow01(p))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F

from .warp import backward_warp, resize_flow

# ----------------------------------------------------------------------------- presets

@dataclass(frozen=True)
class FlowParams:
    """TV-L1 parameters (images in [0, 1]).

    ``lam`` is the data weight lambda of Zach et al. eq. 3; ``theta`` couples u and v (eq. 5);
    ``tau`` is the dual step (tau <= 1/4); ``zfactor`` is the pyramid down-sampling factor;
    ``warps`` image warps per level and ``iters`` primal-dual iterations per warp (``fine_warps``,
    ``fine_iters``: the same at the finest level, None = as elsewhere); ``median`` the size of the
    median filter applied after the last warp of a level and ``median_inner`` after the other
    warps (0 = off). ``match_level`` (0 = off) is the pyramid level (0 = finest) at which
    exhaustive block matches within ``match_radius`` px (that level's pixels, ``match_patch``
    window) replace the flow where their colour error is lower by ``match_margin``.
    """

    lam: float = 80.0
    theta: float = 0.3
    tau: float = 0.25
    zfactor: float = 0.5
    min_size: int = 16
    max_levels: int = 8
    warps: int = 5
    iters: int = 10
    median: int = 5
    median_inner: int = 5
    fine_warps: int | None = None
    fine_iters: int | None = None
    match_level: int = 2
    match_radius: int = 12
    match_patch: int = 5
    match_margin: float = 0.02
    median_exact: bool = True


PRESETS = {
    "fast": FlowParams(warps=3, iters=5, median_inner=0, fine_warps=2, match_radius=8),
    "balanced": FlowParams(fine_warps=1, fine_iters=10),
    "quality": FlowParams(warps=8, iters=20, match_radius=16),
}


# ----------------------------------------------------------------------------- basic ops

def to_gray(img: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` for 3 channels; channel mean otherwise."""
    if img.shape[1] == 3:
        w = img.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (img * w).sum(1, keepdim=True)
    return img.mean(1, keepdim=True)

def central_gradient(img: torch.Tensor) -> torch.Tensor:
    """Central differences ``(dI/dx, dI/dy)``, replicate border: ``(B, C, 2, H, W)`` (kornia)."""
    return kornia.filters.spatial_gradient(img, mode="diff", order=1, normalized=True) * 2.0


def forward_gradient(u: torch.Tensor) -> torch.Tensor:
    """Forward differences with Neumann boundary, IPOL 2013 eq. 8: ``(..., 2, H, W)`` (x, y)."""
    gx = F.pad(u[..., :, 1:] - u[..., :, :-1], (0, 1))
    gy = F.pad(u[..., 1:, :] - u[..., :-1, :], (0, 0, 0, 1))
    return torch.stack([gx, gy], dim=-3)


def divergence(p: torch.Tensor) -> torch.Tensor:
    """Discrete divergence, the negative adjoint of :func:`forward_gradient` (IPOL 2013 eq. 9).

    ``p``: ``(..., 2, H, W)`` whose last column (x part) and last row (y part) are zero.
    """
    px, py = p[..., 0, :, :], p[..., 1, :, :]
    dx = px - F.pad(px[..., :, :-1], (1, 0))
    dy = py - F.pad(py[..., :-1, :], (0, 0, 1, 0))
    return dx + dy


def gaussian_pyramid(img: torch.Tensor, params: FlowParams) -> list[torch.Tensor]:
    """Pyramid, finest first: Gaussian blur sigma = 0.6 sqrt(1/z^2 - 1), then resize by z (IPOL 2013)."""
    z = params.zfactor
    sigma = 0.6 * math.sqrt(1.0 / (z * z) - 1.0)
    k = 2 * int(math.ceil(2 * sigma)) + 1
    levels = [img]
    h, w = img.shape[-2:]
    while len(levels) < params.max_levels:
        nh, nw = int(round(h * z ** len(levels))), int(round(w * z ** len(levels)))
        if min(nh, nw) < params.min_size:
            break
        blurred = kornia.filters.gaussian_blur2d(levels[-1], (k, k), (sigma, sigma), border_type="replicate")
        levels.append(F.interpolate(blurred, size=(nh, nw), mode="bilinear", align_corners=False))
    return levels

# ----------------------------------------------------------------------------- TV-L1 flow

def _median3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))


def _median5(a, b, c, d, e) -> torch.Tensor:
    """Exact median of five tensors with 10 element-wise min/max (a selection network)."""
    f = torch.maximum(torch.minimum(a, b), torch.minimum(c, d))
    g = torch.minimum(torch.maximum(a, b), torch.maximum(c, d))
    return _median3(e, f, g)


def median_filter(u: torch.Tensor, k: int) -> torch.Tensor:
    """Separable ``k x k`` median (``k`` = 3 or 5) of every channel, replicated borders.

    Sun, Roth, Black (CVPR 2010, sec. 3.1) median-filter the flow after every warp. This is the
    separable form (median of the ``k`` column-wise ``k``-medians, Narendra 1981): an exact
    median along rows, then along columns, with selection networks of ``torch.minimum/maximum``
    on shifted views. It rejects the same isolated outliers as the square median at a fraction
    of the cost (20 element-wise ops for 5 x 5 instead of a sort of 25).
    """
    if k <= 1:
        return u
    if k not in (3, 5):
        raise ValueError(f"median size must be 3 or 5, got {k}")
    r = k // 2
    med = _median3 if k == 3 else _median5
    h, w = u.shape[-2:]
    x = F.pad(u, (r, r, 0, 0), mode="replicate")
    x = med(*[x[..., :, i:i + w] for i in range(k)])
    x = F.pad(x, (0, 0, r, r), mode="replicate")
    return med(*[x[..., i:i + h, :] for i in range(k)])


def tvl1_level(i0: torch.Tensor, i1: torch.Tensor, u: torch.Tensor, params: FlowParams,
               warps: int | None = None, iters: int | None = None) -> torch.Tensor:
    """TV-L1 at one pyramid level (Wedel et al. 2009, Alg. 1; IPOL 2013 Alg. 1): warps x primal-dual.

    Energy ``E(u) = sum |grad u| + lambda |I1(x + u0) + grad I1 . (u - u0) - I0(x)|`` linearised
    around ``u0`` at each warp; ``i0, i1``: ``(B, 1, H, W)``; ``u``: ``(B, 2, H, W)``.
    The thresholding step (Zach et al. 2007, Prop. 1: ``v = u + lt grad`` if ``rho < -lt |grad|^2``,
    ``u - lt grad`` if ``rho > lt |grad|^2``, else ``u - rho grad / |grad|^2``, ``lt = lambda theta``) is
    written as ``v = u + clip(-rho / |grad|^2, -lt, lt) grad`` (the same three cases), and the dual update
    ``p <- (p + tau/theta grad u) / (1 + tau/theta |grad u|)`` (Chambolle 2004) runs in place on
    buffers allocated once per level.
    """
    warps = params.warps if warps is None else warps
    iters = params.iters if iters is None else iters
    lt = params.lam * params.theta
    taut = params.tau / params.theta
    theta = params.theta
    g1 = central_gradient(i1)[:, 0]  # (B, 2, H, W)
    src = torch.cat([i1, g1], dim=1)
    u = u.contiguous().clone()
    px = torch.zeros_like(u)  # dual variable, x part, one per flow component
    py = torch.zeros_like(u)
    gx = torch.zeros_like(u)  # forward gradient of u (last column / row stay 0: Neumann)
    gy = torch.zeros_like(u)
    div = torch.empty_like(u)
    nrm = torch.empty_like(u)
    rho = torch.empty_like(u[:, :1])
    for w_i in range(warps):
        warped = backward_warp(src, u)
        i1w, grad = warped[:, :1], warped[:, 1:].contiguous()
        gxx, gyy = grad[:, :1], grad[:, 1:]
        neg_inv = (grad * grad).sum(1, keepdim=True).add_(1e-9).reciprocal_().neg_()
        rho_c = i1w - (grad * u).sum(1, keepdim=True) - i0
        for _ in range(iters):
            # v = threshold(u): rho = rho_c + grad . u, step = clip(-rho / |grad|^2, -lt, lt)
            torch.addcmul(rho_c, gxx, u[:, :1], out=rho)
            rho.addcmul_(gyy, u[:, 1:]).mul_(neg_inv).clamp_(-lt, lt)
            u.addcmul_(rho, grad)
            # u = v + theta div p (IPOL eq. 9)
            div.copy_(px)
            div[..., :, 1:] -= px[..., :, :-1]
            div += py
            div[..., 1:, :] -= py[..., :-1, :]
            u.add_(div, alpha=theta)
            # p = (p + taut grad u) / (1 + taut |grad u|)
            torch.sub(u[..., :, 1:], u[..., :, :-1], out=gx[..., :, :-1])
            torch.sub(u[..., 1:, :], u[..., :-1, :], out=gy[..., :-1, :])
            torch.hypot(gx, gy, out=nrm).mul_(taut).add_(1.0)
            px.add_(gx, alpha=taut).div_(nrm)
            py.add_(gy, alpha=taut).div_(nrm)
        if w_i < warps - 1 and params.median_inner > 1:
            u = median_filter(u, params.median_inner)  # separable, cheap
        elif w_i == warps - 1 and params.median > 1:
            if params.median_exact:  # exact square median (kornia's selection network)
                u = kornia.filters.median_blur(u, (params.median, params.median), border_type="replicate")
            else:
                u = median_filter(u, params.median)
    return u


def box_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """``k x k`` mean with replicated borders: separable sums of ``k`` shifted views along rows, then
    columns (``2 (k - 1)`` additions per pixel; faster on CPU than running sums for small ``k``)."""
    if k <= 1:
        return x
    r = k // 2
    h, w = x.shape[-2:]
    p = F.pad(x, (r, r, r, r), mode="replicate")
    s = p[..., :, 0:w].clone()
    for i in range(1, k):
        s += p[..., :, i:i + w]
    out = s[..., 0:h, :].clone()
    for i in range(1, k):
        out += s[..., i:i + h, :]
    return out.div_(k * k)


def block_match(f0: torch.Tensor, f1: torch.Tensor, radius: int, patch: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exhaustive integer block matching: sum of absolute differences over a ``patch x patch`` window.

    ``f0, f1``: ``(B, C, H, W)``; searches displacements ``d`` in ``[-radius, radius]^2``, cost
    ``box(mean_c |f0(p) - f1(p + d)|)``; returns the best flow ``(B, 2, H, W)`` and its cost
    ``(B, 1, H, W)``. One row of displacements at a time, so memory is ``(2 radius + 1)`` cost maps.
    """
    b, c, h, w = f0.shape
    r = radius
    n = 2 * r + 1
    f1p = F.pad(f1, (r, r, r, r), mode="replicate")
    best = torch.full((b, 1, h, w), float("inf"), device=f0.device, dtype=f0.dtype)
    flow = torch.zeros(b, 2, h, w, device=f0.device, dtype=f0.dtype)
    cost = torch.empty(b, n, h, w, device=f0.device, dtype=f0.dtype)
    for dy in range(-r, r + 1):
        rows = f1p[..., dy + r:dy + r + h, :]
        for j in range(n):
            torch.sum((rows[..., j:j + w] - f0).abs_(), 1, out=cost[:, j])
        cmin, idx = box_filter(cost, patch).min(1, keepdim=True)
        better = cmin < best
        best = torch.where(better, cmin, best)
        flow[:, :1] = torch.where(better, (idx - r).to(flow.dtype), flow[:, :1])
        flow[:, 1:] = torch.where(better, torch.full_like(cmin, float(dy)), flow[:, 1:])
    return flow, best / c


def fuse_matches(f0: torch.Tensor, f1: torch.Tensor, u: torch.Tensor, params: FlowParams) -> torch.Tensor:
    """Per-pixel fusion of the flow ``u`` with exhaustive block matches (FusionFlow, Lempitsky et al.
    2008, reduced to a winner-take-all choice between two proposals), then a 5 x 5 median.

    The match replaces ``u`` where its patch colour error is lower by ``match_margin``:
    ``box(|f0 - warp(f1, match)|) + margin < box(|f0 - warp(f1, u)|)``. ``f0, f1``: colour frames
    at the level's size; ``u``: ``(B, 2, H, W)``.
    """
    match, mcost = block_match(f0, f1, params.match_radius, params.match_patch)
    ucost = box_filter((f0 - backward_warp(f1, u)).abs().mean(1, keepdim=True), params.match_patch)
    use = (mcost + params.match_margin < ucost).to(u.dtype)
    fused = use * match + (1 - use) * u
    return median_filter(fused, 5)


def estimate_flow(img0: torch.Tensor, img1: torch.Tensor, params: FlowParams | str = "balanced",
                  init: torch.Tensor | None = None) -> torch.Tensor:
    """Coarse-to-fine TV-L1 optical flow ``img0 -> img1`` (Zach et al. 2007 eq. 3, Wedel et al. 2009).

    ``img0, img1``: ``(B, C, H, W)`` in [0, 1] (converted to luma); returns ``(B, 2, H, W)`` float32
    flow in pixels with ``img0(p) ~ img1(p + flow(p))``. Batched: pass every frame pair at once.
    """
    if isinstance(params, str):
        params = PRESETS[params]
    dtype = torch.float32
    i0 = to_gray(img0.to(dtype)) if img0.shape[1] != 1 else img0.to(dtype)
    i1 = to_gray(img1.to(dtype)) if img1.shape[1] != 1 else img1.to(dtype)
    pyr0, pyr1 = gaussian_pyramid(i0, params), gaussian_pyramid(i1, params)
    coarse = pyr0[-1].shape[-2:]
    if init is None:
        u = torch.zeros(i0.shape[0], 2, *coarse, device=i0.device, dtype=dtype)
    else:
        u = resize_flow(init.to(dtype), tuple(coarse))
    for lev, (a, b) in enumerate(zip(reversed(pyr0), reversed(pyr1))):
        if u.shape[-2:] != a.shape[-2:]:
            u = resize_flow(u, tuple(a.shape[-2:]))
        if params.match_level and lev == len(pyr0) - 1 - params.match_level:
            size = tuple(a.shape[-2:])
            u = fuse_matches(F.interpolate(img0.to(dtype), size=size, mode="area"),
                             F.interpolate(img1.to(dtype), size=size, mode="area"), u, params)
        if lev == len(pyr0) - 1:
            u = tvl1_level(a, b, u, params, params.fine_warps, params.fine_iters)
        else:
            u = tvl1_level(a, b, u, params)
    return u


def bidirectional_flow(frames0: torch.Tensor, frames1: torch.Tensor, params: FlowParams | str = "balanced"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward flow of every pair in one batched call: ``(flow01, flow10)``."""
    both = estimate_flow(torch.cat([frames0, frames1]), torch.cat([frames1, frames0]), params)
    n = frames0.shape[0]
    return both[:n], both[n:]
