"""ComfyUI sampling loop for Reuse and Diffuse (VidRD): clip by clip through ComfyUI's own sampling.

Every clip is one ``comfy.samplers.CFGGuider.sample`` call on a clone of the model, so the model's
patches and wrappers (and other packs' ``OUTER_SAMPLE`` wrappers, e.g. AnimateDiff-Evolved) run for
every clip; the sampler and the scheduler are ComfyUI's, picked by name.

DSG's trajectory is recorded and replayed by one official hook, a ``PREDICT_NOISE`` model wrapper
(:class:`TrajectoryReplay`) on the clone. It sees, for every model call of the sampler, the input
``x`` and returns the denoised prediction ``D``:

- recording (every clip): the model input and output of the M source frames N-M..N-1, stored in
  overlap order (the frame overlap frame k re-traces at index k: N-1-k in the paper's reverse order,
  N-M+k in the forward order), for the steps DSG can replay only;
- replaying (clip c+1, overlap frame k, step s < n_k): the model input of frame k is the recorded
  input; while the next step is still guided (s + 1 < n_k) the returned ``D`` of frame k is the
  recorded one, so the sampler's own state follows the recorded trajectory exactly (deterministic
  samplers); at the last guided step the model's own prediction is used (as in the official code,
  where the overwritten latent is stepped with the new clip's prediction), and after it the frame
  evolves freely.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import comfy.utils

from ..reuse import (forward_reuse_noise, hold_colour, latent_colour_stats, overlap_order, overlap_sources, place_clip,
                    plan_clips, retrace_frames, retrace_mask, reverse_reuse_noise, staged_guidance_steps)
from ..errors import Reporter
from ..video import frame_axis
from .comfy_compat import fix_empty_latent
from .core_windows import add_concat_guard
from .previous_frames import with_previous_frames

WRAPPER_KEY = "coherent_video.iterative_reuse"
_SIGMA_RTOL = 1e-5


@dataclass(frozen=True)
class ReuseSettings:
    """One VidRD run: the clip plan (FNR/PNS/DSG parameters) and ComfyUI's sampling choices per clip."""

    total_frames: int
    overlap: int = 4                 # M
    noise_recycle: float = 4.0       # PNS sigma
    guidance_ratio: float = 0.4      # DSG g
    fnr: bool = True
    overlap_mode: str = "forward"    # reuse.OVERLAP_MODES
    seed: int = 0
    steps: int = 20
    cfg: float = 8.0
    sampler_name: str = "euler"
    scheduler: str = "normal"
    denoise: float = 1.0
    reporter: Reporter = Reporter()  # where warnings found while sampling go
    condition_on_previous: bool = False  # I2V models: clip c > 0 gets the re-traced frames as known frames
    colour_hold: float = 0.0         # clip c > 0's latent channel mean/std held to clip 0's (reuse.hold_colour)
    low_noise_start_step: int = 0    # with a second (low-noise) model: steps from this one on use it (Wan 2.2 A14B)


class SeedNoise:
    """ComfyUI's default noise for a seed (same as ``Noise_RandomNoise``): ``seed`` + ``generate_noise``."""

    def __init__(self, seed: int):
        self.seed = seed

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        return comfy.sample.prepare_noise(input_latent["samples"], self.seed, input_latent.get("batch_index"))


def clip_seed(seed: int, clip: int) -> int:
    """Seed of clip ``clip``: the base seed + clip index (wrapping at 2^64)."""
    return (int(seed) + clip) % (1 << 64)


def clip_noise(noise_source, clip: int, latent: dict) -> torch.Tensor:
    """Noise for clip ``clip`` from a NOISE object (``seed`` + ``generate_noise``): a shallow copy
    whose seed is :func:`clip_seed`; clip 0 therefore gets exactly the noise the object gives."""
    src = noise_source
    if clip:
        src = copy.copy(noise_source)
        src.seed = clip_seed(noise_source.seed, clip)
    return src.generate_noise(latent)


