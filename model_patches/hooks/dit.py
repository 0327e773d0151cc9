"""DiT video models (Wan 2.1/2.2, HunyuanVideo 1.5): where their self-attention is and how to extend it.

Official hooks only, all on a clone:

- ``transformer_options["patches_replace"]["dit"][("double_block", i)]``: one :class:`DitChain` per
  selected block. It calls the block (or the replace that was there before ours) with a copy of
  ``transformer_options`` holding a :class:`BlockCall` and an ``optimized_attention_override`` (chained to
  any override already there). The first ``optimized_attention`` call inside the block is its
  self-attention (Wan: ``self_attn`` before ``cross_attn``; HunyuanVideo double block: its one joint
  image+text attention, image tokens first); the chain's extenders append keys/values to it
  (:func:`model_patches.dit_attention.extended_attention`). Every other call passes through untouched.
- ``APPLY_MODEL`` wrappers: :func:`dit_call_scope` (this call's sigma, latent frames and model_sampling,
  read once per model call) and :class:`DitReferenceWriter` (the reference write pass, once per step).
- an ``OUTER_SAMPLE`` wrapper that gives each sampling run a fresh :class:`DitRunState`.
- a ``denoise_mask_function`` (:class:`DitFirstFrameAnchor`) for the first-latent-frame anchor.

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

import uuid
from dataclasses import dataclass, field
from functools import partial

import torch

from comfy.patcher_extension import WrappersMP

from ..attention import branch_weights, batch_layout
from .state import sigma_bounds
from ..dit_attention import DitExtension, extended_attention, extension_positions, frame_tokens, pad_mask, rotate_time
from ..errors import ParameterError, Reporter

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
        return DitFamily("hunyuan_video", tuple(("double_block", i) for i in range(len(doubles))), "bhld", patch)
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


def _ensure_scopes(m) -> None:
    if not m.get_wrappers(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY):
        m.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, dit_run_scope)
    if not m.get_wrappers(WrappersMP.APPLY_MODEL, WRAPPER_KEY):
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, WRAPPER_KEY, dit_call_scope)


# --------------------------------------------------------------------------------------------
# the one block replace per block, and the attention override inside it
# --------------------------------------------------------------------------------------------
@dataclass
class BlockCall:
    """One call of one patched block: what the override needs to know about it."""

    chain: "DitChain"
    n_img: int                    # image tokens of this call (HunyuanVideo: before its text tokens)
    options: dict                 # the block's transformer_options (our copy)
    calls: int = 0                # optimized_attention calls seen so far in this block


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


def _call(ctx: BlockCall) -> DitCall | None:
    return ctx.options.get(DIT_CALL_KEY)


def _in_range(call: DitCall | None, bounds) -> bool:
    return call is None or bounds[1] <= call.sigma <= bounds[0]


# --------------------------------------------------------------------------------------------
# ReferenceImageCondition
# --------------------------------------------------------------------------------------------
@dataclass
class DitReferenceBank:
    sigma: float
    kv: dict = field(default_factory=dict)   # block key -> (k at REFERENCE_POSITION, v), batch 1


@dataclass(frozen=True)
class DitReferenceSettings:
    uid: str
    strength: float
    style_fidelity: float
    seed: int
    start_percent: float
    end_percent: float
    sigma_start: float
    sigma_end: float
    position: int = REFERENCE_POSITION

    def bounds(self, model_sampling):
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))


class DitReferenceExtender:
    """Records the reference's self-attention K/V in the write pass; appends them in every other pass."""

    def __init__(self, settings: DitReferenceSettings):
        self.s = settings
        self.shift = TimeShift()

    def __repr__(self):
        return f"DitReferenceExtender({self.s!r})"

    def extension(self, ctx: BlockCall, k, v, layout):
        to = ctx.options
        writing = to.get(DIT_WRITING_KEY)
        if writing is not None:
            uid, bank = writing
            if uid == self.s.uid:
                d = 1 if layout == "bld" else 2
                kr, vr = k.narrow(d, 0, ctx.n_img), v.narrow(d, 0, ctx.n_img)
                shift = self.s.position * rope_time_scale(to)
                bank.kv[ctx.chain.key] = (self.shift.rotate(ctx.chain.dm, kr, layout, shift).to(k.dtype),
                                          vr.contiguous())
            return None
        bank = (to.get(DIT_BANKS_KEY) or {}).get(self.s.uid)
        if bank is None or ctx.chain.key not in bank.kv:
            return None
        call = _call(ctx)
        if not _in_range(call, self.s.bounds(call.model_sampling if call else None)):
            return None
        kr, vr = bank.kv[ctx.chain.key]
        rows = batch_layout(k.shape[0], to.get("cond_or_uncond"))
        w = branch_weights(rows, self.s.strength, self.s.style_fidelity)
        weights = tuple(w[i // rows.frames] for i in range(k.shape[0]))
        return DitExtension(kr.to(k.dtype), vr.to(v.dtype), weights)


class DitReferenceWriter:
    """``APPLY_MODEL`` wrapper: the reference write pass, once per sampling step.

    At the first model call of a step (in the step range) it runs the model once more on the reference
    latent (one latent frame, noised to this sigma with a fixed seed, the cond branch's conditioning, batch
    1) and records every patched block's self-attention K/V; later calls at the same sigma (the other CFG
    call, every other context window) reuse them."""

    def __init__(self, settings: DitReferenceSettings, reference: torch.Tensor):
        self.s = settings
        self.reference = reference.detach().clone()   # [1, C, 1, H, W]
        self._processed = {}

    def __repr__(self):
        return f"DitReferenceWriter({self.s!r}, reference={tuple(self.reference.shape)})"

    def _latents(self, base_model, like):
        key = (like.device, like.dtype)
        if key not in self._processed:
            ref = base_model.process_latent_in(self.reference.to(torch.float32))
            g = torch.Generator(device="cpu").manual_seed(int(self.s.seed))
            noise = torch.randn(ref.shape, generator=g, dtype=torch.float32)
            self._processed = {key: (ref.to(like.device, like.dtype), noise.to(like.device, like.dtype))}
        return self._processed[key]

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        base_model = executor.class_obj
        call = transformer_options.get(DIT_CALL_KEY)
        sigma = call.sigma if call is not None else float(t.max())
        lo_hi = self.s.bounds(getattr(base_model, "model_sampling", None))
        if not (lo_hi[1] <= sigma <= lo_hi[0]):
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        run = transformer_options.get(DIT_RUN_KEY)
        bank = run.banks.get(self.s.uid) if run is not None else None
        if bank is None or bank.sigma != sigma:
            bank = self._write(executor, base_model, x, t, sigma, c_concat, c_crossattn, transformer_options, kwargs)
            if run is not None:
                run.banks[self.s.uid] = bank
                run.writes[self.s.uid] = run.writes.get(self.s.uid, 0) + 1
        to = dict(transformer_options)
        to[DIT_BANKS_KEY] = {**(to.get(DIT_BANKS_KEY) or {}), self.s.uid: bank}
        return executor(x, t, c_concat, c_crossattn, control, to, **kwargs)

    def _write(self, executor, base_model, x, t, sigma, c_concat, c_crossattn, transformer_options, kwargs):
        ref, noise = self._latents(base_model, x)
        branches = [int(c) for c in (transformer_options.get("cond_or_uncond") or [0])]
        per = max(x.shape[0] // max(len(branches), 1), 1)
        j = branches.index(0) if 0 in branches else 0
        row, batch, frames = j * per, x.shape[0], x.shape[2]

        def one(v):
            if not (torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == batch):
                return v
            v = v[row:row + 1]
            if v.ndim == 5 and v.shape[2] == frames:   # per-frame conditioning (concat latents): frame 0
                v = v[:, :, :1]
            return v

        t1 = t.reshape(t.shape[0], -1)[row:row + 1, 0]   # this row's sigma ([1]; per-token timesteps: the first)
        x_ref = base_model.model_sampling.noise_scaling(t1, noise, ref)
        bank = DitReferenceBank(sigma)
        to = {k: v for k, v in transformer_options.items() if k not in (DIT_BANKS_KEY, "context_window")}
        to["cond_or_uncond"] = [branches[j]]
        to["sigmas"] = t1
        to[DIT_WRITING_KEY] = (self.s.uid, bank)
        to[DIT_CALL_KEY] = DitCall(sigma, 1, getattr(base_model, "model_sampling", None))
        with torch.no_grad():
            executor(x_ref, t1, one(c_concat), one(c_crossattn), None, to, **{k: one(v) for k, v in kwargs.items()})
        return bank


class DitFirstFrameAnchor:
    """``denoise_mask_function``: latent frame 0 keeps the (noised) reference over the step range."""

    def __init__(self, start_percent, end_percent, sigma_start, sigma_end, previous=None):
        self.start_percent, self.end_percent = start_percent, end_percent
        self.sigma_start, self.sigma_end, self.previous = sigma_start, sigma_end, previous

    def __repr__(self):
        return f"DitFirstFrameAnchor({self.start_percent}, {self.end_percent}, previous={self.previous!r})"

    def __call__(self, sigma, denoise_mask, extra_options):
        if self.previous is not None:
            denoise_mask = self.previous(sigma, denoise_mask, extra_options)
        if denoise_mask.ndim != 5:
            return denoise_mask
        guider = (extra_options or {}).get("model")
        ms = getattr(getattr(guider, "inner_model", None), "model_sampling", None)
        hi, lo = sigma_bounds(ms, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))
        s = sigma.max() if torch.is_tensor(sigma) else torch.tensor(float(sigma))
        keep = ((s <= hi) & (s >= lo)).to(denoise_mask.dtype)
        denoise_mask = denoise_mask.clone()
        denoise_mask[:, :, 0] = denoise_mask[:, :, 0] * (1 - keep)
        return denoise_mask


def reference_video_latent_5d(video: dict, reference: torch.Tensor, anchor: bool) -> dict:
    """The video LATENT to sample: with the anchor, latent frame 0 holds the reference and a noise_mask of
    ones (the denoise_mask_function zeroes frame 0 over the step range)."""
    if not anchor:
        return video
    samples = video["samples"].clone()
    samples[:, :, 0] = reference[:1, :, 0].to(samples.dtype)
    out = dict(video)
    out["samples"] = samples
    if video.get("noise_mask") is None:
        out["noise_mask"] = samples.new_ones((samples.shape[0], 1, *samples.shape[2:]))
    return out


def as_video_reference(ref: torch.Tensor) -> torch.Tensor:
    """A reference LATENT's samples as one latent frame ``[1, C, 1, H, W]`` (from a 4-D image latent or the
    first latent frame of a 5-D one)."""
    if ref.ndim == 4:
        return ref[:1].unsqueeze(2)
    return ref[:1, :, :1]


def apply_reference_dit(model, reference: torch.Tensor, strength: float, style_fidelity: float, attention_weight: float,
                        start_percent: float, end_percent: float, anchor_first_frame: bool, seed: int):
    """Clone ``model`` with the reference write pass and the reference K/V in the selected blocks."""
    fam = require_family(model)
    keys = select_block_share(fam, attention_weight)
    ms = model.get_model_object("model_sampling")
    sigma_start, sigma_end = float(ms.percent_to_sigma(start_percent)), float(ms.percent_to_sigma(end_percent))
    s = DitReferenceSettings(uuid.uuid4().hex, float(strength), float(style_fidelity), int(seed), float(start_percent),
                             float(end_percent), sigma_start, sigma_end)
    m = model.clone()
    _ensure_scopes(m)
    if keys:
        install_extender(m, fam, keys, DitReferenceExtender(s))
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, f"{WRAPPER_KEY}.reference.{s.uid}",
                               DitReferenceWriter(s, as_video_reference(reference)))
    if anchor_first_frame:
        m.set_model_denoise_mask_function(DitFirstFrameAnchor(float(start_percent), float(end_percent), sigma_start,
                                                              sigma_end, m.model_options.get("denoise_mask_function")))
    return m


# --------------------------------------------------------------------------------------------
# CrossStreamAttention: cross-window anchor attention
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrossWindowSettings:
    uid: str
    mode: str            # "anchor" (one anchor frame) | "sparse_causal" (first frame + the frame before the window)
    anchor: str
    anchor_index: int
    strength: float
    start_percent: float
    end_percent: float
    sigma_start: float
    sigma_end: float
    reporter: Reporter = Reporter()   # where errors found while sampling go

    def bounds(self, model_sampling):
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))


