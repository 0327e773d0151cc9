"""ComfyUI hooks for the extended self-attention of ``attention.py``.

Official hooks only, all on a clone:

- ``set_model_attn1_replace`` on every selected U-Net self-attention block: one
  :class:`AttentionChain` per block runs the K/V extenders of all our patches on that model in the
  order they were applied (reference, cross-stream, ...) and then one attention call through ComfyUI's
  ``optimized_attention`` (or the replace patch that was there before ours, which then receives the
  extended K/V). Applying a second patch replaces the chain by a longer copy; nothing is mutated.
- an ``APPLY_MODEL`` wrapper (:class:`ReferenceWriter`): the reference "write" pass, once per
  sampling step (one extra batch-1 forward at the current sigma, cached per sigma for the rest of the
  step), recording each selected block's reference K/V and AdaIN statistics.
- ``input_block_patch`` / ``output_block_patch`` for AdaIN, ``denoise_mask_function`` for the
  frame-0 anchor, an ``OUTER_SAMPLE`` wrapper that gives every sampling run a fresh
  :class:`RunState` (per-run caches) in ``transformer_options``, and an ``APPLY_MODEL`` wrapper
  (:func:`call_scope`) that reads the sigma once per model call, so no per-block patch syncs the device.
"""
from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from functools import partial

import torch

import comfy.ldm.modules.attention as comfy_attention
from comfy.patcher_extension import WrappersMP

from .attention import (
    BatchLayout, KVExtension, batch_layout, branch_weights, chained_attention, channel_stats, adain,
    blend_rows, frame_tokens, local_position, nearest_position, previous_positions, resolve_anchor,
    temporal_mean, to_frames,
)
from .errors import NodeInputError

RUN_KEY = "coherent_video_run"          # RunState of the current sampling run
BANKS_KEY = "coherent_video_banks"      # {uid: ReferenceBank} readable in this forward
WRITING_KEY = "coherent_video_writing"  # (uid, ReferenceBank) while a reference write pass runs
SIGMA_KEY = "coherent_video_sigma"      # this model call's sigma as a Python float (read once per call)
SAMPLING_KEY = "coherent_video_model_sampling"  # the model_sampling this call samples with
WRAPPER_KEY = "coherent_video.attention"


# --------------------------------------------------------------------------------------------
# U-Net structure
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionBlock:
    """One self-attention (attn1) of the U-Net: its replace key, resolution level and width."""

    key: tuple   # (section, block id, index inside the SpatialTransformer) as attn1 replace keys it
    level: int   # 0 = latent resolution, 1 = half, ...
    dim: int     # channels of the attention input


def _has_class(module, name: str) -> bool:
    return any(type(m).__name__ == name for m in module.modules())


def attention_blocks(diffusion_model) -> list[AttentionBlock]:
    """Every ``BasicTransformerBlock.attn1`` of an SD1.x/SD2/SDXL-style U-Net, in forward order."""
    blocks, level = [], 0
    sections = []
    for i, mod in enumerate(getattr(diffusion_model, "input_blocks", [])):
        sections.append(("input", i, mod, level))
        if _has_class(mod, "Downsample"):
            level += 1
    middle = getattr(diffusion_model, "middle_block", None)
    if middle is not None:
        sections.append(("middle", 0, middle, level))
    for i, mod in enumerate(getattr(diffusion_model, "output_blocks", [])):
        sections.append(("output", i, mod, level))
        if _has_class(mod, "Upsample"):
            level -= 1
    for name, i, mod, lvl in sections:
        for sub in mod.children() if hasattr(mod, "children") else []:
            tblocks = getattr(sub, "transformer_blocks", None)
            if tblocks is None:
                continue
            for j, tb in enumerate(tblocks):
                attn1 = getattr(tb, "attn1", None)
                if attn1 is None:
                    continue
                blocks.append(AttentionBlock((name, i, j), lvl, int(attn1.to_q.in_features)))
    return blocks


def reference_attention_keys(blocks: list[AttentionBlock], attention_weight: float) -> list[tuple]:
    """reference-only's per-block gating: blocks sorted by width, widest (deepest) first, block ``i``
    of ``n`` gets ``i / n`` and takes part when ``attention_weight > i / n``."""
    order = sorted(range(len(blocks)), key=lambda i: -blocks[i].dim)  # stable: forward order on ties
    n = len(blocks)
    return [blocks[b].key for rank, b in enumerate(order) if attention_weight > rank / n]


