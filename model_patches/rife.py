"""RIFE 4.x intermediate-flow network (IFNet), written for this project, plus a validating loader.

Huang, Zhang, Heng, Shi, Zhou, "Real-Time Intermediate Flow Estimation for Video Frame
Interpolation" (ECCV 2022). IFNet estimates, coarse to fine, the two intermediate flows
``F_t->0, F_t->1`` and a fusion mask ``M`` directly; the frame is (paper eq. 1)

    I_t = M * warp(I0, F_t->0) + (1 - M) * warp(I1, F_t->1),   M = sigmoid(m).

The 4.x releases ("Practical-RIFE") condition every block on t, refine the flows residually
over a list of scales (16, 8, 4, 2, 1 for five blocks), and feed each block a small learned
encoding of both frames (the ``encode`` head) plus the previous block's hidden features.
The layer shapes are read from the state dict, so the 4.x files that share this layout load.
Pure torch, no comfy import; nothing is ever downloaded.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .flow.scene_cuts import cut_fill, detect_scene_cuts
from .flow.warp import backward_warp


class RifeFormatError(ValueError):
    """The file or state dict is not a RIFE 4.x IFNet state dict this module can run."""


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class _ConvAct(nn.Sequential):
    """3x3 convolution followed by LeakyReLU(0.2); stored as ``[conv, act]`` (state-dict key ``.0``)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2))


class _Residual(nn.Module):
    """``lrelu(conv(x) * beta + x)``: residual 3x3 conv with a learned per-channel gain ``beta``."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, ch, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _lrelu(self.conv(x) * self.beta + x)


class _Encoder(nn.Module):
    """Per-frame feature head: stride-2 conv, two convs, 4x4 transposed conv back to full size."""

    def __init__(self, width: int, out_ch: int):
        super().__init__()
        self.cnn0 = nn.Conv2d(3, width, 3, 2, 1)
        self.cnn1 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn2 = nn.Conv2d(width, width, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(width, out_ch, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _lrelu(self.cnn0(x))
        h = _lrelu(self.cnn1(h))
        h = _lrelu(self.cnn2(h))
        return self.cnn3(h)


class _FlowBlock(nn.Module):
    """One IFNet block at scale ``s``: works at 1/(4 s) resolution, returns full-size
    ``(flow update (4 ch), mask logit (1 ch), hidden features)``."""

    def __init__(self, cin: int, width: int, n_res: int, out_ch: int):
        super().__init__()
        self.conv0 = nn.Sequential(_ConvAct(cin, width // 2, 2), _ConvAct(width // 2, width, 2))
        self.convblock = nn.Sequential(*[_Residual(width) for _ in range(n_res)])
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * out_ch, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, s: float):
        x = F.interpolate(x, scale_factor=1.0 / s, mode="bilinear", align_corners=False)
        if flow is not None:
            small = F.interpolate(flow, scale_factor=1.0 / s, mode="bilinear", align_corners=False) / s
            x = torch.cat([x, small], 1)
        y = self.lastconv(self.convblock(self.conv0(x)))
        y = F.interpolate(y, scale_factor=s, mode="bilinear", align_corners=False)
        return y[:, :4] * s, y[:, 4:5], y[:, 5:]


class IFNet(nn.Module):
    """RIFE 4.x IFNet. ``blocks``: list of ``(in_ch, width, n_res, out_ch)``; ``enc``: ``(width, ch)`` or None."""

    def __init__(self, blocks: list[tuple[int, int, int, int]], enc: tuple[int, int] | None):
        super().__init__()
        for i, spec in enumerate(blocks):
            self.add_module(f"block{i}", _FlowBlock(*spec))
        self.n_blocks = len(blocks)
        self.encode = _Encoder(*enc) if enc is not None else None

    def blocks(self) -> list[_FlowBlock]:
        return [getattr(self, f"block{i}") for i in range(self.n_blocks)]

    def pad_multiple(self, scale: float = 1.0) -> int:
        """Input sides must be multiples of this (coarsest scale x the blocks' 4x down-sampling)."""
        top = 2 ** (self.n_blocks - 1) / scale
        return int(2 ** math.ceil(math.log2(max(top * 4, 1))))

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, t: torch.Tensor, scale: float = 1.0
                ) -> torch.Tensor:
        """Frame at time ``t`` (``(B,)`` in [0, 1]) from ``img0, img1`` ``(B, 3, H, W)`` in [0, 1].

        Block ``i`` runs at scale ``2^(n-1-i) / scale``; block 0 sees both frames, their encodings
        and t; later blocks see both frames and encodings warped by the current flows, t, the mask
        logit, the hidden features and the flows, and add a residual flow (RIFE 4.x refinement).
        """
        b, _, h, w = img0.shape
        tmap = t.to(img0.dtype).view(b, 1, 1, 1).expand(b, 1, h, w)
        if self.encode is not None:
            e0, e1 = self.encode(img0), self.encode(img1)
        else:
            e0 = e1 = img0[:, :0]
        flow = mask = feat = None
        w0, w1 = img0, img1
        for i, block in enumerate(self.blocks()):
            s = 2 ** (self.n_blocks - 1 - i) / scale
            if flow is None:
                flow, mask, feat = block(torch.cat([img0, img1, e0, e1, tmap], 1), None, s)
            else:
                we0 = backward_warp(e0, flow[:, :2]) if e0.shape[1] else e0
                we1 = backward_warp(e1, flow[:, 2:4]) if e1.shape[1] else e1
                d, mask, feat = block(torch.cat([w0, w1, we0, we1, tmap, mask, feat], 1), flow, s)
                flow = flow + d
            w0 = backward_warp(img0, flow[:, :2])
            w1 = backward_warp(img1, flow[:, 2:4])
        m = torch.sigmoid(mask)
        return w0 * m + w1 * (1 - m)


