"""PadConditioningWidth: zero-pad (or cut) a CONDITIONING's feature width, so a model can take a text encoder of
another width.

What it is for: the pack's text-to-video demo (``make demo-video``) encodes its prompts with a CLIP-L (768 wide)
and feeds a Wan 2.1 DiT, whose text input ComfyUI fixes at UMT5-XXL's 4096. The demo models were trained with this
exact padding (their text-embedding weights for features 768.. are zero), so there it changes nothing. It is NOT a
way to run a real Wan model with CLIP: a model trained on UMT5-XXL gets zeros where it expects UMT5's features.
"""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ._common import CATEGORY, check, check_conditioning, node_id, search_aliases

NODE = "PadConditioningWidth"


def pad_width(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` with its last axis zero-padded (or cut) to ``width``."""
    pad = width - t.shape[-1]
    return torch.nn.functional.pad(t, (0, pad)) if pad > 0 else t[..., :width]


class PadConditioningWidth(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Pad Conditioning Width (text encoder width)",
            category=f"{CATEGORY}/utils",
            **search_aliases("pad conditioning", "text width", "conditioning width", "clip to umt5"),
            description="Zero-pads (or cuts) every conditioning tensor's last axis to a width, so the pack's small "
                        "demonstration Wan models (trained with a 768-wide CLIP-L padded to 4096) take CLIPTextEncode "
                        "output. Exact for those models; not a substitute for UMT5-XXL on a real Wan model.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="The CONDITIONING from a text encoder (CLIPTextEncode)."),
                io.Int.Input("width", default=4096, min=1, max=65536,
                             tooltip="The feature width the model's text input takes: 4096 for Wan 2.1/2.2 (UMT5-XXL's). "
                                     "Narrower input is zero-padded on the right, wider input is cut."),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning",
                                            tooltip="The same conditioning, every tensor padded or cut to the width; "
                                                    "pooled outputs and options unchanged.")],
        )

    @classmethod
    def execute(cls, conditioning, width: int) -> io.NodeOutput:
        check_conditioning(conditioning, NODE, "conditioning")
        check(isinstance(width, int) and not isinstance(width, bool) and width >= 1, NODE, "width", f"must be a positive integer, got {width!r}")
        return io.NodeOutput([[pad_width(t, width), dict(opts)] for t, opts in conditioning])


NODES = [PadConditioningWidth]