def adain_points(diffusion_model, adain_weight: float) -> list[tuple]:
    """AdaIN points, gated like reference-only's ``gn_auto_machine_weight``: the middle block output
    (weight 0) and then outward; a point with depth weight ``g`` is used when ``0 < g <= adain_weight``
    (or always for the middle when ``adain_weight > 0``). Keys: ``("input", i)`` = output of input block
    ``i``; ``("output", i)`` = the input of output block ``i`` (``("output", 0)`` = the middle output)."""
    if adain_weight <= 0:
        return []
    n_in = len(getattr(diffusion_model, "input_blocks", []))
    n_out = len(getattr(diffusion_model, "output_blocks", []))
    points = [(("output", 0), 0.0)]
    points += [(("input", i), (n_in - i) / max(n_in - 1, 1)) for i in range(1, n_in)]
    points += [(("output", i), i / max(n_out, 1)) for i in range(1, n_out)]
    return [k for k, g in points if g <= adain_weight]


def select_blocks(blocks: list[AttentionBlock], input_blocks: bool, middle_block: bool, output_blocks: bool,
                  min_level: int = 0) -> list[tuple]:
    """Keys of the blocks in the chosen sections at resolution level >= ``min_level``."""
    ok = {"input": input_blocks, "middle": middle_block, "output": output_blocks}
    return [b.key for b in blocks if ok[b.key[0]] and b.level >= min_level]


# --------------------------------------------------------------------------------------------
# run state and the per-call layout
# --------------------------------------------------------------------------------------------
@dataclass
class RunState:
    """Per-sampling-run caches (never stored on a model). Not a dict, so ComfyUI's per-call copies of
    transformer_options keep pointing at this one object."""

    banks: dict = field(default_factory=dict)     # uid -> ReferenceBank (the current step's)
    anchors: dict = field(default_factory=dict)   # (uid, block, sigma, branches, abs frame) -> (k, v)
    writes: dict = field(default_factory=dict)    # uid -> number of write passes (for tests/bench)
    anchor_sigma: float | None = None             # the step whose anchors are cached
    total_frames: int | None = None               # frames of the whole video (batch of the sampled noise)

    def keep_anchors_of(self, sigma) -> None:
        """Drop cached anchor K/V of earlier steps: the cache holds one step's anchors (at most one entry
        per patch x block x branch set x anchor frame), however long the run."""
        if sigma != self.anchor_sigma:
            self.anchors.clear()
            self.anchor_sigma = sigma


