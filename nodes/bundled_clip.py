"""Load one of the short clips bundled with the pack (``clips/``), so the weight-free templates run on a fresh
ComfyUI with an empty ``input/`` folder: nothing to copy, nothing downloaded."""
from __future__ import annotations

from pathlib import Path

from comfy_api.latest import InputImpl, io

from ._common import CATEGORY, check, node_id, search_aliases

CLIPS_DIR = Path(__file__).resolve().parent.parent / "clips"
NODE = "LoadBundledClip"


def bundled_clips() -> list[str]:
    return sorted(p.name for p in CLIPS_DIR.glob("*.mp4"))


class LoadBundledClip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Load Bundled Clip (CoherentVideo)",
            category=CATEGORY,
            **search_aliases("load video", "example clip", "demo clip", "sample video", "big buck bunny"),
            description="One of the short Big Buck Bunny clips shipped in the pack's clips/ folder (CC BY 3.0, "
                        "Blender Foundation), for the weight-free templates. Use ComfyUI's Load Video for your own clips.",
            inputs=[io.Combo.Input("clip", options=bundled_clips(),
                                   tooltip="A clip from the pack's clips/ folder (not ComfyUI's input/ folder).")],
            outputs=[io.Video.Output(tooltip="The clip as a VIDEO (frames, frame rate and audio via Get Video Components).")],
        )

    @classmethod
    def execute(cls, clip: str) -> io.NodeOutput:
        check(clip in bundled_clips(), NODE, "clip", f"{clip!r} is not a bundled clip; choose one of {bundled_clips()}")
        return io.NodeOutput(InputImpl.VideoFromFile(str(CLIPS_DIR / clip)))


NODES = [LoadBundledClip]
