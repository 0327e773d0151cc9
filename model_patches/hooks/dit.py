"""DiT video models: one block replace per video block and the attention override inside it, generic over families.

The techniques built on it: :mod:`.dit_reference` (ReferenceImageCondition) and :mod:`.dit_cross_window`
(CrossStreamAttention as cross-window anchor attention). What differs between models (which blocks, the layout of
the self-attention call, where the video tokens are, how a key moves in time through the model's own RoPE, what
the reference write pass must not pass on) is asked of the family's adapter (:mod:`.adapters`).

Official hooks only, all on a clone:

- ``transformer_options["patches_replace"]["dit"][("double_block", i)]``: one :class:`DitChain` per
  selected block. It calls the block (or the replace that was there before ours) with a copy of
  ``transformer_options`` holding a :class:`BlockCall` and an ``optimized_attention_override`` (chained to
  any override already there). The first ``optimized_attention`` call inside the block with as many keys as
  queries is its self-attention; the chain's extenders append keys/values to it
  (:func:`model_patches.dit_attention.extended_attention`). Every other call passes through untouched.
- ``APPLY_MODEL`` wrappers: :class:`DitCallScope` (this call's sigma, latent frames, model_sampling and what the
  adapter's RoPE needs, read once per model call) and ``dit_reference.DitReferenceWriter`` (the reference write
  pass, once per step).
- an ``OUTER_SAMPLE`` wrapper that gives each sampling run a fresh :class:`DitRunState`.
- a ``denoise_mask_function`` (``dit_reference.DitFirstFrameAnchor``) for the first-latent-frame anchor.

RoPE. The keys reaching the override are rotated already; a key recorded at latent frame ``a`` of its call is
moved to ``b`` by the adapter's rotation (:class:`TimeShift`).

Layout. Latent frame ``t`` of a ``[B, C, T, H, W]`` call is the ``t``-th run of its video tokens. Under core context
windows over latent time ``transformer_options["context_window"].index_list`` holds the window's absolute latent
frames (:func:`.comfy_compat.window_frames`); positions restart at 0 in every window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import torch

from comfy.patcher_extension import WrappersMP

from ..dit_attention import extended_attention, pad_mask
from ..errors import ParameterError
from .adapters import DitAdapter, adapter_for
from .state import install_scopes

DIT_RUN_KEY = "coherent_video_dit_run"        # DitRunState of the current sampling run
DIT_CALL_KEY = "coherent_video_dit_call"      # DitCall of the current model call
DIT_BANKS_KEY = "coherent_video_dit_banks"    # {uid: ReferenceBank} readable in this forward
DIT_WRITING_KEY = "coherent_video_dit_writing"  # (uid, ReferenceBank) while a reference write pass runs
DIT_BLOCK_KEY = "coherent_video_dit_block"    # BlockCall inside one patched block
DIT_PLAIN_KEY = "coherent_video_dit_plain"    # set: our block chains run the blocks unpatched (UntouchedParts)
WRAPPER_KEY = "coherent_video.dit"

# Where the reference image sits in time: RoPE position -1, the latent frame directly in front of the
# video (or of the window). HunyuanVideo's own image reference (``ref_latent``) takes the same position
# (its ids get time -1): the model has seen a still image there. In front, not at 0: at 0 the reference
# would share positions with frame 0's tokens; right in front, it is the nearest "earlier" frame of
# every window, so the reference is not forgotten in later windows.
REFERENCE_POSITION = -1


# --------------------------------------------------------------------------------------------
# the family's adapter
# --------------------------------------------------------------------------------------------
def require_dit(model, technique: str) -> DitAdapter:
    """The DiT adapter of ``model``; :class:`ParameterError` on ``model`` when there is none or the family's adapter
    refuses ``technique`` (its reason is about the model)."""
    a = adapter_for(model)
    if a is None or a.kind != "dit":
        dm = model.get_model_object("diffusion_model")
        raise ParameterError("model", f"{type(dm).__name__} is not a video model these attention patches know "
                                      "(see the README's model-support table)")
    why = a.unsupported(technique)
    if why:
        raise ParameterError("model", why)
    return a


class TimeShift:
    """Moves recorded keys in time by the adapter's rotation, cached per (from, to, device, call extras)."""

    def __init__(self):
        self._cache = {}

    def rotate(self, ctx: "BlockCall", k: torch.Tensor, layout: str, p_from: int, p_to: int) -> torch.Tensor:
        if p_from == p_to:
            return k
        adapter, dm = ctx.chain.adapter, ctx.chain.dm
        call = call_of(ctx)
        extras = call.extras if call is not None else ()
        scale = (ctx.options.get("rope_options") or {}).get("scale_t", 1.0)
        key = (int(p_from), int(p_to), k.device, extras, float(scale))
        f = self._cache.get(key)
        if f is None:
            f = adapter.time_rotation(dm, int(p_from), int(p_to), ctx.options, extras, k.device)
            self._cache[key] = f
        return adapter.rotate(k, layout, f)


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
    extras: tuple = ()   # what the adapter's RoPE needs of this call (adapter.call_extras)