# ----------------------------------------------------------------------------- loading

_BLOCK_KEY = re.compile(r"^block(\d+)\.conv0\.0\.0\.weight$")


def normalize_state_dict(sd: dict) -> dict:
    """Strip DataParallel's ``module.`` prefix; keep only the IFNet's ``block*``/``encode`` tensors."""
    if not isinstance(sd, dict) or not sd:
        raise RifeFormatError("expected a non-empty state dict (a mapping of tensor names to tensors)")
    for key in ("state_dict", "model", "params"):  # common wrappers
        if key in sd and isinstance(sd[key], dict) and not any(str(k).startswith("block") for k in sd):
            sd = sd[key]
    out = {}
    for k, v in sd.items():
        if not isinstance(k, str):
            continue
        k = k[len("module."):] if k.startswith("module.") else k
        if k.startswith("block") or k.startswith("encode."):
            if not torch.is_tensor(v):
                raise RifeFormatError(f"entry {k!r} is not a tensor")
            out[k] = v
    return out


def infer_architecture(sd: dict) -> tuple[list[tuple[int, int, int, int]], tuple[int, int] | None]:
    """Read the block list and encoder shape from a RIFE 4.x state dict, checking consistency."""
    idx = sorted(int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k)))
    if not idx:
        raise RifeFormatError("no 'block0.conv0.0.0.weight' key: this is not a RIFE IFNet state dict")
    if idx != list(range(len(idx))) or len(idx) < 2:
        raise RifeFormatError(f"expected consecutive blocks block0..blockN (N >= 1), found {idx}")
    enc = None
    if "encode.cnn0.weight" in sd:
        try:
            enc = (sd["encode.cnn0.weight"].shape[0], sd["encode.cnn3.weight"].shape[1])
        except KeyError as e:
            raise RifeFormatError(f"encoder head incomplete: missing {e}") from None
    elif any(k.startswith("encode.") for k in sd):
        raise RifeFormatError("unsupported RIFE variant: its 'encode' head is not the 4.x cnn0..cnn3 layout")
    e = enc[1] if enc else 0
    blocks = []
    for i in idx:
        p = f"block{i}."
        try:
            cin = sd[p + "conv0.0.0.weight"].shape[1]
            width = sd[p + "conv0.1.0.weight"].shape[0]
            out4 = sd[p + "lastconv.0.weight"].shape[1]
        except KeyError as err:
            raise RifeFormatError(f"block{i} is missing {err}") from None
        n_res = len({k.split(".")[2] for k in sd if k.startswith(p + "convblock.") and k.endswith(".conv.weight")})
        if out4 % 4 or out4 // 4 < 5:
            raise RifeFormatError(f"block{i}.lastconv outputs {out4} channels; RIFE 4.x needs 4 * (4 flow + 1 mask + features)")
        out_ch = out4 // 4
        blocks.append((cin, width, n_res, out_ch))
    for i, (cin, _, _, out_ch) in enumerate(blocks):
        expect = 7 + 2 * e if i == 0 else 6 + 2 * e + 1 + 1 + (blocks[i - 1][3] - 5) + 4
        if cin != expect:
            raise RifeFormatError(
                f"block{i} takes {cin} input channels but the RIFE 4.x layout with a {e}-channel encoder "
                f"needs {expect}: unsupported RIFE version")
    return blocks, enc


