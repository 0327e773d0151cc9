"""ComfyUI hooks for base + residual noise (VideoFusion): a NOISE object and an OUTER_SAMPLE model wrapper.

Both start from ComfyUI's own noise for the seed (``comfy.sample.prepare_noise``, which honours
``batch_index``) as the per-frame residual, and draw the shared base from a derived seed, so the
two paths give the same noise for the same seed, and ``base_ratio = 0`` is ComfyUI's noise bit
for bit.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass

import torch

import comfy.patcher_extension
import comfy.sample

from ..errors import ParameterError, Reporter
from ..noise import correlated_noise, derived_seed, resolve_key_frame
from ..video import first_latent_gap, frame_axis, temporal_compression
from .comfy_compat import core_freenoise_active, latent_streams
from .core_windows import add_concat_guard, batch_problem

WRAPPER_KEY = "coherent_video.base_residual_noise"


@dataclass(frozen=True)
class NoiseSettings:
    """The noise prior (``mode`` and its parameters) and, for :func:`patch`, which noise it replaces."""

    mode: str = "shared"
    base_ratio: float = 0.5
    alpha: float = 1.0
    key_frame: int = -1
    lambda_schedule: tuple[float, ...] = ()   # one lambda per frame; overrides base_ratio and key_frame
    initial_noise: bool = True                # patch(): the sampler's initial noise
    per_step_noise: bool = False              # patch(): ancestral/SDE samplers' per-step noise
    reporter: Reporter = Reporter()           # where errors found while sampling go
    temporal_compression: int | None = None   # causal video VAE's pixel frames per latent frame (video.py);
                                              # None: read from a 5-D latent's channel count

    def frame_dim(self, x: torch.Tensor) -> int:
        return frame_axis(x)

    def validate_for(self, x: torch.Tensor) -> None:
        fd = self.frame_dim(x)
        frames = x.shape[fd]
        if self.lambda_schedule and len(self.lambda_schedule) != frames:
            raise ParameterError("lambda_schedule",
                                 f"has {len(self.lambda_schedule)} values but the latent has {frames} frames")
        if self.mode == "shared" and not self.lambda_schedule and frames > 1:
            k = resolve_key_frame(frames, self.key_frame)
            if not 0 <= k < frames:
                raise ParameterError("key_frame", f"{self.key_frame} is beyond the {frames}-frame batch "
                                                  f"(use 0..{frames - 1}, or -1 for the center frame (F-1)//2)")

    def apply(self, residual: torch.Tensor, seed: int, inplace: bool = False, latent_shapes=None) -> torch.Tensor:
        """Correlate ComfyUI's independent per-frame noise ``residual`` across frames (of the video stream of an
        audio-video latent: NestedTensor, or packed with ``latent_shapes``; comfy_compat.latent_streams)."""
        try:
            return self._apply(residual, seed, inplace, latent_shapes)
        except ParameterError as e:
            raise self.reporter.error(e) from None

    def _apply(self, residual: torch.Tensor, seed: int, inplace: bool, latent_shapes=None) -> torch.Tensor:
        streams, join = latent_streams(residual, latent_shapes)
        if len(streams) > 1:  # audio-video latent: the video stream; the audio keeps ComfyUI's noise bit for bit
            return join([self._apply(streams[0], seed, inplace)] + streams[1:])
        self.validate_for(residual)
        fd = self.frame_dim(residual)
        if residual.shape[fd] == 1:
            # Defined behaviour: nothing to correlate in a one-frame batch -> ComfyUI's noise unchanged.
            self.reporter.warning("one-frame batch: nothing to correlate, using ComfyUI's noise unchanged")
            return residual
        base = None
        if self.mode != "progressive":
            shape = list(residual.shape)
            shape[fd] = 1
            g = torch.Generator(device="cpu").manual_seed(derived_seed(seed))
            base = torch.randn(shape, generator=g, dtype=residual.dtype, device="cpu").to(residual.device)
        gap = 1.0
        if residual.ndim == 5:  # causal video latent: frame 0 holds one image frame (progressive mode's first step)
            c = self.temporal_compression
            gap = first_latent_gap(temporal_compression(latent=residual) if c is None else c)
        return correlated_noise(residual, base, self.mode, self.base_ratio, self.alpha, self.key_frame,
                                self.lambda_schedule or None, fd, inplace=inplace, first_gap=gap)


class BaseResidualNoiseGenerator:
    """NOISE for ``SamplerCustomAdvanced``; same contract as ComfyUI's ``Noise_RandomNoise``."""

    def __init__(self, seed: int, settings: NoiseSettings):
        self.seed = seed
        self.settings = settings

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        latent = input_latent["samples"]
        problem = None
        if not latent.is_nested and (latent.ndim < 3 or latent.numel() == 0):
            problem = f"must be a non-empty [frames, C, H, W] or [B, C, T, H, W] latent, got shape {tuple(latent.shape)}"
        elif not latent.is_nested and latent.numel() and not all_finite(latent):
            problem = "contains NaN or Inf values"
        if problem is not None:
            raise self.settings.reporter.error(ParameterError("latent", problem))
        batch_inds = input_latent.get("batch_index")
        residual = comfy.sample.prepare_noise(latent, self.seed, batch_inds)
        return self.settings.apply(residual, self.seed, inplace=True)  # the residual is ours: reuse it