def scheduler_sigmas(model, scheduler: str, steps: int, denoise: float) -> torch.Tensor:
    """Sigmas exactly as ComfyUI's ``BasicScheduler`` computes them (denoise < 1 keeps the tail)."""
    total_steps = steps
    if denoise < 1.0:
        total_steps = int(steps / denoise)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, total_steps).cpu()
    return sigmas[-(steps + 1):]


class TrajectoryReplay:
    """``PREDICT_NOISE`` wrapper that records the overlap source frames and replays DSG.

    ``stage_steps`` are the DSG stage lengths ``n_k`` (:func:`staged_guidance_steps`). Model calls are
    identified by their order within a clip (the sampler and sigmas are the same for every clip); the
    call that starts step i is learnt from the sampler callback, which ComfyUI's samplers fire once
    per step right after that call.
    """

    def __init__(self, clip_frames: int, overlap: int, stage_steps: list[int], frame_dim: int,
                 sources: list[int] | None = None):
        self.clip_frames = clip_frames
        self.overlap = overlap
        self.sources = list(sources) if sources is not None else [clip_frames - 1 - k for k in range(overlap)]
        self.stage = list(stage_steps)
        self.frame_dim = frame_dim
        self.record_until = max(self.stage, default=0)
        self.replay_source: dict[int, tuple] = {}
        self.record: dict[int, tuple] = {}
        self.entries: list[int] = []
        self._cur_entries: list[int] = []
        self._calls = 0
        self._steps_seen = 0
        self.replay_enabled = False
        self.replayed_calls = 0
        self.mismatches = 0

    # -- clip bookkeeping ------------------------------------------------------------------------
    def start_clip(self, replay: bool) -> None:
        """Call before sampling a clip: the last clip's record becomes the replay source."""
        if self._cur_entries:
            self.entries = self._cur_entries
        self.replay_source = self.record if replay else {}
        self.replay_enabled = replay and bool(self.replay_source)
        self.record = {}
        self._cur_entries = []
        self._calls = 0
        self._steps_seen = 0

    def end(self) -> None:
        self.record, self.replay_source = {}, {}

    def on_step(self, step: int) -> None:
        """Sampler callback for ``step``: the most recent model call started that step."""
        if step == len(self._cur_entries) and self._calls > 0:
            self._cur_entries.append(self._calls - 1)
        self._steps_seen = max(self._steps_seen, step + 1)

    def _step_of(self, call: int) -> tuple[int, bool] | None:
        """(step, starts the step) of model call ``call``, from the last clip's callbacks."""
        entries = self.entries
        if not entries or entries[0] != 0:
            return None
        step = 0
        for i, e in enumerate(entries):
            if e > call:
                break
            step = i
        return step, entries[step] == call

    # -- the wrapper -----------------------------------------------------------------------------
    def __call__(self, executor, x, timestep, model_options={}, seed=None, **kwargs):
        comfy.model_management.throw_exception_if_processing_interrupted()
        call = self._calls
        self._calls += 1
        fd, M = self.frame_dim, self.overlap
        sigma = float(timestep.reshape(-1)[0])

        override_x, override_d, rec = [], [], None
        if self.replay_enabled and M > 0:
            where = self._step_of(call)
            if where is None:
                self.mismatches += 1
            elif where[0] < self.record_until:
                step, is_entry = where
                rec = self.replay_source.get(call)
                if rec is None or not math.isclose(rec[0], sigma, rel_tol=_SIGMA_RTOL, abs_tol=1e-8):
                    self.mismatches += 1
                    rec = None
                else:
                    override_x = [k for k, n in enumerate(self.stage) if step < n and (is_entry or step + 1 < n)]
                    override_d = [k for k, n in enumerate(self.stage) if step + 1 < n]

        if override_x:
            idx = torch.tensor(override_x, device=x.device)
            x = x.index_copy(fd, idx, rec[1].to(x).index_select(fd, idx))
        out = executor(x, timestep, model_options, seed, **kwargs)
        if override_d:
            idx = torch.tensor(override_d, device=out.device)
            out = out.index_copy(fd, idx, rec[2].to(out).index_select(fd, idx))
        if rec is not None and (override_x or override_d):
            self.replayed_calls += 1

        if M > 0 and self._steps_seen <= self.record_until and x.shape[fd] == self.clip_frames:
            src = torch.tensor(self.sources, device=x.device)
            self.record[call] = (sigma, x.index_select(fd, src).detach(), out.index_select(fd, src).detach())
        return out


