"""Context windows over a packed multi-stream latent (video + audio) whose streams keep time on different axes.

ComfyUI 0.33's core windows (``comfy.context_windows.IndexListContextHandler``) window a packed audio + video
latent (``latent_shapes`` with more than one stream) by cutting EVERY stream on the handler's ``dim`` and asking the
model class for the map from a video window to the other streams (``map_context_window_to_modalities``, which only
LTX-2 has). A stream whose time is on another axis (MiniMax H3's audio ``[1, 32, 2, T_a]``: time last) cannot be
windowed so, and H3 has no map.

:class:`StreamContextHandler` is core's handler (its schedules, fuse weights, causal anchor frame, conditioning
slicing and callbacks, so our cross-window anchor attention and any other pack's window callbacks see ordinary core
windows) with two changes:

- each stream is moved so its time axis is the handler's ``dim`` while the windows are cut and fused, and moved
  back for every model call (the model sees its own layout; ``latent_shapes`` in the call's conditioning says so)
  and for the result; the time axes come from the family's adapter (``stream_time_axes``);
- the video window's span in every other stream is :func:`model_patches.windows.stream_window` (proportional to
  the stream lengths), not the model class's map.

A single-stream latent, or one whose streams all keep time on ``dim``, goes to core's handler unchanged.
Found by behaviour, not version: :func:`unavailable` says why this ComfyUI cannot (no multi-stream core windows).
"""
from __future__ import annotations

import dataclasses

from ..windows import moved_shape, stream_window


def unavailable() -> str | None:
    """Why this ComfyUI's core context windows cannot carry the multi-stream handler, or None."""
    try:
        import comfy.context_windows as cw
    except ImportError:
        return "this ComfyUI has no core context windows (comfy.context_windows)"
    need = [n for n in ("WindowingState", "IndexListContextHandler", "IndexListContextWindow") if not hasattr(cw, n)]
    if not need and not hasattr(cw.IndexListContextHandler, "_build_window_state"):
        need = ["IndexListContextHandler._build_window_state"]
    if need:
        return (f"this ComfyUI's core context windows have no multi-stream (audio + video) windowing "
                f"(comfy.context_windows lacks {', '.join(need)}; ComfyUI 0.33 has it)")
    return None


def _with_shapes(cond, shapes):
    """A cond list whose ``latent_shapes`` model condition is ``shapes`` (the dicts copied, never changed)."""
    import comfy.conds

    if cond is None:
        return None
    out = []
    for d in cond:
        mc = d.get("model_conds", {})
        if "latent_shapes" in mc:
            d = {**d, "model_conds": {**mc, "latent_shapes": comfy.conds.CONDConstant(list(shapes))}}
        out.append(d)
    return out


def _shapes_of(conds):
    for cond in conds:
        for d in cond or ():
            ls = d.get("model_conds", {}).get("latent_shapes")
            if ls is not None:
                return ls.cond
    return None


def _moved(packed, shapes, axes, to_dim: bool, dim: int):
    """``packed`` (streams of ``shapes``) repacked with each stream's time axis moved to ``dim`` (``to_dim``) or
    back from it; returns (packed, the new shapes)."""
    import comfy.utils

    parts = comfy.utils.unpack_latents(packed, shapes)
    parts = [p.movedim(a, dim) if to_dim else p.movedim(dim, a) for p, a in zip(parts, axes)]
    return comfy.utils.pack_latents(parts)


def make_handler(stream_time_axes, **core_kwargs):
    """A :class:`StreamContextHandler` (built here: its base class is this ComfyUI's own handler)."""
    import comfy.context_windows as cw

    class _StreamWindowingState(cw.WindowingState):
        def prepare_window(self, window, model):
            if not self.is_multimodal:
                return window
            primary = self.latents[0].size(self.dim)
            streams = {}
            for i in range(1, len(self.latents)):
                total = self.latents[i].size(self.dim)
                streams[i] = cw.IndexListContextWindow(
                    stream_window(window.index_list, primary, total), dim=self.dim, total_frames=total,
                    context_overlap=max(round(window.context_overlap * total / primary), 0))
            return cw.IndexListContextWindow(window.index_list, dim=self.dim, total_frames=primary,
                                             modality_windows=streams, context_overlap=window.context_overlap)

    class StreamContextHandler(cw.IndexListContextHandler):
        cuts_each_stream_on_its_time_axis = True

        def __init__(self, axes_of, **kw):
            super().__init__(**kw)
            self.stream_time_axes = axes_of

        def _build_window_state(self, x_in, conds, model):
            st = super()._build_window_state(x_in, conds, model)
            return _StreamWindowingState(**{f.name: getattr(st, f.name) for f in dataclasses.fields(st)})

        def execute(self, calc_cond_batch, model, conds, x_in, timestep, model_options):
            shapes = _shapes_of(conds)
            axes = None
            if shapes is not None and len(shapes) > 1:
                axes = [a % len(s) for a, s in zip(self.stream_time_axes(shapes), shapes)]
            if axes is None or all(a == self.dim for a in axes):
                return super().execute(calc_cond_batch, model, conds, x_in, timestep, model_options)
            dim = self.dim
            moved = [moved_shape(s, a, dim) for s, a in zip(shapes, axes)]
            x_moved, _ = _moved(x_in, shapes, axes, True, dim)

            def model_call(m, sub_conds, sub_x, sub_t, options):
                own, own_shapes = _moved(sub_x, _shapes_of(sub_conds) or moved, axes, False, dim)
                out = calc_cond_batch(m, [_with_shapes(c, own_shapes) for c in sub_conds], own, sub_t, options)
                return [_moved(o, own_shapes, axes, True, dim)[0] for o in out]

            out = super().execute(model_call, model, [_with_shapes(c, moved) for c in conds], x_moved, timestep,
                                  model_options)
            return [_moved(o, moved, axes, False, dim)[0] for o in out]

    return StreamContextHandler(stream_time_axes, **core_kwargs)


def install(model_patcher, handler) -> None:
    """Put ``handler`` on the clone ``model_patcher`` as core's context-window nodes do (``context_handler`` and
    core's per-window memory estimate)."""
    import comfy.context_windows as cw

    model_patcher.model_options["context_handler"] = handler
    if hasattr(cw, "create_prepare_sampling_wrapper"):
        cw.create_prepare_sampling_wrapper(model_patcher)