def build_ifnet(sd: dict) -> IFNet:
    """Validate a RIFE 4.x state dict and return an IFNet in eval mode with its weights loaded."""
    sd = normalize_state_dict(sd)
    blocks, enc = infer_architecture(sd)
    net = IFNet(blocks, enc)
    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    extra = sorted(k for k in sd if k not in own)
    if extra:
        raise RifeFormatError(f"{len(extra)} tensors that are not part of the RIFE 4.x IFNet this layout describes, "
                              f"e.g. {extra[:3]} (foreign keys: a different RIFE version or another model)")
    if missing:
        raise RifeFormatError(f"state dict lacks {len(missing)} IFNet tensors, e.g. {missing[:3]}")
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        k = bad[0]
        raise RifeFormatError(f"tensor {k!r} has shape {tuple(sd[k].shape)}, expected {tuple(own[k].shape)}")
    net.load_state_dict({k: sd[k].float() for k in own}, strict=True)
    return net.eval().requires_grad_(False)


_FILM_PREFIXES = ("extract.", "predict_flow.", "fuse.", "feature_extractor.", "flow_estimator.")


def _describe_foreign(sd: dict) -> str | None:
    """A readable name for known non-RIFE-4.x layouts (FILM, older RIFE), or None."""
    keys = [k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k for k in sd]
    keys = [k for k in keys if isinstance(k, str)]
    if any(k.startswith(_FILM_PREFIXES) for k in keys):
        return ("a FILM model (keys such as 'extract.', 'predict_flow.', 'fuse.'); this node runs RIFE 4.x only; "
                "use ComfyUI's own frame-interpolation nodes for FILM")
    if any(k.startswith(("contextnet.", "unet.", "fusionnet.")) for k in keys):
        return "a RIFE 2.x/3.x model (contextnet/unet heads); only the RIFE 4.x IFNet layout is supported"
    return None