def run_scope(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: a fresh :class:`RunState` for this sampling run, dropped afterwards."""
    to = executor.class_obj.model_options.setdefault("transformer_options", {})
    if RUN_KEY in to:
        return executor(*args, **kwargs)
    noise = args[0] if args else kwargs.get("noise")
    to[RUN_KEY] = RunState(total_frames=int(noise.shape[0]) if torch.is_tensor(noise) and noise.ndim == 4 else None)
    try:
        return executor(*args, **kwargs)
    finally:
        to.pop(RUN_KEY, None)


def call_scope(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
    """APPLY_MODEL wrapper: this call's sigma as a float in ``transformer_options[SIGMA_KEY]``, so the
    per-block patches never read a device tensor back to the host (one read per model call)."""
    to = dict(transformer_options)
    to[SIGMA_KEY] = float(t.max())
    to[SAMPLING_KEY] = getattr(executor.class_obj, "model_sampling", None)
    return executor(x, t, c_concat, c_crossattn, control, to, **kwargs)


def _ensure_run_scope(m) -> None:
    if not m.get_wrappers(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY):
        m.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, run_scope)
    if not m.get_wrappers(WrappersMP.APPLY_MODEL, WRAPPER_KEY):
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, WRAPPER_KEY, call_scope)


def frame_index_of(options: dict) -> tuple | None:
    """Absolute frame indices of this call: AnimateDiff-Evolved's ``ad_params["sub_idxs"]``, else a
    core ComfyUI context window's ``index_list`` (batch-dim windows), else None (all frames)."""
    ad = options.get("ad_params") or {}
    if ad.get("sub_idxs") is not None:
        return tuple(int(i) for i in ad["sub_idxs"])
    win = options.get("context_window")
    if win is not None and getattr(win, "dim", 0) == 0 and getattr(win, "index_list", None) is not None:
        return tuple(int(i) for i in win.index_list)
    return None


def total_frames_of(options: dict, layout: BatchLayout) -> int | None:
    """Number of frames of the whole video, when known: all of them outside windows, ADE's
    ``ad_params["full_length"]`` in its windows, and in core's context windows (which carry only their own
    indices) the batch of the noise this sampling run started from."""
    if frame_index_of(options) is None:
        return layout.frames
    ad = options.get("ad_params") or {}
    full = ad.get("full_length")
    if full:
        return int(full)
    run = options.get(RUN_KEY)
    return run.total_frames if run is not None else None


def layout_of(options: dict, batch: int) -> BatchLayout:
    return batch_layout(batch, options.get("cond_or_uncond"), frame_index_of(options))


def current_sigma(options: dict) -> float | None:
    """This call's sigma: the float :func:`call_scope` stored, else read from ``options["sigmas"]``."""
    f = options.get(SIGMA_KEY)
    if f is not None:
        return f
    s = options.get("sigmas")
    if s is None:
        return None
    return float(s.max()) if torch.is_tensor(s) else float(s)


def _in_range(sigma: float | None, sigma_start: float, sigma_end: float) -> bool:
    return sigma is None or sigma_end <= sigma <= sigma_start


_BOUNDS = weakref.WeakKeyDictionary()  # model_sampling -> {(start %, end %): (sigma_start, sigma_end)}


def sigma_bounds(model_sampling, start_percent, end_percent, fallback: tuple[float, float]) -> tuple[float, float]:
    """``[start_percent, end_percent]`` of sampling as ``(sigma_start, sigma_end)`` of the model_sampling the
    model samples with now, not the one it had when the node ran: a later node (AnimateDiff-Evolved's
    loader and its beta schedule, ModelSamplingDiscrete...) may swap it. ``fallback`` when unknown."""
    if model_sampling is None or start_percent is None or end_percent is None:
        return fallback
    try:
        per = _BOUNDS.setdefault(model_sampling, {})
    except TypeError:
        per = {}
    key = (float(start_percent), float(end_percent))
    if key not in per:
        per[key] = (float(model_sampling.percent_to_sigma(key[0])), float(model_sampling.percent_to_sigma(key[1])))
    return per[key]


# --------------------------------------------------------------------------------------------
# the one attn1 replace per block
# --------------------------------------------------------------------------------------------
class AttentionChain:
    """attn1 replace patch for one block: our K/V extenders in order, then one attention call.

    Immutable; ``with_extender`` returns a longer copy. ``fallback`` is a replace patch that was on
    the block before ours (from another pack); it then does the attention, on the extended K/V.
    """

    def __init__(self, key: tuple, extenders: tuple = (), fallback=None):
        self.key, self.extenders, self.fallback = key, tuple(extenders), fallback

    def with_extender(self, ext) -> "AttentionChain":
        return AttentionChain(self.key, self.extenders + (ext,), self.fallback)

    def __repr__(self):
        return f"AttentionChain({self.key}, {list(self.extenders)!r}, fallback={self.fallback!r})"

    def attention(self, q, k, v, extra_options):
        if self.fallback is not None:
            return self.fallback(q, k, v, extra_options)
        return comfy_attention.optimized_attention(q, k, v, extra_options["n_heads"],
                                                   attn_precision=extra_options.get("attn_precision"),
                                                   transformer_options=extra_options)

    def __call__(self, q, k, v, extra_options):
        layout = layout_of(extra_options, q.shape[0])
        sigma = current_sigma(extra_options)
        exts = []
        for e in self.extenders:
            x = e.extension(self.key, k, v, extra_options, layout, sigma)
            if x is not None:
                exts.append(x)
        return chained_attention(partial(self.attention, extra_options=extra_options), q, k, v, exts, layout)


def install_extender(m, keys: list[tuple], extender) -> None:
    """Add ``extender`` to the chain of every block in ``keys`` on the clone ``m``."""
    replace = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn1", {})
    for key in keys:
        current = replace.get(key, replace.get(key[:2]))
        if isinstance(current, AttentionChain):
            chain = current.with_extender(extender)
        else:
            chain = AttentionChain(key, (extender,), fallback=current)
        m.set_model_attn1_replace(chain, key[0], key[1], key[2])


# --------------------------------------------------------------------------------------------
# ReferenceImageCondition
# --------------------------------------------------------------------------------------------
@dataclass
class ReferenceBank:
    """The reference's recorded K/V per attention block and AdaIN statistics per point, at ``sigma``."""

    sigma: float
    kv: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceSettings:
    uid: str
    strength: float
    style_fidelity: float
    sigma_start: float
    sigma_end: float
    seed: int
    concat: bool
    write: bool   # any attention block or AdaIN point uses the reference
    start_percent: float | None = None  # resolved against the sampling model_sampling (sigma_* = node-time)
    end_percent: float | None = None

    def bounds(self, model_sampling) -> tuple[float, float]:
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))