def _previewer(model):
    try:
        import latent_preview

        return latent_preview.get_previewer(model.load_device, model.model.latent_format)
    except Exception:  # previews are optional (headless runs have none)
        return None


def run(model, positive, negative, latent: dict, settings: ReuseSettings, noise=None,
        clip_positives: list | None = None, step_callback=None, model_low_noise=None) -> dict:
    """Sample ``settings.total_frames`` frames clip by clip with FNR + PNS + DSG; returns a LATENT dict.

    ``overlap_mode`` ``forward`` re-traces the previous clip's last M frames in forward order
    (:func:`forward_reuse_noise`); ``concat`` and ``reversed_drop`` in the paper's reverse order
    (:func:`reverse_reuse_noise`). The re-traced overlap frames start from the latent frame (and
    noise-mask frame) of the frame they re-trace, so DSG follows the recorded trajectory exactly
    with ``denoise`` < 1 and with a ``noise_mask`` too.

    ``latent["samples"]`` is one clip (N frames on the batch axis, or on axis 2 for video latents).
    ``noise`` is any NOISE object (``seed`` + ``generate_noise``); clip c draws its fresh noise from a
    copy seeded ``seed + c``. ``clip_positives`` replaces ``positive`` per clip. ``step_callback``
    (clip, step, x0, x) is called after every sampler step (tests and tools use it). ``colour_hold`` > 0 holds every
    later clip's sampled latent to clip 0's per-channel mean and std (:func:`reuse.hold_colour`) before it is placed
    and before the next clip is conditioned on it (``condition_on_previous``); the DSG record stays the sampler's own.
    ``model_low_noise`` (two-expert models such as Wan 2.2 A14B): every clip samples steps
    ``[0, low_noise_start_step)`` with ``model`` and the rest with ``model_low_noise``, as two ComfyUI samplings
    (the first returns its leftover noise, the second adds none), like the two KSamplerAdvanced of ComfyUI's own
    Wan 2.2 templates; DSG's record and replay span both (one wrapper object on both clones).
    Inputs are assumed valid (the node checks them).
    """
    s = settings
    total_frames, overlap, noise_recycle, guidance_ratio = s.total_frames, s.overlap, s.noise_recycle, s.guidance_ratio
    fnr, overlap_mode, seed, steps, cfg, denoise = s.fnr, s.overlap_mode, s.seed, s.steps, s.cfg, s.denoise
    latent_image = fix_empty_latent(model, latent)   # as ComfyUI's own samplers (0.33+: the LATENT's downscale ratios)
    fd = frame_axis(latent_image)
    n_frames = latent_image.shape[fd]
    plan = plan_clips(total_frames, n_frames, overlap, overlap_mode)
    sigmas = scheduler_sigmas(model, s.scheduler, steps, denoise)
    n_steps = len(sigmas) - 1
    stage = staged_guidance_steps(n_steps, overlap, guidance_ratio)
    noise_mask = latent.get("noise_mask")
    noise_source = noise if noise is not None else SeedNoise(seed)

    m = model.clone()
    order = overlap_order(overlap_mode)
    sources = overlap_sources(n_frames, overlap, order)
    reuse_noise = forward_reuse_noise if order == "forward" else reverse_reuse_noise
    guided_at_0 = sum(1 for n in stage if n > 0)
    retraced = overlap if fnr else guided_at_0  # overlap frames that start from the previous clip's noise
    retrace_latent = retrace_frames(latent_image, fd, retraced, sources)
    retraced_mask = retrace_mask(noise_mask, latent_image.ndim, n_frames, retraced, sources)
    replay = TrajectoryReplay(n_frames, overlap, stage, fd, sources)
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, replay)
    add_concat_guard(m, s.reporter)   # core windows that cannot cut c_concat (core_windows.py)
    switch = min(max(int(s.low_noise_start_step), 0), n_steps) if model_low_noise is not None else n_steps
    m_low = None
    if switch < n_steps:
        m_low = model_low_noise.clone()
        m_low.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, replay)
        add_concat_guard(m_low, s.reporter, "model_low_noise")
    sampler = comfy.samplers.sampler_object(s.sampler_name)

    out_shape = list(latent_image.shape)
    out_shape[fd] = total_frames
    out = torch.empty(out_shape, dtype=torch.float32, device=comfy.model_management.intermediate_device())
    total_ticks = len(plan) * n_steps
    pbar = comfy.utils.ProgressBar(total_ticks)
    previewer = _previewer(m)
    clip_latent = {"samples": latent_image}
    if "batch_index" in latent:
        clip_latent["batch_index"] = latent["batch_index"]

    prev_eps = prev_samples = hold_stats = None
    try:
        for c, piece in enumerate(plan):
            comfy.model_management.throw_exception_if_processing_interrupted()
            fresh = clip_noise(noise_source, c, clip_latent)
            if prev_eps is None:
                eps = fresh
            else:
                eps = reuse_noise(prev_eps, fresh, overlap, noise_recycle, fnr, fd)
                if not fnr and guided_at_0:
                    # DSG's step-0 overwrite (official code): guided overlap frames start from the
                    # noise of the frame they re-trace whatever FNR says.
                    eps = retrace_frames(eps, fd, guided_at_0, sources, prev_eps.to(eps))
            replay.start_clip(replay=c > 0 and any(stage))

            def callback(step, x0, x, total, _c=c, _offset=0):
                step += _offset
                replay.on_step(step)
                if step_callback is not None:
                    step_callback(_c, step, x0, x)
                preview = None
                if previewer is not None:
                    preview = previewer.decode_latent_to_preview_image("JPEG", x0)
                pbar.update_absolute(_c * n_steps + step + 1, total_ticks, preview)
                comfy.model_management.throw_exception_if_processing_interrupted()

            clip_pos, clip_neg = clip_positives[c] if clip_positives is not None else positive, negative
            if prev_samples is not None and overlap > 0:  # condition_on_previous (previous_frames.py)
                known = prev_samples.index_select(fd, torch.tensor(sources, device=prev_samples.device))
                fill = m.model.process_latent_out(torch.zeros_like(known.narrow(fd, 0, 1)))  # model-space 0
                clip_pos = with_previous_frames(clip_pos, known, n_frames, fill)
                clip_neg = with_previous_frames(clip_neg, known, n_frames, fill)
            first = c == 0

            def sample(patcher, noise_, lat_, sigmas_, offset):
                guider = comfy.samplers.CFGGuider(patcher)
                guider.set_conds(clip_pos, clip_neg)
                guider.set_cfg(cfg)
                cb = lambda step, x0, x, total: callback(step, x0, x, total, _offset=offset)  # noqa: E731
                return guider.sample(noise_, lat_, sampler, sigmas_,
                                     denoise_mask=noise_mask if first else retraced_mask, callback=cb,
                                     disable_pbar=True, seed=clip_seed(noise_source.seed, c))

            start_latent = latent_image if first else retrace_latent
            if m_low is None:
                samples = sample(m, eps, start_latent, sigmas, 0)
            else:  # two experts: the first returns the latent with its leftover noise at sigmas[switch]
                samples = start_latent if switch == 0 else sample(m, eps, start_latent, sigmas[:switch + 1], 0)
                samples = sample(m_low, eps if switch == 0 else torch.zeros_like(eps), samples, sigmas[switch:],
                                 switch)
            samples = samples.to(out.device)
            if s.colour_hold > 0:  # before placing and before the next clip conditions on it
                if hold_stats is None:
                    hold_stats = latent_colour_stats(samples)
                else:
                    samples = hold_colour(samples, *hold_stats, s.colour_hold)
            place_clip(out, samples, piece, fd)
            prev_samples = samples if s.condition_on_previous else None
            del samples
            prev_eps = eps
            pbar.update_absolute((c + 1) * n_steps, total_ticks)
        if replay.mismatches:
            s.reporter.warning(f"{replay.mismatches} model calls could not be matched to the recorded trajectory "
                               "(adaptive sampler?); DSG skipped for them")
    finally:
        replay.end()
    return {"samples": out}
