"""DiT video models (Wan 2.1/2.2, HunyuanVideo 1.5): where their self-attention is and how to extend it.

The techniques built on it: :mod:`.dit_reference` (ReferenceImageCondition) and :mod:`.dit_cross_window`
(CrossStreamAttention as cross-window anchor attention).

Official hooks only, all on a clone:

- ``transformer_options["patches_replace"]["dit"][("double_block", i)]``: one :class:`DitChain` per
  selected block. It calls the block (or the replace that was there before ours) with a copy of
  ``transformer_options`` holding a :class:`BlockCall` and an ``optimized_attention_override`` (chained to
  any override already there). The first ``optimized_attention`` call inside the block is its
  self-attention (Wan: ``self_attn`` before ``cross_attn``; HunyuanVideo double block: its one joint
  image+text attention, image tokens first up to ComfyUI 0.3.x (``flipped_img_txt``), text tokens first from 0.33
  on: :attr:`DitFamily.image_first`, :meth:`BlockCall.image_tokens`); the chain's extenders append keys/values to it
  (:func:`model_patches.dit_attention.extended_attention`). Every other call passes through untouched.
- ``APPLY_MODEL`` wrappers: :func:`dit_call_scope` (this call's sigma, latent frames and model_sampling,
  read once per model call) and ``dit_reference.DitReferenceWriter`` (the reference write pass, once per step).
- an ``OUTER_SAMPLE`` wrapper that gives each sampling run a fresh :class:`DitRunState`.
- a ``denoise_mask_function`` (``dit_reference.DitFirstFrameAnchor``) for the first-latent-frame anchor.

RoPE. Both families apply 3-axis RoPE (time, height, width) to q and k before the attention call, so the
keys reaching the override are rotated already. A key recorded at time position ``p`` is moved to
``p + d`` by rotating it by the model's own embedder at position ``(d, 0, 0)``
(:func:`model_patches.dit_attention.rotate_time`).

Layout. Latent frame ``t`` of a ``[B, C, T, H, W]`` call is the ``t``-th run of ``H*W / (ph*pw)`` image
tokens (both families patch time by 1). Under core context windows (``WanContextWindowsManual`` or
``ContextWindowsManual`` with ``dim=2``) ``transformer_options["context_window"].index_list`` holds the
window's absolute latent frames; RoPE positions restart at 0 in every window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch

from ..dit_attention import extended_attention, pad_mask, rotate_time
from ..errors import ParameterError
from .state import install_scopes

DIT_RUN_KEY = "coherent_video_dit_run"        # DitRunState of the current sampling run
DIT_CALL_KEY = "coherent_video_dit_call"      # DitCall of the current model call
DIT_BANKS_KEY = "coherent_video_dit_banks"    # {uid: ReferenceBank} readable in this forward
DIT_WRITING_KEY = "coherent_video_dit_writing"  # (uid, ReferenceBank) while a reference write pass runs
DIT_BLOCK_KEY = "coherent_video_dit_block"    # BlockCall inside one patched block
WRAPPER_KEY = "coherent_video.dit"

# Where the reference image sits in time: RoPE position -1, the latent frame directly in front of the
# video (or of the window). HunyuanVideo's own image reference (``ref_latent``) takes the same position
# (its ids get time -1): the model has seen a still image there. In front, not at 0: at 0 the reference
# would share positions with frame 0's tokens; right in front, it is the nearest "earlier" frame of
# every window, so the reference is not forgotten in later windows.
REFERENCE_POSITION = -1


# --------------------------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DitFamily:
    name: str            # "wan" | "hunyuan_video"
    block_keys: tuple    # ("double_block", i) in forward order
    layout: str          # layout of the self-attention call: "bld" or "bhld"
    patch: tuple         # (pt, ph, pw)
    image_first: bool = True  # image tokens before the text tokens in the self-attention call (else after them)


def dit_family(diffusion_model) -> DitFamily | None:
    """The DiT family of ``diffusion_model`` (a ``comfy.ldm`` module), or None when it is not one we patch."""
    dm = diffusion_model
    blocks = getattr(dm, "blocks", None)
    if blocks is not None and hasattr(dm, "rope_embedder") and hasattr(dm, "patch_embedding"):
        return DitFamily("wan", tuple(("double_block", i) for i in range(len(blocks))), "bld",
                         tuple(int(p) for p in dm.patch_size))
    doubles = getattr(dm, "double_blocks", None)
    if doubles is not None and hasattr(dm, "pe_embedder") and type(dm).__name__ == "HunyuanVideo":
        patch = tuple(int(p) for p in dm.patch_size)
        if len(patch) != 3:
            return None  # the image (2-D) variant
        # ComfyUI <= 0.3.x builds HunyuanVideo's double blocks with flipped_img_txt=True (image tokens first);
        # 0.33 dropped the flag and puts the text first (comfy/ldm/flux/layers.py DoubleStreamBlock): read it
        image_first = bool(getattr(doubles[0], "flipped_img_txt", False)) if len(doubles) else True
        return DitFamily("hunyuan_video", tuple(("double_block", i) for i in range(len(doubles))), "bhld", patch,
                         image_first)
    return None


def is_video_dit(model) -> bool:
    """True for a MODEL whose diffusion model is a DiT video model (any family, patched by us or not)."""
    dm = model.get_model_object("diffusion_model")
    name = type(dm).__name__
    return dit_family(dm) is not None or name in ("LTXVModel", "LTXAVModel") or hasattr(dm, "patchifier")


def require_family(model) -> DitFamily:
    dm = model.get_model_object("diffusion_model")
    fam = dit_family(dm)
    if fam is None:
        raise ParameterError("model", f"{type(dm).__name__} is not supported on DiT video models here: the "
                                      "attention patches serve Wan 2.1/2.2 and HunyuanVideo 1.5 (and SD U-Nets)")
    return fam


def _embedder(diffusion_model):
    return getattr(diffusion_model, "rope_embedder", None) or diffusion_model.pe_embedder


def _rope_fn():
    from comfy.ldm.flux.math import apply_rope1

    return apply_rope1


class TimeShift:
    """RoPE rotations by whole latent frames, from the model's own embedder; cached per (shift, device, dtype)."""

    def __init__(self):
        self._cache = {}

    def freqs(self, diffusion_model, shift: float, device, dtype):
        key = (float(shift), device, dtype)
        f = self._cache.get(key)
        if f is None:
            ids = torch.tensor([[[float(shift), 0.0, 0.0]]], device=device, dtype=torch.float32)
            f = _embedder(diffusion_model)(ids)          # [1, 1, 1, D/2, 2, 2]
            self._cache[key] = f
        return f

    def rotate(self, diffusion_model, k: torch.Tensor, layout: str, shift: float) -> torch.Tensor:
        if shift == 0:
            return k
        return rotate_time(k, layout, self.freqs(diffusion_model, shift, k.device, torch.float32), _rope_fn())


