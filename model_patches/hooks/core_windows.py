"""ComfyUI's core context windows (``comfy/context_windows.py``) as our hooks see them.

Core windows split the model call inside ``calc_cond_batch`` (``model_options["context_handler"]``);
the noise (OUTER_SAMPLE), the clip loop (PREDICT_NOISE) and the post-CFG motion smoothing act outside
it, on the whole video. One known failure: ComfyUI 0.3.75's ``IndexListContextHandler.set_step``
compares the per-sample timestep with the sampling sigmas and raises (a shape error) whenever the latent
batch holds more than one sample: every SD1.5 / AnimateDiff video (frames on the batch axis) and video
models sampled with batch_size > 1. :func:`batch_problem` finds that before sampling, by calling
``set_step`` on a copy of the handler, so a newer ComfyUI that fixed it is not refused.

A second one: ComfyUI 0.3.75's ``IndexListContextHandler.get_resized_cond`` cuts only conditioning with fewer
dimensions than the window's axis, so a 5-D ``c_concat`` (the image + mask channels an image-to-video model
concatenates to its latent) reaches the model at full length beside the window's latent and ComfyUI fails
(``Sizes of tensors must match`` in ``BaseModel._apply_model``). 0.33 cuts it. :func:`concat_problem` finds
it at the model call, from the shapes ComfyUI hands the model (behaviour, not version).
"""
from __future__ import annotations

import copy

import torch

from comfy.patcher_extension import WrappersMP

from ..errors import ParameterError


def batch_problem(model_options: dict, x: torch.Tensor) -> str | None:
    """Why core context windows on this model cannot sample ``x``, or None."""
    handler = (model_options or {}).get("context_handler")
    if handler is None or not hasattr(handler, "set_step") or x.ndim < 1 or x.shape[0] <= 1:
        return None
    dim, length = getattr(handler, "dim", 0), getattr(handler, "context_length", 0)
    if dim >= x.ndim or x.shape[dim] <= length:
        return None  # windows not used for this latent
    b = x.shape[0]
    sigmas = torch.linspace(1.0, 0.0, b + 2)  # a length that never broadcasts against the batch
    try:
        copy.copy(handler).set_step(sigmas[1].repeat(b), {"transformer_options": {"sample_sigmas": sigmas}})
    except Exception:  # noqa: BLE001  (the probe's failure is the finding)
        what = ("frames on the batch axis (an image model sampled as a frame batch, as with AnimateDiff)" if dim == 0 else
                f"batch size {b}")
        return (f"ComfyUI's core context windows ({type(handler).__name__}, dim {dim}) cannot sample a latent "
                f"with {what} in this ComfyUI version: its set_step compares the {b} per-sample timesteps with "
                f"the sigmas and fails for any batch above 1. Use AnimateDiff-Evolved's context options for "
                f"image-model videos, batch size 1 for video models, or a newer ComfyUI")
    return None


def concat_problem(x, c_concat, transformer_options: dict | None) -> str | None:
    """Why this model call under a core context window cannot run: the concat conditioning was not cut to the
    window (its frame count differs from the window latent's), or None."""
    window = (transformer_options or {}).get("context_window")
    if window is None or not torch.is_tensor(x) or not torch.is_tensor(c_concat) or c_concat.ndim != x.ndim:
        return None
    dim = getattr(window, "dim", 2)
    if dim >= x.ndim or dim == 0 or c_concat.shape[dim] == x.shape[dim]:
        return None
    return (f"ComfyUI's core context windows in this ComfyUI version do not cut the model's concat conditioning "
            f"(c_concat: the image and mask channels an image-to-video model takes beside its latent, "
            f"{c_concat.shape[dim]} frames) to the window ({x.shape[dim]} frames), so ComfyUI itself cannot sample "
            f"this model in core context windows (it fails with 'Sizes of tensors must match'). A newer ComfyUI "
            f"(0.33) cuts it; or make the long video clip by clip (iterative reuse sampling) without core windows")


GUARD_KEY = "coherent_video.core_windows_guard"


def add_concat_guard(model_patcher, reporter, input_name: str = "model") -> None:
    """Add an APPLY_MODEL wrapper to ``model_patcher`` (a clone of ours) that raises ``reporter``'s error, naming
    the node's ``input_name`` input (the one ``model_patcher`` was cloned from), when :func:`concat_problem` finds
    one, before ComfyUI's own error."""
    import comfy.patcher_extension

    from ..errors import ParameterError

    def apply_model(executor, x, t, c_concat=None, *args, **kwargs):
        to = kwargs.get("transformer_options", args[2] if len(args) > 2 else None)
        problem = concat_problem(x, c_concat, to)
        if problem is not None:
            raise reporter.error(ParameterError(input_name, problem))
        return executor(x, t, c_concat, *args, **kwargs)

    model_patcher.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, GUARD_KEY)
    model_patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, GUARD_KEY, apply_model)


def add_batch_guard(model_patcher, reporter) -> None:
    """Add an OUTER_SAMPLE wrapper to ``model_patcher`` (a clone of ours) that raises ``reporter``'s error,
    naming the node's ``model`` input, when :func:`batch_problem` finds one, before ComfyUI's own error; and the
    concat guard (:func:`add_concat_guard`)."""
    import comfy.patcher_extension

    from ..errors import ParameterError

    add_concat_guard(model_patcher, reporter)

    def outer_sample(executor, noise, *args, **kwargs):
        problem = batch_problem(getattr(executor.class_obj, "model_options", None), noise)
        if problem is not None:
            raise reporter.error(ParameterError("model", problem))
        return executor(noise, *args, **kwargs)

    model_patcher.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, GUARD_KEY)
    model_patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, GUARD_KEY, outer_sample)


# --- core windows that cannot window a model (the family's adapter says why) ---------------------------------
class CoreWindowsGuard:
    """``OUTER_SAMPLE`` wrapper: where the sampled model has core context windows
    (``model_options["context_handler"]``) that cannot window it (``adapter.core_windows_unsupported``), a
    :class:`ParameterError` on ``model`` with the reason (through ``reporter``, which names the node), before any
    step runs."""

    def __init__(self, adapter, reporter):
        self.adapter, self.reporter = adapter, reporter

    def __repr__(self):
        return f"CoreWindowsGuard({self.adapter.name})"

    def __call__(self, executor, *args, **kwargs):
        guider = executor.class_obj
        if guider.model_options.get("context_handler") is not None:
            why = self.adapter.core_windows_unsupported(guider.model_patcher.model, guider.model_options.get("context_handler"))
            if why:
                raise self.reporter.error(ParameterError("model", why))
        return executor(*args, **kwargs)


def ensure_windows_guard(m, adapter, key: str, reporter) -> None:
    """Install :class:`CoreWindowsGuard` under ``key`` on the clone ``m`` (and raise now where ``m`` already has
    core windows that cannot window it)."""
    if m.model_options.get("context_handler") is not None:
        why = adapter.core_windows_unsupported(m.model, m.model_options.get("context_handler"))
        if why:
            raise reporter.error(ParameterError("model", why))
    m.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, key, CoreWindowsGuard(adapter, reporter))