def load_rife(path: str | Path) -> IFNet:
    """Load a RIFE 4.x weights file (``flownet.pkl``/``.pth``/``.ckpt`` torch pickle, or ``.safetensors``).

    The common 4.x release formats are read: a plain state dict (Practical-RIFE's ``flownet.pkl``,
    ComfyUI-Frame-Interpolation's ``rife4*.pth``), with or without DataParallel's ``module.`` prefix,
    wrapped in ``state_dict``/``model``/``params``, fp16 or fp32, pickle or safetensors.
    Pickles are read with ``torch.load(weights_only=True)``: no code in the file is executed.
    Raises :class:`RifeFormatError` whose message starts with the file's name and says what is wrong:
    truncated or unreadable file, TorchScript archive, FILM or older-RIFE weights, foreign keys, shapes.
    """
    path = Path(path)
    name = path.name
    import zipfile

    if path.suffix != ".safetensors" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            members = z.namelist()
        if any("/code/" in m or m.endswith("constants.pkl") for m in members):
            raise RifeFormatError(f"{name}: a TorchScript archive (e.g. FILM's film_net_fp32.pt), not a RIFE 4.x "
                                  "state dict; this node runs RIFE 4.x only")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a format error for the user
        msg = str(e).splitlines()[0] if str(e) else ""
        low = msg.lower()
        what = "truncated or corrupt (the file ends early)" if any(
            w in low for w in ("central directory", "unexpected eof", "ran out of input", "truncated",
                               "incomplete", "failed finding", "invalid header", "buffer")) else \
            "not a weights file this loader can read"
        raise RifeFormatError(f"{name}: cannot read it as a torch pickle or safetensors file: {what} "
                              f"({type(e).__name__}: {msg[:200]})") from None
    if isinstance(sd, dict):
        foreign = _describe_foreign(sd)
        if foreign and not any(isinstance(k, str) and k.removeprefix("module.").startswith("block") for k in sd):
            raise RifeFormatError(f"{name}: {foreign}")
    try:
        return build_ifnet(sd)
    except RifeFormatError as e:
        raise RifeFormatError(f"{name}: {e}") from None


def rife_frames(net: IFNet, img0: torch.Tensor, img1: torch.Tensor, t: torch.Tensor, scale: float = 1.0
                ) -> torch.Tensor:
    """One frame per sample: ``img0, img1`` ``(B, 3, H, W)`` in [0, 1], ``t`` ``(B,)``; returns ``(B, 3, H, W)``.

    Zero-pads right/bottom to the network's multiple, as the reference inference does, and crops.
    """
    h, w = img0.shape[-2:]
    p = net.pad_multiple(scale)
    ph, pw = (p - h % p) % p, (p - w % p) % p
    dev = next(net.parameters()).device
    dt = next(net.parameters()).dtype
    a = F.pad(img0.to(dev, dt), (0, pw, 0, ph))
    b = F.pad(img1.to(dev, dt), (0, pw, 0, ph))
    with torch.no_grad():
        return net(a, b, t.to(dev, dt).reshape(-1), scale)[..., :h, :w]


def rife_interpolate(net: IFNet, img0: torch.Tensor, img1: torch.Tensor, t: torch.Tensor,
                     scale: float = 1.0) -> torch.Tensor:
    """Frames at times ``t`` ``(T,)`` for every pair: ``(B, T, 3, H, W)`` (batched over pairs x times)."""
    b, c, h, w = img0.shape
    nt = t.numel()
    a = img0.unsqueeze(1).expand(b, nt, c, h, w).reshape(b * nt, c, h, w)
    bb = img1.unsqueeze(1).expand(b, nt, c, h, w).reshape(b * nt, c, h, w)
    tt = t.view(1, nt).expand(b, nt).reshape(-1)
    return rife_frames(net, a, bb, tt, scale).reshape(b, nt, c, h, w)


def rife_interpolator(net: IFNet, cut_threshold: float | None = 0.35, max_batch: int = 4):
    """``interp_fn`` for :func:`flow.upsample_video` with RIFE (one RGB image stream)."""
    def fn(clips, local_k, t):
        dev = next(net.parameters()).device
        g = clips[0].to(dev, torch.float32)
        x = clips[1].to(dev, torch.float32)
        pairs = g.shape[0] - 1
        cut = detect_scene_cuts(g, cut_threshold) if cut_threshold is not None else \
            torch.zeros(pairs, dtype=torch.bool, device=dev)
        lk, tt = local_k.to(dev), t.to(dev, torch.float32)
        parts = []
        for s0 in range(0, lk.numel(), max_batch):
            idx, ts = lk[s0:s0 + max_batch], tt[s0:s0 + max_batch]
            y = rife_frames(net, x[:-1][idx], x[1:][idx], ts).clamp(0.0, 1.0)
            y = torch.where(cut[idx].view(-1, 1, 1, 1), cut_fill(x[:-1][idx], x[1:][idx], ts), y)
            parts.append(y)
        return [torch.cat(parts)]

    return fn