class ReferenceExtender:
    """Reference-only K/V: frames attend to ``[own tokens; reference tokens]``."""

    def __init__(self, settings: ReferenceSettings):
        self.s = settings

    def __repr__(self):
        return f"ReferenceExtender({self.s!r})"

    def extension(self, key, k, v, options, layout, sigma):
        writing = options.get(WRITING_KEY)
        if writing is not None:
            if writing[0] == self.s.uid:
                writing[1].kv[key] = (k[:1], v[:1])  # the write batch repeats one image: its first row
            return None
        bank = (options.get(BANKS_KEY) or {}).get(self.s.uid)
        if bank is None or key not in bank.kv:
            return None
        k_ref, v_ref = bank.kv[key]
        return KVExtension((k_ref.unsqueeze(0),), (v_ref.unsqueeze(0),),
                           branch_weights(layout, self.s.strength, self.s.style_fidelity))


class _AdainBase:
    def __init__(self, settings: ReferenceSettings, points: frozenset):
        self.s, self.points = settings, points

    def __repr__(self):
        return f"{type(self).__name__}({self.s!r}, {sorted(self.points)!r})"

    def apply(self, h, key, options):
        if key not in self.points:
            return h
        writing = options.get(WRITING_KEY)
        if writing is not None:
            if writing[0] == self.s.uid:
                writing[1].stats[key] = channel_stats(h[:1])
            return h
        bank = (options.get(BANKS_KEY) or {}).get(self.s.uid)
        if bank is None or key not in bank.stats:
            return h
        layout = layout_of(options, h.shape[0])
        weights = branch_weights(layout, self.s.strength, self.s.style_fidelity)
        return blend_rows(h, adain(h, *bank.stats[key]), layout, weights)


class AdainInputPatch(_AdainBase):
    """``input_block_patch``: AdaIN on the output of the selected input blocks."""

    def __call__(self, h, transformer_options):
        block = transformer_options.get("block") or ("", -1)
        return self.apply(h, ("input", block[1]), transformer_options)


class AdainOutputPatch(_AdainBase):
    """``output_block_patch``: AdaIN on the features entering the selected output blocks."""

    def __call__(self, h, hsp, transformer_options):
        block = transformer_options.get("block") or ("", -1)
        return self.apply(h, ("output", block[1]), transformer_options), hsp


