"""What differs between the ComfyUI versions the pack runs on (0.3.75 ... 0.33.0 tested, 0.38.1 read), in one place.

Every difference is found by feature detection (does the object have the attribute, does the function take the
argument), never by a version string. Each entry names what changed upstream. The README's "Supported ComfyUI"
table lists the same items for users.

- **causal_window_fix** (core context windows, ``comfy/context_windows.py``, 0.33): with the handler's
  ``causal_window_fix`` on (the default), every window that does not start at frame 0 gets the frame before it
  prepended (``window.causal_anchor_index``), so the model sees ``N + 1`` frames while ``window.index_list`` has
  ``N``; the extra frame's output is dropped after the forward. :func:`window_frames` is the frames the model
  really sees, in order; every hook that reads windows uses it.
- **core FreeNoise** (0.33: ``freenoise`` input of ``ContextWindowsManual``; on by default in
  ``WanContextWindowsManual`` / ``LTXVContextWindows``): a ``SAMPLER_SAMPLE`` wrapper shuffles the initial noise
  window by window after every ``OUTER_SAMPLE`` wrapper (ours) made it. :func:`core_freenoise_active`.
- **temporal_downscale_ratio** on latent formats (0.33; 0.3.75 has none): pixel frames per latent frame; the
  pack's own table (``model_patches.video.TEMPORAL_COMPRESSION``) is the fallback for older ComfyUI.
- **fix_empty_latent_channels(model, latent, downscale_ratio_spacial, downscale_ratio_temporal)** (0.33 takes the
  LATENT's ``downscale_ratio_*`` keys and calls the format's ``fix_empty_latent``): :func:`fix_empty_latent`.
- **audio-video latents** (0.33: the audio-video model classes): a LATENT's ``samples`` is a
  ``comfy.nested_tensor.NestedTensor`` of streams (video first, then audio); the sampler packs it flat
  (``comfy.utils.pack_latents``: ``[B, 1, N]``, shapes in ``BaseModel.latent_shapes`` and the ``latent_shapes``
  argument of OUTER_SAMPLE). :func:`latent_streams` gives the streams in either form and puts them back; the
  techniques act on the first (video) stream, ComfyUI's primary modality, and pass the others through untouched.
- **set_step** of ``IndexListContextHandler`` (0.3.75 fails for a latent batch above 1; fixed later): probed, not
  assumed, in :mod:`.core_windows`.
"""
from __future__ import annotations

import inspect


def window_frames(window) -> list[int] | None:
    """The absolute frames of the latent a core context window hands the model, in order: the window's
    ``index_list``, with the causal anchor frame in front when the handler prepended one (``causal_window_fix``,
    ComfyUI 0.33+: ``window.causal_anchor_index``). None when ``window`` is not an index-list window."""
    index = getattr(window, "index_list", None)
    if index is None:
        return None
    frames = [int(i) for i in index]
    anchor = getattr(window, "causal_anchor_index", None)
    if anchor is not None and int(anchor) >= 0:
        frames = [int(anchor)] + frames
    return frames


def core_freenoise_active(model_options: dict | None) -> bool:
    """Core context windows on this model shuffle the initial noise (FreeNoise, ComfyUI 0.33+ ``freenoise``)."""
    handler = (model_options or {}).get("context_handler")
    return bool(getattr(handler, "freenoise", False))


def temporal_downscale_ratio(latent_format) -> int | None:
    """The latent format's own pixel frames per latent frame (ComfyUI 0.33+), or None where it has none."""
    r = getattr(latent_format, "temporal_downscale_ratio", None)
    return int(r) if isinstance(r, (int, float)) and r >= 1 else None


def _takes_downscale_ratios(fn) -> bool:
    try:
        return "downscale_ratio_temporal" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def fix_empty_latent(model, latent: dict):
    """``comfy.sample.fix_empty_latent_channels`` for a LATENT dict, as ComfyUI's own samplers call it: with the
    latent's ``downscale_ratio_spacial`` / ``downscale_ratio_temporal`` where the function takes them (0.33+)."""
    import comfy.sample

    fn = comfy.sample.fix_empty_latent_channels
    if _takes_downscale_ratios(fn):
        return fn(model, latent["samples"], latent.get("downscale_ratio_spacial"), latent.get("downscale_ratio_temporal"))
    return fn(model, latent["samples"])


def latent_streams(x, latent_shapes=None):
    """``(streams, join)``: the streams of a multi-stream (audio-video) latent, the first the video, and a function
    that puts (changed) streams back in ``x``'s form: a NestedTensor LATENT (0.33 ``comfy.nested_tensor``), or the
    sampler's flat pack with its ``latent_shapes`` (``comfy.utils.unpack_latents`` / ``pack_latents``). A one-stream
    latent: ``([x], join)``. Streams passed back unchanged come out bit-identical."""
    if getattr(x, "is_nested", False):
        import comfy.nested_tensor

        return list(x.unbind()), lambda s: comfy.nested_tensor.NestedTensor(list(s))
    if latent_shapes is not None and len(latent_shapes) > 1:
        import comfy.utils

        return list(comfy.utils.unpack_latents(x, latent_shapes)), lambda s: comfy.utils.pack_latents(list(s))[0]
    return [x], lambda s: s[0]


def sampling_latent_shapes(model) -> list | None:
    """The stream shapes of the latent ``model`` (a ``BaseModel``) samples now, when the sampler packed several
    (0.33 sets ``BaseModel.latent_shapes`` in ``CFGGuider.inner_sample``), else None."""
    shapes = getattr(model, "latent_shapes", None)
    return shapes if shapes is not None and len(shapes) > 1 else None
