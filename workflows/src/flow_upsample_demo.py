"""Source of workflows/flow_upsample_demo.json (UI format). Regenerate: .venv/bin/python workflows/src/flow_upsample_demo.py

The weight-free demo (`make demo`): ComfyUI's LoadVideo reads the bundled Big Buck Bunny clip
(workflows/inputs/bbb_flow_demo.mp4, 20 frames at 12.5 fps; runner: --input-dir workflows/inputs),
FlowTemporalUpsample x4 interpolates it to 77 frames at 50 fps with no model weights, and
CreateVideo + SaveVideo write an MP4 to the output folder.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.ui_workflow import write_bundled  # noqa: E402

CLIP = "bbb_flow_demo.mp4"

spec = [
    {"id": 1, "type": "LoadVideo", "widgets": [CLIP, "image"], "pos": [0, 0], "title": "Bundled clip (12.5 fps)"},
    {"id": 2, "type": "GetVideoComponents", "inputs": {"video": (1, 0)}, "pos": [320, 0]},
    # widgets: multiplier, target_fps, source_fps (linked), quality, occlusion,
    #          scene_cut_detection, scene_cut_threshold, chunk_size
    {"id": 3, "type": "CoherentVideo_FlowTemporalUpsample",
     "widgets": [4, 0.0, 12.5, "balanced", "visibility-weighted backward warp", True, 0.35, 4],
     "inputs": {"images": (2, 0), "source_fps": (2, 2)}, "pos": [640, 0], "title": "FlowTemporalUpsample x4"},
    {"id": 4, "type": "CreateVideo", "widgets": [50.0], "inputs": {"images": (3, 0), "fps": (3, 2)}, "pos": [1000, 0]},
    {"id": 5, "type": "SaveVideo", "widgets": ["CoherentVideo/flow_upsample_x4", "auto", "auto"],
     "inputs": {"video": (4, 0)}, "pos": [1320, 0]},
]

if __name__ == "__main__":
    print(write_bundled(spec, "flow_upsample_demo"))