def rope_time_scale(options: dict) -> float:
    ro = options.get("rope_options") or {}
    return float(ro.get("scale_t", 1.0))


# --------------------------------------------------------------------------------------------
# run / call state
# --------------------------------------------------------------------------------------------
@dataclass
class DitRunState:
    """Per-sampling-run caches (never on a model)."""

    banks: dict = field(default_factory=dict)     # uid -> ReferenceBank (this step's)
    writes: dict = field(default_factory=dict)    # uid -> write passes run (tests, bench)
    anchors: dict = field(default_factory=dict)   # (uid, block, branches) -> {abs frame: (k, v, local pos)}
    anchor_sigma: float | None = None
    total_frames: int | None = None

    def keep_anchors_of(self, sigma) -> None:
        if sigma != self.anchor_sigma:
            self.anchors.clear()
            self.anchor_sigma = sigma


@dataclass(frozen=True)
class DitCall:
    sigma: float
    frames: int          # latent frames of this call (the window's under context windows)
    model_sampling: object = None


def dit_run_scope(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: a fresh :class:`DitRunState` for this sampling run."""
    to = executor.class_obj.model_options.setdefault("transformer_options", {})
    if DIT_RUN_KEY in to:
        return executor(*args, **kwargs)
    noise = args[0] if args else kwargs.get("noise")
    frames = int(noise.shape[2]) if torch.is_tensor(noise) and noise.ndim == 5 else None
    to[DIT_RUN_KEY] = DitRunState(total_frames=frames)
    try:
        return executor(*args, **kwargs)
    finally:
        to.pop(DIT_RUN_KEY, None)


def dit_call_scope(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
    """APPLY_MODEL wrapper: sigma (one host read per model call), latent frames and model_sampling."""
    to = dict(transformer_options)
    to[DIT_CALL_KEY] = DitCall(float(t.max()), int(x.shape[2]) if x.ndim == 5 else 1,
                               getattr(executor.class_obj, "model_sampling", None))
    return executor(x, t, c_concat, c_crossattn, control, to, **kwargs)


def ensure_scopes(m) -> None:
    install_scopes(m, WRAPPER_KEY, dit_run_scope, dit_call_scope)


# --------------------------------------------------------------------------------------------
# the one block replace per block, and the attention override inside it
# --------------------------------------------------------------------------------------------
@dataclass
class BlockCall:
    """One call of one patched block: what the override needs to know about it."""

    chain: "DitChain"
    n_img: int                    # image tokens of this call (HunyuanVideo: beside its text tokens)
    options: dict                 # the block's transformer_options (our copy)
    calls: int = 0                # optimized_attention calls seen so far in this block

    def image_tokens(self, x: torch.Tensor, layout: str) -> torch.Tensor:
        """The image tokens of the self-attention's ``x`` (keys or values): the first ``n_img`` tokens, or the last
        ones where the family puts its text tokens first (:attr:`DitFamily.image_first`)."""
        d = 1 if layout == "bld" else 2
        start = 0 if self.chain.family.image_first else x.shape[d] - self.n_img
        return x.narrow(d, start, self.n_img)


class DitChain:
    """``dit`` block replace for one block: our extenders in order, then the block (or the replace that was
    there before ours). Immutable; ``with_extender`` returns a longer copy."""

    def __init__(self, key: tuple, family: DitFamily, diffusion_model, extenders: tuple = (), previous=None):
        self.key, self.family, self.extenders, self.previous = key, family, tuple(extenders), previous
        self.dm = diffusion_model

    def with_extender(self, ext) -> "DitChain":
        return DitChain(self.key, self.family, self.dm, self.extenders + (ext,), self.previous)

    def __repr__(self):
        return f"DitChain({self.key}, {list(self.extenders)!r}, previous={self.previous!r})"

    def __call__(self, args: dict, extra: dict):
        to = dict(args["transformer_options"])
        ctx = BlockCall(self, int(args["img"].shape[1]), to)
        to[DIT_BLOCK_KEY] = ctx
        to["optimized_attention_override"] = partial(_attention_override, ctx, to.get("optimized_attention_override"))
        args = dict(args)
        args["transformer_options"] = to
        if self.previous is not None:
            return self.previous(args, extra)
        return extra["original_block"](args)


def _attention_override(ctx: BlockCall, previous, func, *args, **kwargs):
    ctx.calls += 1

    def plain(*a, **kw):
        return previous(func, *a, **kw) if previous is not None else func(*a, **kw)

    if ctx.calls != 1:  # not the block's self-attention
        return plain(*args, **kwargs)
    q, k, v, rest = args[0], args[1], args[2], args[3:]
    layout = "bhld" if kwargs.get("skip_reshape") else "bld"
    exts = []
    for e in ctx.chain.extenders:
        x = e.extension(ctx, k, v, layout)
        if x is not None:
            exts.append(x)
    if not exts:
        return plain(*args, **kwargs)
    base_keys = k.shape[1 if layout == "bld" else 2]

    def attn(qs, ks, vs):
        kw = dict(kwargs)
        a = list(rest)
        extra = ks.shape[1 if layout == "bld" else 2] - base_keys
        if len(a) >= 2:   # (heads, mask, ...) positionally
            a[1] = _rows_mask(pad_mask(a[1], extra), qs.shape[0], q.shape[0])
        if kw.get("mask") is not None:
            kw["mask"] = _rows_mask(pad_mask(kw["mask"], extra), qs.shape[0], q.shape[0])
        return plain(qs, ks, vs, *a, **kw)

    return extended_attention(attn, q, k, v, exts, layout)


def _rows_mask(mask, rows: int, batch: int):
    if mask is None or mask.ndim < 3 or mask.shape[0] in (1, rows) or mask.shape[0] != batch:
        return mask
    return mask[:rows]  # a per-row mask with a row subset: masks are shared by CFG rows in these models


def install_extender(m, family: DitFamily, keys: list[tuple], extender) -> None:
    """Add ``extender`` to the chain of every block in ``keys`` on the clone ``m``."""
    dm = m.get_model_object("diffusion_model")
    replace = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    for key in keys:
        current = replace.get(key)
        chain = current.with_extender(extender) if isinstance(current, DitChain) else \
            DitChain(key, family, dm, (extender,), previous=current)
        m.set_model_patch_replace(chain, "dit", key[0], key[1])


def select_block_share(family: DitFamily, share: float) -> list[tuple]:
    """reference-only's block gating on a DiT (all blocks have one width): block ``i`` of ``n`` takes part
    when ``share > i / n``, from the first block on."""
    n = len(family.block_keys)
    return [k for i, k in enumerate(family.block_keys) if share > i / n]


def select_block_thirds(family: DitFamily, first: bool, middle: bool, last: bool) -> list[tuple]:
    """The U-Net's input/middle/output block choice on a DiT: the first, middle and last third of its blocks."""
    n = len(family.block_keys)
    out = []
    for i, k in enumerate(family.block_keys):
        third = min(3 * i // max(n, 1), 2)
        if (first, middle, last)[third]:
            out.append(k)
    return out


def call_of(ctx: BlockCall) -> DitCall | None:
    return ctx.options.get(DIT_CALL_KEY)


def call_in_range(call: DitCall | None, bounds) -> bool:
    return call is None or bounds[1] <= call.sigma <= bounds[0]