class ReferenceWriter:
    """APPLY_MODEL wrapper: the reference write pass, then the frames' forward that reads it.

    Write pass: the reference latent, noised to the current sigma with noise fixed by ``seed``
    (``model_sampling.noise_scaling``), goes through the U-Net once as a batch-1 forward with the
    cond branch's conditioning; our extenders and AdaIN patches record its K/V and statistics. The
    bank is cached per sigma in the run's :class:`RunState`, so a step whose frames are split over
    several model calls (cond/uncond batches, context windows) writes once.
    """

    def __init__(self, settings: ReferenceSettings, reference: torch.Tensor):
        self.s = settings
        self.reference = reference.detach().clone()
        self._noise = None
        self._processed = {}

    def __repr__(self):
        return f"ReferenceWriter({self.s!r}, reference={tuple(self.reference.shape)})"

    def _latents(self, base_model, like: torch.Tensor):
        k = (like.device, like.dtype)
        if k not in self._processed:
            ref = base_model.process_latent_in(self.reference.to(torch.float32))
            g = torch.Generator(device="cpu").manual_seed(int(self.s.seed))
            noise = torch.randn(ref.shape, generator=g, dtype=torch.float32)
            self._processed = {k: (ref.to(like.device, like.dtype), noise.to(like.device, like.dtype))}
        return self._processed[k]

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        base_model = executor.class_obj
        ref, noise = self._latents(base_model, x)
        if self.s.concat:
            c_concat = ref.expand(x.shape[0], *ref.shape[1:])
        sigma = transformer_options.get(SIGMA_KEY)
        if sigma is None:
            sigma = float(t.max())
        sigma_start, sigma_end = self.s.bounds(getattr(base_model, "model_sampling", None))
        if not (self.s.write and self.s.strength > 0 and sigma_end <= sigma <= sigma_start):
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        run = transformer_options.get(RUN_KEY)
        bank = run.banks.get(self.s.uid) if run is not None else None
        if bank is None or bank.sigma != sigma:
            bank = self._write(executor, base_model, x, t, sigma, c_concat, c_crossattn, transformer_options, kwargs, ref,
                               noise)
            if run is not None:
                run.banks[self.s.uid] = bank
                run.writes[self.s.uid] = run.writes.get(self.s.uid, 0) + 1
        to = dict(transformer_options)
        to[BANKS_KEY] = {**(to.get(BANKS_KEY) or {}), self.s.uid: bank}
        return executor(x, t, c_concat, c_crossattn, control, to, **kwargs)

    def _write(self, executor, base_model, x, t, sigma, c_concat, c_crossattn, transformer_options, kwargs, ref, noise):
        layout = batch_layout(x.shape[0], transformer_options.get("cond_or_uncond"))
        j = layout.branches.index(0) if 0 in layout.branches else 0
        row, batch = j * layout.frames, x.shape[0]
        # One image, unless a pack normalises over whole clips (see write_rows): then the reference is
        # repeated to this call's clip length and only its first row is recorded. Temporal layers of
        # other packs (motion modules) are skipped either way, so both give the same bank.
        rows = write_rows(transformer_options, layout.frames)

        def one(v):
            if not (torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == batch):
                return v
            return v[row:row + 1].expand(rows, *v.shape[1:]) if rows > 1 else v[row:row + 1]

        t1 = one(t)
        x_ref = base_model.model_sampling.noise_scaling(t1, noise.expand(rows, *noise.shape[1:]),
                                                        ref.expand(rows, *ref.shape[1:]))
        bank = ReferenceBank(sigma)
        to = {k: v for k, v in transformer_options.items() if k not in (BANKS_KEY, "ad_params", "context_window")}
        to["patches"] = skip_temporal_layers(to.get("patches") or {})
        to["cond_or_uncond"] = [layout.branches[j]]
        to["sigmas"] = t1
        to[SIGMA_KEY] = sigma
        to[WRITING_KEY] = (self.s.uid, bank)
        kw = {k: one(v) for k, v in kwargs.items()}
        cc = ref.expand(rows, *ref.shape[1:]) if self.s.concat else one(c_concat)
        executor(x_ref, t1, cc, one(c_crossattn), None, to, **kw)
        return bank


def _skip_layer(layer, x, *args, **kwargs):
    return x


def skip_temporal_layers(patches: dict) -> dict:
    """``patches`` for the reference write pass: every layer type another pack routes through
    ``forward_timestep_embed_patch`` (AnimateDiff's motion modules and other layers a pack injects into
    the U-Net) passes its input through unchanged. The reference is one still image: its K/V and
    statistics come from the image model alone, and a motion module never sees a batch that is not a
    clip."""
    handlers = patches.get("forward_timestep_embed_patch")
    if not handlers:
        return patches
    out = dict(patches)
    out["forward_timestep_embed_patch"] = [(cls, _skip_layer) for cls, _ in handlers]
    return out


def write_rows(transformer_options: dict, clip_frames: int) -> int:
    """Rows of the write pass: 1, or ``clip_frames`` when a ``DIFFUSION_MODEL`` wrapper normalises over
    whole clips (AnimateDiff-Evolved's v1 GroupNorm, key ``ADE_groupnormed_diffusion_model``, divides the
    batch into clips of the context or video length). GroupNorm over identical frames has the
    statistics of one frame, so the first row equals the batch-1 result."""
    wrappers = (transformer_options.get("wrappers") or {}).get(WrappersMP.DIFFUSION_MODEL) or {}
    if any("groupnorm" in str(k).lower() for k in wrappers):
        return max(int(clip_frames), 1)
    return 1


