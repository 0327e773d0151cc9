"""Reference-image conditioning hooks: the reference write pass, reference-only K/V, AdaIN and the frame-0 anchor.

Official hooks only, all on a clone:

- an ``APPLY_MODEL`` wrapper (:class:`ReferenceWriter`): the reference "write" pass, once per sampling step
  (one extra batch-1 forward at the current sigma, cached per sigma for the rest of the step), recording each
  selected block's reference K/V and AdaIN statistics;
- a K/V extender (:class:`ReferenceExtender`) in every selected block's :class:`~.chain.AttentionChain`;
- ``input_block_patch`` / ``output_block_patch`` for AdaIN, ``denoise_mask_function`` for the frame-0 anchor.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import torch

from comfy.patcher_extension import WrappersMP

from ..attention import KVExtension, adain, batch_layout, blend_rows, branch_weights, channel_stats
from ..errors import ParameterError
from .blocks import AttentionBlock, adain_points, model_blocks
from .chain import install_extender
from .state import RUN_KEY, SIGMA_KEY, WRAPPER_KEY, WRITING_KEY, SigmaRange, ensure_run_scope, layout_of

BANKS_KEY = "coherent_video_banks"      # {uid: ReferenceBank} readable in this forward


def reference_attention_keys(blocks: list[AttentionBlock], attention_weight: float) -> list[tuple]:
    """reference-only's per-block gating: blocks sorted by width, widest (deepest) first, block ``i``
    of ``n`` gets ``i / n`` and takes part when ``attention_weight > i / n``."""
    order = sorted(range(len(blocks)), key=lambda i: -blocks[i].dim)  # stable: forward order on ties
    n = len(blocks)
    return [blocks[b].key for rank, b in enumerate(order) if attention_weight > rank / n]


@dataclass
class ReferenceBank:
    """The reference's recorded K/V per attention block and AdaIN statistics per point, at ``sigma``."""

    sigma: float
    kv: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceSettings:
    """Reference-image conditioning: how strongly, in which blocks (by weight), when, and the extras."""

    strength: float = 1.0
    style_fidelity: float = 0.5
    attention_weight: float = 1.0     # share of the self-attention blocks that read the reference
    adain_weight: float = 0.0         # AdaIN depth (0 = off)
    start_percent: float = 0.0
    end_percent: float = 1.0
    anchor_first_frame: bool = True   # hold frame 0 on the reference (denoise mask)
    concat_reference: bool = False    # also feed the reference as c_concat
    seed: int = 0                     # of the noise that noises the reference in the write pass


@dataclass(frozen=True)
class ActiveReference:
    """What the run-time pieces of one patch share: its id, weights, noise seed and sigma range."""

    uid: str
    strength: float
    style_fidelity: float
    seed: int
    concat: bool
    write: bool   # any attention block or AdaIN point uses the reference
    sigmas: SigmaRange

    def bounds(self, model_sampling) -> tuple[float, float]:
        return self.sigmas.bounds(model_sampling)


class ReferenceExtender:
    """Reference-only K/V: frames attend to ``[own tokens; reference tokens]``."""

    def __init__(self, settings: ActiveReference):
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
    def __init__(self, settings: ActiveReference, points: frozenset):
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

    def __init__(self, settings: ActiveReference, reference: torch.Tensor):
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

    def __init__(self, sigmas: SigmaRange, previous=None):
        self.sigmas, self.previous = sigmas, previous

    def __repr__(self):
        return f"FirstFrameAnchor({self.sigmas!r}, previous={self.previous!r})"

    def __call__(self, sigma, denoise_mask, extra_options):
        if self.previous is not None:
            denoise_mask = self.previous(sigma, denoise_mask, extra_options)
        if denoise_mask.shape[0] == 0:
            return denoise_mask
        guider = (extra_options or {}).get("model")
        ms = getattr(getattr(guider, "inner_model", None), "model_sampling", None)
        sigma_start, sigma_end = self.sigmas.bounds(ms)
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


def patch(model, reference: torch.Tensor, settings: ReferenceSettings):
    """Clone ``model`` and attach the reference write/read passes (and the optional anchor/concat) for the
    reference latent ``reference`` ``[1, C, H, W]``."""
    dm, blocks = model_blocks(model)
    if settings.concat_reference:
        lat_ch = int(model.get_model_object("latent_format").latent_channels)
        in_ch = int(getattr(dm, "in_channels", lat_ch))
        if in_ch != 2 * lat_ch:
            raise ParameterError("concat_reference",
                                 f"the model takes {in_ch} input channels; image-concat conditioning needs a model "
                                 f"trained with {2 * lat_ch} ({lat_ch} latent + {lat_ch} reference). Turn it off for this model.")
    sigmas = SigmaRange.of(model, settings.start_percent, settings.end_percent)
    attn_keys = reference_attention_keys(blocks, settings.attention_weight)
    points = frozenset(adain_points(model, settings.adain_weight))
    active = ActiveReference(uid=uuid.uuid4().hex, strength=float(settings.strength),
                             style_fidelity=float(settings.style_fidelity), seed=int(settings.seed),
                             concat=bool(settings.concat_reference), write=bool(attn_keys or points), sigmas=sigmas)
    m = model.clone()
    ensure_run_scope(m)
    if attn_keys:
        install_extender(m, attn_keys, ReferenceExtender(active))
    if points:
        m.set_model_input_block_patch(AdainInputPatch(active, points))
        m.set_model_output_block_patch(AdainOutputPatch(active, points))
    if active.write or active.concat:
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, f"{WRAPPER_KEY}.reference.{active.uid}",
                               ReferenceWriter(active, reference))
    if settings.anchor_first_frame:
        m.set_model_denoise_mask_function(FirstFrameAnchor(sigmas, m.model_options.get("denoise_mask_function")))
    return m