def window_of(options: dict):
    """This call's core context window over latent time (``dim == 2``), or None."""
    win = options.get("context_window")
    if win is not None and getattr(win, "dim", None) == 2 and getattr(win, "index_list", None) is not None:
        return [int(i) for i in win.index_list]
    return None


class CrossWindowExtender:
    """Under core context windows, every window's self-attention also attends to the tokens of anchor
    frames computed by earlier windows at this step (cached once per step, no extra forward):

    - ``anchor``: the anchor latent frame (``first`` = 0, ``center``, ``last``, ``index``), i.e. the
      anchor window's frame, for every window that does not hold it;
    - ``sparse_causal``: latent frame 0 (the first window's) and the frame directly before the window
      (the previous window's), after Tune-A-Video's first + previous frame.

    The extra frames get RoPE time positions in front of the window (their true offset when near, else
    packed at ``-n .. -1``: :func:`model_patches.dit_attention.extension_positions`). Outside context
    windows it does nothing: a DiT already attends across all frames it sees."""

    def __init__(self, settings: CrossWindowSettings):
        self.s = settings
        self.shift = TimeShift()

    def __repr__(self):
        return f"CrossWindowExtender({self.s!r})"

    def _anchor_frame(self, total: int | None, window: list[int]) -> int:
        from ..video import anchor_index

        if self.s.anchor == "index":
            a = int(self.s.anchor_index)
        else:
            a = anchor_index(int(total), self.s.anchor) if total else window[0]
        if total is not None and not 0 <= a < total:
            raise self.s.reporter.error(ParameterError(
                "anchor_index", f"latent frame {a} is outside the {total} latent frames being sampled (0..{total - 1})"))
        return a

    def extension(self, ctx: BlockCall, k, v, layout):
        to = ctx.options
        if to.get(DIT_WRITING_KEY) is not None:
            return None
        window = window_of(to)
        run = to.get(DIT_RUN_KEY)
        call = _call(ctx)
        if window is None or run is None or call is None:
            return None
        if not _in_range(call, self.s.bounds(call.model_sampling)):
            return None
        tw = len(window)
        if ctx.n_img % tw:
            return None
        tpf = ctx.n_img // tw
        run.keep_anchors_of(call.sigma)
        ck = (self.s.uid, ctx.chain.key, tuple(to.get("cond_or_uncond") or ()), k.shape[0])
        cache = run.anchors.setdefault(ck, {})
        if self.s.mode == "anchor":
            wanted = [self._anchor_frame(run.total_frames, window)]
        else:
            wanted = [0, window[0] - 1]
        want = sorted({a for a in wanted if a >= 0 and a not in window and a < window[0]})
        have = [a for a in want if a in cache]
        ext = self._extension(ctx, k, layout, window, cache, have) if have else None
        # then keep this window's frames that later windows may ask for
        if self.s.mode == "anchor":
            keep = [a for a in wanted if a in window]
        else:
            keep = ([0] if 0 in window else []) + [a for a in window if a != 0]
            for a in [a for a in cache if a != 0]:
                del cache[a]                         # sparse-causal: frame 0 and the last window's frames only
        for a in keep:
            p = window.index(a)
            cache[a] = (frame_tokens(k, layout, [p], tpf).clone(), frame_tokens(v, layout, [p], tpf).clone(), p)
        return ext

    def _extension(self, ctx, k, layout, window, cache, have):
        pos = extension_positions(have, window[0])
        scale = rope_time_scale(ctx.options)
        ks, vs = [], []
        for a, p_new in zip(have, pos):
            ka, va, p_old = cache[a]
            ks.append(self.shift.rotate(ctx.chain.dm, ka, layout, (p_new - p_old) * scale).to(k.dtype))
            vs.append(va)
        d = 1 if layout == "bld" else 2
        ek = ks[0] if len(ks) == 1 else torch.cat(ks, dim=d)
        ev = vs[0] if len(vs) == 1 else torch.cat(vs, dim=d)
        return DitExtension(ek, ev, (self.s.strength,) * k.shape[0])


def apply_cross_window(model, mode: str, anchor: str, anchor_index: int, strength: float, first_blocks: bool,
                       middle_blocks: bool, last_blocks: bool, start_percent: float, end_percent: float,
                       reporter: Reporter = Reporter()):
    """Clone ``model`` with cross-window anchor attention on the selected blocks."""
    fam = require_family(model)
    if mode not in ("anchor", "sparse_causal"):
        raise ParameterError("mode", f"{mode!r} is a U-Net mode; on DiT video models (which already attend "
                                     "across all frames of a window) use anchor or sparse_causal, which "
                                     "attend across context windows")
    keys = select_block_thirds(fam, first_blocks, middle_blocks, last_blocks)
    if not keys:
        raise ParameterError("input_blocks", "no transformer block selected")
    ms = model.get_model_object("model_sampling")
    s = CrossWindowSettings(uuid.uuid4().hex, mode, anchor, int(anchor_index), float(strength), float(start_percent),
                            float(end_percent), float(ms.percent_to_sigma(start_percent)),
                            float(ms.percent_to_sigma(end_percent)), reporter)
    m = model.clone()
    _ensure_scopes(m)
    install_extender(m, fam, keys, CrossWindowExtender(s))
    return m