class FirstFrameAnchor:
    """``denoise_mask_function``: frame 0 keeps the (noised) reference latent over the sigma range.

    ComfyUI's inpainting step (``KSamplerX0Inpaint``) then replaces frame 0 by the input latent's
    frame 0, noised with the sampler's own noise, and its prediction by that latent, wherever the
    mask is 0. The node puts the reference into frame 0 of the video latent and gives it a mask.
    """

    def __init__(self, sigma_start: float, sigma_end: float, previous=None, start_percent=None, end_percent=None):
        self.sigma_start, self.sigma_end, self.previous = sigma_start, sigma_end, previous
        self.start_percent, self.end_percent = start_percent, end_percent

    def __repr__(self):
        return f"FirstFrameAnchor({self.sigma_start}, {self.sigma_end}, previous={self.previous!r})"

    def __call__(self, sigma, denoise_mask, extra_options):
        if self.previous is not None:
            denoise_mask = self.previous(sigma, denoise_mask, extra_options)
        if denoise_mask.shape[0] == 0:
            return denoise_mask
        guider = (extra_options or {}).get("model")
        ms = getattr(getattr(guider, "inner_model", None), "model_sampling", None)
        sigma_start, sigma_end = sigma_bounds(ms, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))
        if not torch.is_tensor(sigma):
            if not (sigma_end <= float(sigma) <= sigma_start):
                return denoise_mask
            keep = 1.0
        else:  # decided on the device: no host read of sigma
            s = sigma.max()
            keep = ((s <= sigma_start) & (s >= sigma_end)).to(denoise_mask.dtype)
        denoise_mask = denoise_mask.clone()
        denoise_mask[0] = denoise_mask[0] * (1 - keep)
        return denoise_mask


def sigma_range(model, start_percent: float, end_percent: float) -> tuple[float, float]:
    ms = model.get_model_object("model_sampling")
    return float(ms.percent_to_sigma(start_percent)), float(ms.percent_to_sigma(end_percent))


def _unet(model, node: str):
    dm = model.get_model_object("diffusion_model")
    blocks = attention_blocks(dm)
    if not blocks:
        raise NodeInputError(node, "model", "no U-Net self-attention blocks found; only SD1.x/SD2/SDXL-style "
                                            "U-Nets (input/middle/output blocks with SpatialTransformers) are supported")
    return dm, blocks


def apply_reference(model, reference: torch.Tensor, strength: float, style_fidelity: float, attention_weight: float,
                    adain_weight: float, start_percent: float, end_percent: float, anchor_first_frame: bool,
                    concat_reference: bool, seed: int, node: str = "ReferenceImageCondition"):
    """Clone ``model`` and attach the reference write/read passes (and the optional anchor/concat)."""
    dm, blocks = _unet(model, node)
    if concat_reference:
        lat_ch = int(model.get_model_object("latent_format").latent_channels)
        in_ch = int(getattr(dm, "in_channels", lat_ch))
        if in_ch != 2 * lat_ch:
            raise NodeInputError(node, "concat_reference",
                                 f"the model takes {in_ch} input channels; image-concat conditioning needs a model "
                                 f"trained with {2 * lat_ch} ({lat_ch} latent + {lat_ch} reference). Turn it off for this model.")
    sigma_start, sigma_end = sigma_range(model, start_percent, end_percent)
    attn_keys = reference_attention_keys(blocks, attention_weight)
    points = frozenset(adain_points(dm, adain_weight))
    settings = ReferenceSettings(uid=uuid.uuid4().hex, strength=float(strength), style_fidelity=float(style_fidelity),
                                 sigma_start=sigma_start, sigma_end=sigma_end, seed=int(seed), concat=bool(concat_reference),
                                 start_percent=float(start_percent), end_percent=float(end_percent),
                                 write=bool(attn_keys or points))
    m = model.clone()
    _ensure_run_scope(m)
    if attn_keys:
        install_extender(m, attn_keys, ReferenceExtender(settings))
    if points:
        m.set_model_input_block_patch(AdainInputPatch(settings, points))
        m.set_model_output_block_patch(AdainOutputPatch(settings, points))
    if settings.write or settings.concat:
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, f"{WRAPPER_KEY}.reference.{settings.uid}",
                               ReferenceWriter(settings, reference))
    if anchor_first_frame:
        m.set_model_denoise_mask_function(FirstFrameAnchor(sigma_start, sigma_end,
                                                           m.model_options.get("denoise_mask_function"),
                                                           float(start_percent), float(end_percent)))
    return m


