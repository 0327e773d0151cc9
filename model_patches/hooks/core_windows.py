"""ComfyUI's core context windows (``comfy/context_windows.py``) as our hooks see them.

Core windows split the model call inside ``calc_cond_batch`` (``model_options["context_handler"]``);
the noise (OUTER_SAMPLE), the clip loop (PREDICT_NOISE) and the post-CFG motion smoothing act outside
it, on the whole video. One known failure: ComfyUI 0.3.75's ``IndexListContextHandler.set_step``
compares the per-sample timestep with the sampling sigmas and raises (a shape error) whenever the latent
batch holds more than one sample: every SD1.5 / AnimateDiff video (frames on the batch axis) and video
models sampled with batch_size > 1. :func:`batch_problem` finds that before sampling, by calling
``set_step`` on a copy of the handler, so a newer ComfyUI that fixed it is not refused.
"""
from __future__ import annotations

import copy

import torch


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


GUARD_KEY = "coherent_video.core_windows_guard"


def add_batch_guard(model_patcher, reporter) -> None:
    """Add an OUTER_SAMPLE wrapper to ``model_patcher`` (a clone of ours) that raises ``reporter``'s error,
    naming the node's ``model`` input, when :func:`batch_problem` finds one, before ComfyUI's own error."""
    import comfy.patcher_extension

    from ..errors import ParameterError

    def outer_sample(executor, noise, *args, **kwargs):
        problem = batch_problem(getattr(executor.class_obj, "model_options", None), noise)
        if problem is not None:
            raise reporter.error(ParameterError("model", problem))
        return executor(noise, *args, **kwargs)

    model_patcher.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, GUARD_KEY)
    model_patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, GUARD_KEY, outer_sample)
