"""Weight-free optical flow and flow-based frame interpolation (pure torch + kornia, no comfy).

Flow: coarse-to-fine TV-L1 with image warping (Zach, Pock, Bischof 2007; Wedel et al. 2009;
the discretisation of Sanchez, Meinhardt-Llopis, Facciolo, IPOL 2013), robust L1 data term,
median filtering of the flow after every warp (Sun, Roth, Black 2010). Small objects that move
further than the coarse levels can see are caught by exhaustive colour block matching at one
coarse level, fused into the flow where it explains the frames better (in the spirit of
Brox & Malik's large-displacement flow, PAMI 2011, and Lempitsky et al.'s FusionFlow, CVPR 2008).
Every function is batched over all frame pairs.

Interpolation: forward-backward consistency (Sundaram, Brox, Keutzer 2010) gives occlusion
masks, softmax splatting (Niklaus & Liu 2020) moves flow or pixels to time t, and the frames
are then backward-warped and blended with visibility weights (Baker et al. IJCV 2011,
Jiang et al. "Super SloMo" CVPR 2018 eq. 1).

Conventions: images ``(B, C, H, W)`` float in [0, 1]; flow ``(B, 2, H, W)`` in pixels,
channel 0 = x (width), channel 1 = y (height); ``flow01`` maps a pixel of frame 0 to its
position in frame 1: ``img0(p) ~ img1(p + flow01(p))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F


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


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a flow field to ``size`` and rescale its vectors by the size ratio per axis."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = out.new_tensor([size[1] / w, size[0] / h]).view(1, 2, 1, 1)
    return out * scale


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