class DitRunScope:
    """OUTER_SAMPLE wrapper: a fresh :class:`DitRunState` for this sampling run (latent frames of the noise's video
    part, :meth:`.adapters.DitAdapter.video_part`)."""

    def __init__(self, adapter: DitAdapter):
        self.adapter = adapter

    def __repr__(self):
        return f"DitRunScope({self.adapter.name})"

    def __call__(self, executor, *args, **kwargs):
        to = executor.class_obj.model_options.setdefault("transformer_options", {})
        if DIT_RUN_KEY in to:
            return executor(*args, **kwargs)
        noise = self.adapter.video_part(args[0] if args else kwargs.get("noise"))
        shapes = kwargs.get("latent_shapes", args[8] if len(args) > 8 else None)
        if shapes and len(shapes) > 1:   # ComfyUI 0.33 packs a NestedTensor latent: its shapes, video first
            frames = int(shapes[0][2]) if len(shapes[0]) == 5 else None
        else:
            frames = int(noise.shape[2]) if torch.is_tensor(noise) and noise.ndim == 5 else None
        to[DIT_RUN_KEY] = DitRunState(total_frames=frames)
        try:
            return executor(*args, **kwargs)
        finally:
            to.pop(DIT_RUN_KEY, None)


class DitCallScope:
    """APPLY_MODEL wrapper: sigma (one host read per model call), latent frames, model_sampling and the adapter's
    call extras."""

    def __init__(self, adapter: DitAdapter):
        self.adapter = adapter

    def __repr__(self):
        return f"DitCallScope({self.adapter.name})"

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        to = dict(transformer_options)
        frames = int(x.shape[2]) if torch.is_tensor(x) and not getattr(x, "is_nested", False) and x.ndim == 5 else 1
        to[DIT_CALL_KEY] = DitCall(float(t.max()), frames, getattr(executor.class_obj, "model_sampling", None),
                                   self.adapter.call_extras(kwargs))
        return executor(x, t, c_concat, c_crossattn, control, to, **kwargs)


class UntouchedParts:
    """``APPLY_MODEL`` wrapper for a model whose latent packs more than the video (``latent_shapes`` with more than
    one part, video first) when its adapter says the other parts must pass through untouched
    (``other_parts_untouched``): where ``active(transformer_options)``, the call runs once more with our block chains
    off (:data:`DIT_PLAIN_KEY`), and the output's non-video parts are that pass's, bit for bit the unpatched
    model's; the video part is the patched pass's. One more forward per such call."""

    def __init__(self, active):
        self.active = active

    def __repr__(self):
        return f"UntouchedParts({self.active!r})"

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        shapes = kwargs.get("latent_shapes")
        if (not shapes or len(shapes) < 2 or transformer_options.get(DIT_PLAIN_KEY)
                or not self.active(transformer_options)):
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        plain_to = dict(transformer_options)
        plain_to[DIT_PLAIN_KEY] = True
        plain = executor(x, t, c_concat, c_crossattn, control, plain_to, **kwargs)
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        cut = math.prod(int(d) for d in shapes[0][1:])   # the packed layout: [B, 1, video ... other parts]
        return torch.cat((out[..., :cut], plain[..., cut:]), dim=-1)   # one new tensor, no clone of the whole


def ensure_untouched_parts(m, adapter: DitAdapter, key: str, active) -> None:
    """Install :class:`UntouchedParts` under ``key`` on the clone ``m`` where the adapter asks for it."""
    if adapter.other_parts_untouched:
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, key, UntouchedParts(active))


def ensure_scopes(m, adapter: DitAdapter) -> None:
    install_scopes(m, WRAPPER_KEY, DitRunScope(adapter), DitCallScope(adapter))


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
        """The video tokens of the self-attention's ``x`` (keys or values), where the adapter says they are."""
        return self.chain.adapter.image_tokens(x, layout, self.n_img)


