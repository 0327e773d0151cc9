"""Run state of our hooks: per-sampling-run caches, the per-call sigma and batch layout, sigma ranges.

Official hooks only, on a clone: an ``OUTER_SAMPLE`` wrapper (:func:`run_scope`) gives every sampling run a
fresh :class:`RunState` in ``transformer_options``, and an ``APPLY_MODEL`` wrapper (:func:`call_scope`) reads
the sigma once per model call, so no per-block patch syncs the device.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from comfy.patcher_extension import WrappersMP

from ..attention import BatchLayout, batch_layout
from ..errors import ParameterError
from ..video import percent_sigmas
from .comfy_compat import window_frames

RUN_KEY = "coherent_video_run"          # RunState of the current sampling run
WRITING_KEY = "coherent_video_writing"  # (uid, ReferenceBank) while a reference write pass runs
SIGMA_KEY = "coherent_video_sigma"      # this model call's sigma as a Python float (read once per call)
SAMPLING_KEY = "coherent_video_model_sampling"  # the model_sampling this call samples with
WRAPPER_KEY = "coherent_video.attention"


@dataclass
class RunState:
    """Per-sampling-run caches (never stored on a model). Not a dict, so ComfyUI's per-call copies of
    transformer_options keep pointing at this one object."""

    banks: dict = field(default_factory=dict)     # uid -> ReferenceBank (the current step's)
    anchors: dict = field(default_factory=dict)   # (uid, block, sigma, branches, abs frame) -> (k, v)
    writes: dict = field(default_factory=dict)    # uid -> number of write passes (for tests/bench)
    anchor_sigma: float | None = None             # the step whose anchors are cached
    total_frames: int | None = None               # frames of the whole video (batch of the sampled noise)
    step_input: object = None                     # this step's whole-video model input (cross-stream anchor pass)

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



def install_scopes(m, key: str, outer_sample, apply_model) -> None:
    """Add a run scope (``OUTER_SAMPLE`` wrapper) and a call scope (``APPLY_MODEL`` wrapper) under ``key`` to the
    clone ``m``, once: several patches of one family on a model share them."""
    if not m.get_wrappers(WrappersMP.OUTER_SAMPLE, key):
        m.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, key, outer_sample)
    if not m.get_wrappers(WrappersMP.APPLY_MODEL, key):
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, key, apply_model)


def ensure_run_scope(m) -> None:
    install_scopes(m, WRAPPER_KEY, run_scope, call_scope)


def frame_index_of(options: dict) -> tuple | None:
    """Absolute frame indices of this call: AnimateDiff-Evolved's ``ad_params["sub_idxs"]``, else a
    core ComfyUI context window's frames (batch-dim windows; :func:`.comfy_compat.window_frames`), else None."""
    ad = options.get("ad_params") or {}
    if ad.get("sub_idxs") is not None:
        return tuple(int(i) for i in ad["sub_idxs"])
    win = options.get("context_window")
    if win is not None and getattr(win, "dim", 0) == 0:
        frames = window_frames(win)   # with the causal anchor frame in front where core prepends one
        if frames is not None:
            return tuple(frames)
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


def in_range(sigma: float | None, sigma_start: float, sigma_end: float) -> bool:
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
        per[key] = percent_sigmas(model_sampling, *key)
    return per[key]


@dataclass(frozen=True)
class SigmaRange:
    """The active part ``[start_percent, end_percent]`` of sampling. Resolved against the model_sampling
    sampled with (:func:`sigma_bounds`); ``fallback`` = its ``(sigma_start, sigma_end)`` when patched."""

    start_percent: float | None
    end_percent: float | None
    fallback: tuple[float, float]

    @classmethod
    def of(cls, model, start_percent: float, end_percent: float) -> "SigmaRange":
        ms = model.get_model_object("model_sampling")
        return cls(float(start_percent), float(end_percent), percent_sigmas(ms, start_percent, end_percent))

    def bounds(self, model_sampling) -> tuple[float, float]:
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, self.fallback)

    def contains(self, sigma: float | None, model_sampling) -> bool:
        return in_range(sigma, *self.bounds(model_sampling))


def require_memory(nbytes: int, param: str, what: str, device=None) -> None:
    """Refuse (:class:`ParameterError` on ``param``) before allocating when ``nbytes`` cannot fit in the free
    memory of ``device`` (default CPU)."""
    import comfy.model_management as mm

    free = mm.get_free_memory(device if device is not None else torch.device("cpu"))
    if nbytes > free:
        raise ParameterError(param, f"{what} needs about {nbytes / 2**30:.1f} GiB but only "
                                    f"{free / 2**30:.1f} GiB is free; use fewer or smaller frames")
