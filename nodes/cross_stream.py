"""CrossStreamAttention (DSDN, arXiv 2308.08316): frames attend to each other in self-attention.

Training-free stand-in for DSDN's content/motion cross-transformer: cross-frame attention to an
anchor frame (Text2Video-Zero), sparse-causal attention (after Tune-A-Video, own keys kept) or a mutual exchange with
the temporal-mean content stream. Math: ``model_patches/attention.py``; hooks: ``hooks/cross_stream.py``.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..model_patches.attention import CROSS_MODES
from ..model_patches.hooks.cross_stream import CrossStreamSettings, patch
from ..model_patches.video import ANCHOR_MODES
from ..model_patches.hooks.blocks import architecture
from ._common import (CATEGORY, NodeInputError, NodeReporter, check, check_model, check_range, node_errors, node_id,
                      search_aliases)
from ._dit import cross_stream_on_dit

NODE = "CrossStreamAttention"


class CrossStreamAttention(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Cross-Stream Attention (DSDN)",
            category=f"{CATEGORY}/attention",
            **search_aliases("dsdn", "cross frame attention", "cross-frame attention", "text2video-zero",
                             "sparse causal", "tune-a-video", "anchor frame", "consistent", "temporal consistency",
                             "deflicker"),
            description="Makes an image model's frames coherent by extending each frame's self-attention keys/values "
                        "with other frames' tokens: an anchor frame (Text2Video-Zero cross-frame attention, DSDN's "
                        "content stream), the first + previous frame (sparse-causal), or a mutual exchange with the "
                        "temporal-mean content stream. Frames are the batch axis.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.x/SD2/SDXL U-Net, or a Wan 2.1/2.2, HunyuanVideo 1.5, LTX-Video or LTX-2 model: "
                                                "under core context windows every window then also attends to the "
                                                "anchor frame (anchor) or the first and previous frames "
                                                "(sparse_causal) of earlier windows. It is cloned; the input model is "
                                                "not changed."),
                io.Combo.Input("mode", options=list(CROSS_MODES), default="anchor",
                               tooltip="anchor: every frame also attends to the anchor frame. sparse_causal: to the first "
                                       "and the previous frame. mutual: to the temporal mean of all frames (content "
                                       "stream), recomputed from the frames at every block."),
                io.Combo.Input("anchor", options=list(ANCHOR_MODES), default="first",
                               tooltip="anchor mode: the anchor frame - first (frame 0), center ((frames-1)//2), last "
                                       "(frames-1) or index (anchor_index)."),
                io.Int.Input("anchor_index", default=0, min=0, max=4096,
                             tooltip="anchor = index: the anchor's absolute frame index (must be inside the frames)."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="0 = the model unchanged (no patch installed), 1 = full cross-frame attention, in between "
                                       "a blend of the two outputs."),
                io.Boolean.Input("input_blocks", default=True, tooltip="Patch the U-Net's input (down) blocks."),
                io.Boolean.Input("middle_block", default=True, tooltip="Patch the U-Net's middle block."),
                io.Boolean.Input("output_blocks", default=True, tooltip="Patch the U-Net's output (up) blocks."),
                io.Int.Input("min_level", default=0, min=0, max=8,
                             tooltip="Only blocks at this resolution level or deeper: 0 = all, 1 = skip the "
                                     "latent-resolution blocks (the most expensive), 2 = also skip half resolution..."),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Start of the active part of sampling (0 = first step)."),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.001,
                               tooltip="End of the active part of sampling (1 = last step)."),
            ],
            outputs=[io.Model.Output(tooltip="A patched clone of the model.")],
        )

    @classmethod
    def execute(cls, model, mode="anchor", anchor="first", anchor_index=0, strength=1.0, input_blocks=True,
                middle_block=True, output_blocks=True, min_level=0, start_percent=0.0, end_percent=1.0) -> io.NodeOutput:
        check_model(model, NODE)
        check(mode in CROSS_MODES, NODE, "mode", f"must be one of {CROSS_MODES}, got {mode!r}")
        check(anchor in ANCHOR_MODES, NODE, "anchor", f"must be one of {ANCHOR_MODES}, got {anchor!r}")
        if not isinstance(anchor_index, int) or anchor_index < 0:
            raise NodeInputError(NODE, "anchor_index", f"must be a frame index >= 0, got {anchor_index!r}")
        check(isinstance(min_level, int) and min_level >= 0, NODE, "min_level", f"must be >= 0, got {min_level!r}")
        for name, value in (("strength", strength), ("start_percent", start_percent), ("end_percent", end_percent)):
            check_range(value, 0.0, 1.0, NODE, name)
        check(start_percent <= end_percent, NODE, "start_percent",
              f"must not be after end_percent ({start_percent} > {end_percent})")
        check(input_blocks or middle_block or output_blocks, NODE, "input_blocks",
              "no block section selected; enable input_blocks, middle_block or output_blocks")
        if architecture(model) == "dit":  # video DiTs: cross-window anchor attention under core context windows
            return io.NodeOutput(cross_stream_on_dit(NODE, model, mode, anchor, int(anchor_index), strength, input_blocks,
                                                     middle_block, output_blocks, start_percent, end_percent,
                                                     min_level))
        settings = CrossStreamSettings(
            mode=mode, anchor=anchor, anchor_index=int(anchor_index), strength=float(strength),
            input_blocks=bool(input_blocks), middle_block=bool(middle_block), output_blocks=bool(output_blocks),
            min_level=int(min_level), start_percent=float(start_percent), end_percent=float(end_percent),
            reporter=NodeReporter(NODE))
        with node_errors(NODE):
            return io.NodeOutput(patch(model, settings))  # strength 0: a plain clone, nothing installed


NODES = [CrossStreamAttention]