class CorrelatedNoiseSampler:
    """Per-step noise for ancestral/SDE samplers: ``noise_sampler(sigma, sigma_next)`` with the
    same base+residual structure as the initial noise, drawn from its own seeded generator."""

    def __init__(self, settings: NoiseSettings, x: torch.Tensor, seed: int):
        self.settings = settings
        self.shape, self.dtype, self.device = x.shape, x.dtype, x.device
        self.generator = torch.Generator(device="cpu").manual_seed(derived_seed(seed, salt=0x5DEECE66D))

    def __call__(self, sigma=None, sigma_next=None) -> torch.Tensor:
        r = torch.randn(self.shape, generator=self.generator, dtype=self.dtype, device="cpu")
        step_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        return self.settings.apply(r, step_seed, inplace=True).to(self.device)


def all_finite(x: torch.Tensor) -> bool:
    """NaN/Inf check in one reduction without a full-size temporary: a float32 sum is NaN/Inf exactly
    when some element is (or when finite values beyond ~1e32 overflow it, which no latent holds)."""
    return bool(torch.isfinite(x.sum(dtype=torch.float32)))


def _accepts_noise_sampler(sampler) -> bool:
    fn = getattr(sampler, "sampler_function", None)
    if fn is None or not hasattr(sampler, "extra_options"):
        return False
    try:
        return "noise_sampler" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


ADE_SAMPLE_SETTINGS = "ADE_sample_settings"  # AnimateDiff-Evolved's attachment on the model it samples


def freenoise_active(model_patcher) -> bool:
    """AnimateDiff-Evolved's sample settings on this model ask for FreeNoise (its own initial noise)."""
    get = getattr(model_patcher, "get_attachment", None)
    ss = get(ADE_SAMPLE_SETTINGS) if get is not None else None
    return str(getattr(ss, "noise_type", "")) == "FreeNoise"


FREENOISE_WARNING = (
    "AnimateDiff-Evolved's FreeNoise is also on. Both replace the initial noise: "
    "with this node applied before ADE's nodes, FreeNoise's noise is sampled and this node's correlation is "
    "lost; applied after them, this node's noise replaces FreeNoise's. Turn one of them off.")


CORE_FREENOISE_WARNING = (
    "input 'initial_noise': the core context windows on this model have FreeNoise on (the window node's "
    "'freenoise' input; on by default in WanContextWindowsManual and LTXVContextWindows). Core FreeNoise runs after "
    "this node whatever the order of the nodes: it overwrites the noise of every frame after the first window with "
    "shuffled copies of earlier frames. The shared base survives; the residual's frame-to-frame structure (progressive "
    "mode) past the first window does not. Set the window node's freenoise to false to keep this node's noise.")


def _with_model_compression(settings: NoiseSettings, model_patcher) -> NoiseSettings:
    """The settings with the temporal compression of the sampled model's latent format (video.py's table)."""
    fmt = getattr(getattr(model_patcher, "model", None), "latent_format", None)
    if fmt is None or settings.temporal_compression is not None:
        return settings
    return dataclasses.replace(settings, temporal_compression=temporal_compression(fmt))


def make_outer_sample_wrapper(settings: NoiseSettings):
    initial_noise, per_step_noise = settings.initial_noise, settings.per_step_noise

    def outer_sample(executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                     disable_pbar=False, seed=None, latent_shapes=None, **kwargs):
        guider = executor.class_obj
        problem = batch_problem(getattr(guider, "model_options", None), noise)
        if problem is not None:
            raise settings.reporter.error(ParameterError("model", problem))
        if initial_noise and freenoise_active(getattr(guider, "model_patcher", None)):
            settings.reporter.warning(FREENOISE_WARNING)
        if initial_noise and core_freenoise_active(getattr(guider, "model_options", None)):
            settings.reporter.warning(CORE_FREENOISE_WARNING)
        packed = latent_shapes is not None and len(latent_shapes) > 1
        if seed is not None:
            run = _with_model_compression(settings, getattr(guider, "model_patcher", None))
            if initial_noise and bool(noise.ne(0).any()):
                noise = run.apply(noise, seed, latent_shapes=latent_shapes)   # packed AV: the video stream only
            if not packed and per_step_noise and _accepts_noise_sampler(sampler) and noise.shape[run.frame_dim(noise)] > 1:
                sampler = copy.copy(sampler)
                sampler.extra_options = dict(sampler.extra_options)
                sampler.extra_options["noise_sampler"] = CorrelatedNoiseSampler(run, noise, seed)
        return executor(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed,
                        latent_shapes=latent_shapes, **kwargs)

    return outer_sample


def patch(model, settings: NoiseSettings):
    """Clone ``model`` and add the OUTER_SAMPLE wrapper; the input model is not touched."""
    m = model.clone()
    m.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY)
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY,
                           make_outer_sample_wrapper(settings))
    add_concat_guard(m, settings.reporter)   # core windows that cannot cut c_concat (core_windows.py)
    return m
