"""ReferenceImageCondition on DiT video models: the reference write pass once per step (its K/V recorded at
RoPE time position ``REFERENCE_POSITION``, in front of the video), the extender that adds them to the video's
self-attention, and the first-latent-frame anchor. Block discovery, RoPE and run state: :mod:`.dit`."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import torch

from comfy.patcher_extension import WrappersMP

from ..attention import batch_layout, branch_weights
from ..dit_attention import DitExtension
from ..errors import ParameterError, Reporter
from ..video import percent_sigmas
from .dit import (BlockCall, DIT_BANKS_KEY, DIT_CALL_KEY, DIT_RUN_KEY, DIT_WRITING_KEY, DitCall, REFERENCE_POSITION,
                  TimeShift, WRAPPER_KEY, call_in_range, call_of, ensure_scopes, ensure_untouched_parts,
                  install_extender, require_dit, select_block_share)
from .core_windows import ensure_windows_guard
from .state import sigma_bounds


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
                kr, vr = ctx.image_tokens(k, layout), ctx.image_tokens(v, layout)
                bank.kv[ctx.chain.key] = (self.shift.rotate(ctx, kr, layout, 0, self.s.position).to(k.dtype),
                                          vr.contiguous())
            return None
        bank = (to.get(DIT_BANKS_KEY) or {}).get(self.s.uid)
        if bank is None or ctx.chain.key not in bank.kv:
            return None
        call = call_of(ctx)
        if not call_in_range(call, self.s.bounds(call.model_sampling if call else None)):
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

    def __init__(self, settings: DitReferenceSettings, reference: torch.Tensor, adapter):
        self.s, self.adapter = settings, adapter
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
            # per-frame conditioning (concat latents): frame 0; also when core windows left it longer than the
            # window (ComfyUI 0.3.75 does not cut c_concat; the concat guard then names that, core_windows.py)
            if v.ndim == 5 and v.shape[2] >= frames:
                v = v[:, :, :1]
            return v

        t1 = t.reshape(t.shape[0], -1)[row:row + 1, 0]   # this row's sigma ([1]; per-token timesteps: the first)
        x_ref = base_model.model_sampling.noise_scaling(t1, noise, ref)
        bank = DitReferenceBank(sigma)
        to = {k: v for k, v in transformer_options.items() if k not in (DIT_BANKS_KEY, "context_window")}
        to["cond_or_uncond"] = [branches[j]]
        to["sigmas"] = t1
        to[DIT_WRITING_KEY] = (self.s.uid, bank)
        call = transformer_options.get(DIT_CALL_KEY)
        to[DIT_CALL_KEY] = DitCall(sigma, 1, getattr(base_model, "model_sampling", None),
                                   call.extras if call is not None else self.adapter.call_extras(kwargs))
        kw = {k: one(v) for k, v in self.adapter.write_kwargs(kwargs, tuple(x_ref.shape)).items()}
        x_ref, kw = self.adapter.write_inputs(x_ref, kw)
        with torch.no_grad():
            executor(x_ref, t1, one(c_concat), one(c_crossattn), None, to, **kw)
        return bank


class DitFirstFrameAnchor:
    """``denoise_mask_function``: latent frame 0 of the video keeps the (noised) reference over the step range
    (where that frame is in the sampler's mask: :meth:`.adapters.DitAdapter.hold_first_frame`)."""

    def __init__(self, adapter, start_percent, end_percent, sigma_start, sigma_end, previous=None):
        self.adapter, self.start_percent, self.end_percent = adapter, start_percent, end_percent
        self.sigma_start, self.sigma_end, self.previous = sigma_start, sigma_end, previous

    def __repr__(self):
        return f"DitFirstFrameAnchor({self.adapter.name}, {self.start_percent}, {self.end_percent}, previous={self.previous!r})"

    def __call__(self, sigma, denoise_mask, extra_options):
        if self.previous is not None:
            denoise_mask = self.previous(sigma, denoise_mask, extra_options)
        base_model = getattr((extra_options or {}).get("model"), "inner_model", None)
        hi, lo = sigma_bounds(getattr(base_model, "model_sampling", None), self.start_percent, self.end_percent,
                              (self.sigma_start, self.sigma_end))
        s = sigma.max() if torch.is_tensor(sigma) else torch.tensor(float(sigma))
        keep = ((s <= hi) & (s >= lo)).to(denoise_mask.dtype)
        return self.adapter.hold_first_frame(denoise_mask, keep, base_model)


def reference_video_latent_5d(video: dict, reference: torch.Tensor, anchor: bool, adapter) -> dict:
    """The video LATENT to sample: with the anchor, latent frame 0 of its video part holds the reference and a
    noise_mask of ones (the denoise_mask_function zeroes frame 0 over the step range). A latent that packs more than
    the video (:meth:`.adapters.DitAdapter.video_part`) keeps its other parts and their masks."""
    if not anchor:
        return video
    samples = video["samples"]
    vid = adapter.video_part(samples).clone()
    vid[:, :, 0] = reference[:1, :, 0].to(vid.dtype)
    out = dict(video)
    out["samples"] = adapter.with_video_part(samples, vid)
    if video.get("noise_mask") is None:
        if getattr(samples, "is_nested", False):   # each part's mask at its full shape, as ComfyUI's own AV nodes
            out["noise_mask"] = type(samples)(tuple(torch.ones_like(t) for t in samples.unbind()))
        else:
            out["noise_mask"] = vid.new_ones((vid.shape[0], 1, *vid.shape[2:]))
    return out


def as_video_reference(ref: torch.Tensor) -> torch.Tensor:
    """A reference LATENT's samples as one latent frame ``[1, C, 1, H, W]`` (from a 4-D image latent or the
    first latent frame of a 5-D one)."""
    if ref.ndim == 4:
        return ref[:1].unsqueeze(2)
    return ref[:1, :, :1]


def apply_reference_dit(model, reference: torch.Tensor, strength: float, style_fidelity: float, attention_weight: float,
                        start_percent: float, end_percent: float, anchor_first_frame: bool, seed: int,
                        reporter: Reporter = Reporter()):
    """Clone ``model`` with the reference write pass and the reference K/V in the selected blocks."""
    adapter = require_dit(model, "reference")
    why = adapter.unsupported("anchor_first_frame") if anchor_first_frame else None
    if why:
        raise ParameterError("anchor_first_frame", why)
    keys = select_block_share(adapter, attention_weight)
    ms = model.get_model_object("model_sampling")
    sigma_start, sigma_end = percent_sigmas(ms, start_percent, end_percent)
    s = DitReferenceSettings(uuid.uuid4().hex, float(strength), float(style_fidelity), int(seed), float(start_percent),
                             float(end_percent), sigma_start, sigma_end)
    m = model.clone()
    ensure_windows_guard(m, adapter, f"{WRAPPER_KEY}.windows.{s.uid}", reporter)
    ensure_scopes(m, adapter)
    if keys:
        install_extender(m, adapter, keys, DitReferenceExtender(s))
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, f"{WRAPPER_KEY}.reference.{s.uid}",
                               DitReferenceWriter(s, as_video_reference(reference), adapter))
        # inside the writer: active in the calls that read this step's reference bank
        ensure_untouched_parts(m, adapter, f"{WRAPPER_KEY}.untouched.{s.uid}",
                               lambda to, uid=s.uid: uid in (to.get(DIT_BANKS_KEY) or {}))
    if anchor_first_frame:
        m.set_model_denoise_mask_function(DitFirstFrameAnchor(adapter, float(start_percent), float(end_percent),
                                                              sigma_start, sigma_end,
                                                              m.model_options.get("denoise_mask_function")))
    return m