class DitChain:
    """``dit`` block replace for one block: our extenders in order, then the block (or the replace that was
    there before ours). Immutable; ``with_extender`` returns a longer copy."""

    def __init__(self, key: tuple, adapter: DitAdapter, diffusion_model, extenders: tuple = (), previous=None):
        self.key, self.adapter, self.extenders, self.previous = key, adapter, tuple(extenders), previous
        self.dm = diffusion_model

    def with_extender(self, ext) -> "DitChain":
        return DitChain(self.key, self.adapter, self.dm, self.extenders + (ext,), self.previous)

    def __repr__(self):
        return f"DitChain({self.key}, {list(self.extenders)!r}, previous={self.previous!r})"

    def __call__(self, args: dict, extra: dict):
        if args["transformer_options"].get(DIT_PLAIN_KEY):
            return self.previous(args, extra) if self.previous is not None else extra["original_block"](args)
        to = dict(args["transformer_options"])
        ctx = BlockCall(self, self.adapter.video_tokens(args), to)
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

    if ctx.calls != 1 or len(args) < 3:  # not the block's self-attention
        return plain(*args, **kwargs)
    q, k, v, rest = args[0], args[1], args[2], args[3:]
    layout = "bhld" if kwargs.get("skip_reshape") else "bld"
    d = 1 if layout == "bld" else 2
    if q.shape[d] != k.shape[d] or k.shape[d] < ctx.n_img:   # a cross-attention (self-attention skipped) or a subset
        return plain(*args, **kwargs)
    exts = []
    for e in ctx.chain.extenders:
        x = e.extension(ctx, k, v, layout)
        if x is not None:
            exts.append(x)
    if not exts or not any(w != 0 for e in exts for w in e.weights):
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

    n_q = q.shape[d]
    masked = kwargs.get("mask") is not None or (len(rest) >= 2 and rest[1] is not None)
    if not (ctx.chain.adapter.video_queries_only and ctx.n_img < n_q) or masked:
        return extended_attention(attn, q, k, v, exts, layout)
    # the extra keys are for the video queries only: the others (text, audio) attend to the model's own keys
    start = 0 if ctx.chain.adapter.image_first else n_q - ctx.n_img
    q_other = q.narrow(d, ctx.n_img, n_q - ctx.n_img) if start == 0 else q.narrow(d, 0, start)
    video = extended_attention(attn, q.narrow(d, start, ctx.n_img), k, v, exts, layout)
    other = plain(q_other, k, v, *rest, **kwargs)
    od = 2 if kwargs.get("skip_output_reshape") else 1   # optimized_attention's output: [B, L, H*D] or [B, H, L, D]
    return torch.cat((video, other) if start == 0 else (other, video), dim=od)


def _rows_mask(mask, rows: int, batch: int):
    if mask is None or mask.ndim < 3 or mask.shape[0] in (1, rows) or mask.shape[0] != batch:
        return mask
    return mask[:rows]  # a per-row mask with a row subset: masks are shared by CFG rows in these models


def install_extender(m, adapter: DitAdapter, keys: list[tuple], extender) -> None:
    """Add ``extender`` to the chain of every block in ``keys`` on the clone ``m``."""
    dm = m.get_model_object("diffusion_model")
    replace = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    for key in keys:
        current = replace.get(key)
        chain = current.with_extender(extender) if isinstance(current, DitChain) else \
            DitChain(key, adapter, dm, (extender,), previous=current)
        m.set_model_patch_replace(chain, "dit", key[0], key[1])


def select_block_share(adapter: DitAdapter, share: float) -> list[tuple]:
    """reference-only's block gating on a DiT (all blocks have one width): block ``i`` of ``n`` takes part
    when ``share > i / n``, from the first block on."""
    n = len(adapter.block_keys)
    return [k for i, k in enumerate(adapter.block_keys) if share > i / n]


def select_block_thirds(adapter: DitAdapter, first: bool, middle: bool, last: bool) -> list[tuple]:
    """The U-Net's input/middle/output block choice on a DiT: the first, middle and last third of its blocks."""
    n = len(adapter.block_keys)
    out = []
    for i, k in enumerate(adapter.block_keys):
        third = min(3 * i // max(n, 1), 2)
        if (first, middle, last)[third]:
            out.append(k)
    return out


def call_of(ctx: BlockCall) -> DitCall | None:
    return ctx.options.get(DIT_CALL_KEY)


def call_in_range(call: DitCall | None, bounds) -> bool:
    return call is None or bounds[1] <= call.sigma <= bounds[0]
