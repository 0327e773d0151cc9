"""StreamContextWindows: ComfyUI's context windows for video models whose latent packs several streams with their
time on different axes (MiniMax H3: video + audio), which core's context-window nodes cannot window.

The handler is core's own (``comfy.context_windows``), so the pack's cross-window anchor attention
(CrossStreamAttention), any other pack's window callbacks and core's schedules and fuse weights behave as under
core's nodes; only each stream is cut on its own time axis (the family's adapter says which) and the video window
is mapped to the other streams by time. Hooks: ``model_patches/hooks/stream_windows.py``; math:
``model_patches/windows.py``.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..model_patches.hooks.adapters import adapter_for
from ..model_patches.hooks.stream_windows import install, make_handler, unavailable
from ._common import CATEGORY, check, check_model, node_id, search_aliases

NODE = "StreamContextWindows"


def _core(name: str, fallback):
    try:
        import comfy.context_windows as cw

        return getattr(cw, name)
    except (ImportError, AttributeError):
        return fallback


class _Schedules:
    STATIC_STANDARD, UNIFORM_STANDARD, UNIFORM_LOOPED, BATCHED = ("standard_static", "standard_uniform",
                                                                  "looped_uniform", "batched")


class _Fuse:
    PYRAMID = "pyramid"
    LIST_STATIC = ["pyramid", "relative", "flat", "overlap-linear"]


class StreamContextWindows(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        sch, fuse = _core("ContextSchedules", _Schedules), _core("ContextFuseMethods", _Fuse)
        schedules = [sch.STATIC_STANDARD, sch.UNIFORM_STANDARD, sch.UNIFORM_LOOPED, sch.BATCHED]
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Context Windows (audio + video streams)",
            category=f"{CATEGORY}/sampling",
            **search_aliases("context windows", "minimax h3 context windows", "audio video windows", "long video"),
            description="Context windows over latent time for video models whose latent packs video and audio "
                        "(MiniMax H3), which core's context-window nodes cannot window: each stream is cut on its "
                        "own time axis, the video window mapped to the audio by time. Otherwise ComfyUI's own "
                        "windows (schedules, fuse weights, causal anchor frame), so CrossStreamAttention's "
                        "cross-window anchor acts in them. On a video-only model it is core's windows on dim 2.",
            inputs=[
                io.Model.Input("model", tooltip="A video DiT (MiniMax H3, LTX-2, Wan, HunyuanVideo, LTXV). Not "
                                                "changed: the output is a clone."),
                io.Int.Input("context_length", default=10, min=1, max=4096,
                             tooltip="Window length in LATENT frames (MiniMax H3: 5 latent frames = 17 pixel frames "
                                     "at 24 fps, so 10 = 34 frames). Latents no longer than this are sampled "
                                     "whole."),
                io.Int.Input("context_overlap", default=3, min=0, max=4095,
                             tooltip="Latent frames shared by neighbouring windows; fused with fuse_method."),
                io.Combo.Input("context_schedule", options=schedules, default=sch.STATIC_STANDARD,
                               tooltip="How windows are laid out per step (ComfyUI's own schedules)."),
                io.Combo.Input("fuse_method", options=list(fuse.LIST_STATIC), default=fuse.PYRAMID,
                               tooltip="How overlapping windows' predictions are weighted (ComfyUI's own)."),
                io.Boolean.Input("causal_window_fix", default=True,
                                 tooltip="ComfyUI's causal fix: every window after the first also sees the latent "
                                         "frame before it (dropped from its output)."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model that samples in these context windows (video "
                                             "and audio cut on their own time axes).")],
        )

    @classmethod
    def execute(cls, model, context_length=10, context_overlap=3, context_schedule="standard_static",
                fuse_method="pyramid", causal_window_fix=True) -> io.NodeOutput:
        check_model(model, NODE)
        for name, v, lo in (("context_length", context_length, 1), ("context_overlap", context_overlap, 0)):
            check(isinstance(v, int) and not isinstance(v, bool) and v >= lo, NODE, name,
                  f"must be an integer >= {lo}, got {v!r}")
        check(context_overlap < context_length, NODE, "context_overlap",
              f"must be shorter than context_length ({context_overlap} >= {context_length})")
        sch, fuse_m = _core("ContextSchedules", _Schedules), _core("ContextFuseMethods", _Fuse)
        schedules = [sch.STATIC_STANDARD, sch.UNIFORM_STANDARD, sch.UNIFORM_LOOPED, sch.BATCHED]
        check(context_schedule in schedules, NODE, "context_schedule",
              f"must be one of ComfyUI's schedules {schedules}, got {context_schedule!r}")
        check(fuse_method in list(fuse_m.LIST_STATIC), NODE, "fuse_method",
              f"must be one of ComfyUI's fuse methods {list(fuse_m.LIST_STATIC)}, got {fuse_method!r}")
        check(isinstance(causal_window_fix, bool), NODE, "causal_window_fix",
              f"must be true or false, got {causal_window_fix!r}")
        why = unavailable()
        check(why is None, NODE, "model", f"{why}. Use ComfyUI's own context-window nodes on this version")
        adapter = adapter_for(model)
        check(adapter is not None and adapter.kind == "dit", NODE, "model",
              "not a video DiT this pack knows (MiniMax H3, LTX-2, Wan, HunyuanVideo, LTXV); an image model samples "
              "its frames on the batch axis: use ComfyUI's Context Windows (Manual) with dim 0 or AnimateDiff's "
              "context options")
        import comfy.context_windows as cw

        schedule = cw.get_matching_context_schedule(context_schedule)
        fuse = cw.get_matching_fuse_method(fuse_method)
        handler = make_handler(adapter.stream_time_axes, context_schedule=schedule, fuse_method=fuse,
                               context_length=context_length, context_overlap=context_overlap, dim=2,
                               causal_window_fix=bool(causal_window_fix))
        m = model.clone()
        install(m, handler)
        return io.NodeOutput(m)


NODES = [StreamContextWindows]