# --------------------------------------------------------------------------------------------
# CrossStreamAttention
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrossStreamSettings:
    uid: str
    mode: str
    anchor: str
    anchor_index: int
    strength: float
    sigma_start: float
    sigma_end: float
    node: str = "CrossStreamAttention"
    start_percent: float | None = None  # resolved against the sampling model_sampling (sigma_* = node-time)
    end_percent: float | None = None

    def bounds(self, model_sampling) -> tuple[float, float]:
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))


class CrossStreamExtender:
    """Cross-frame K/V: anchor frame (Text2Video-Zero), first + previous frame (sparse-causal), or
    the temporal-mean content stream (mutual)."""

    def __init__(self, settings: CrossStreamSettings):
        self.s = settings

    def __repr__(self):
        return f"CrossStreamExtender({self.s!r})"

    def _frame(self, key, k4, v4, absolute, options, layout, sigma, input_name):
        """K/V of absolute frame ``absolute`` as ``[B, 1, N, D]``: from this window, else from the
        run's cache of an earlier window at this sigma, else the nearest frame of this window."""
        total = total_frames_of(options, layout)
        if total is not None and not (0 <= absolute < total):
            raise NodeInputError(self.s.node, input_name,
                                 f"frame {absolute} is outside the {total} frames being sampled (0..{total - 1})")
        windowed = frame_index_of(options) is not None
        run = options.get(RUN_KEY)
        ck = (self.s.uid, key, sigma, layout.branches, absolute)
        if windowed and run is not None:
            run.keep_anchors_of(sigma)
        pos = local_position(absolute, layout.frame_index)
        if pos is not None:
            ek, ev = frame_tokens(k4, pos), frame_tokens(v4, pos)
            if windowed and run is not None:
                run.anchors[ck] = (ek.clone(), ev.clone())
            return ek, ev
        cached = run.anchors.get(ck) if run is not None else None
        if cached is not None and cached[0].shape[2:] == k4.shape[2:]:
            return cached
        pos = nearest_position(absolute, layout.frame_index)
        return frame_tokens(k4, pos), frame_tokens(v4, pos)

    def extension(self, key, k, v, options, layout, sigma):
        if options.get(WRITING_KEY) is not None or self.s.strength == 0:
            return None
        if not _in_range(sigma, *self.s.bounds(options.get(SAMPLING_KEY))):
            return None
        k4, v4 = to_frames(k, layout), to_frames(v, layout)
        if self.s.mode == "anchor":
            total = total_frames_of(options, layout)
            a = resolve_anchor(self.s.anchor, self.s.anchor_index, total, layout.frame_index)
            ek, ev = self._frame(key, k4, v4, a, options, layout, sigma, "anchor_index")
            ks, vs = (ek,), (ev,)
        elif self.s.mode == "sparse_causal":
            fk, fv = self._frame(key, k4, v4, 0, options, layout, sigma, "mode")
            prev = previous_positions(layout.frame_index)
            ks, vs = (fk, frame_tokens(k4, prev)), (fv, frame_tokens(v4, prev))
        elif self.s.mode == "mutual":
            ks, vs = (temporal_mean(k4),), (temporal_mean(v4),)
        else:
            raise NodeInputError(self.s.node, "mode", f"unknown mode {self.s.mode!r}")
        return KVExtension(ks, vs, (self.s.strength,) * layout.n_branches)


def apply_cross_stream(model, mode: str, anchor: str, anchor_index: int, strength: float, input_blocks: bool,
                       middle_block: bool, output_blocks: bool, min_level: int, start_percent: float,
                       end_percent: float, node: str = "CrossStreamAttention"):
    """Clone ``model`` with cross-frame attention on the selected blocks."""
    _, blocks = _unet(model, node)
    keys = select_blocks(blocks, input_blocks, middle_block, output_blocks, min_level)
    if not keys:
        raise NodeInputError(node, "min_level", "no self-attention block matches this block selection "
                                                "(sections and min_level); select at least one block")
    sigma_start, sigma_end = sigma_range(model, start_percent, end_percent)
    settings = CrossStreamSettings(uid=uuid.uuid4().hex, mode=mode, anchor=anchor, anchor_index=int(anchor_index),
                                   strength=float(strength), sigma_start=sigma_start, sigma_end=sigma_end, node=node,
                                   start_percent=float(start_percent), end_percent=float(end_percent))
    m = model.clone()
    _ensure_run_scope(m)
    install_extender(m, keys, CrossStreamExtender(settings))
    return m
