"""Template "Frame interpolation x4 - no weights" (``make demo``): the bundled Big Buck Bunny clip (20 frames at
12.5 fps) interpolated x4 to 77 frames at 50 fps by FlowTemporalUpsample with no model weights, written as an MP4.
Regenerate: .venv/bin/python -m workflow_sources.flow_upsample_demo
"""
from workflow_sources._template import write

NAME = "Frame interpolation x4 - no weights"

spec = [
    {"id": 1, "type": "CoherentVideo_LoadBundledClip", "widgets": ["bbb_flow_demo.mp4"], "title": "Bundled clip (12.5 fps)"},
    {"id": 2, "type": "GetVideoComponents", "inputs": {"video": (1, 0)}},
    # widgets: multiplier, target_fps, source_fps (linked), quality, occlusion,
    #          scene_cut_detection, scene_cut_threshold, chunk_size
    {"id": 3, "type": "CoherentVideo_FlowTemporalUpsample",
     "widgets": [4, 0.0, 12.5, "balanced", "visibility-weighted backward warp", True, 0.35, 4],
     "inputs": {"images": (2, 0), "source_fps": (2, 2)}, "title": "Flow Temporal Upsample x4"},
    {"id": 4, "type": "CreateVideo", "widgets": [50.0], "inputs": {"images": (3, 0), "fps": (3, 2)}},
    {"id": 5, "type": "SaveVideo", "widgets": ["CoherentVideo/flow_upsample_x4", "auto", "auto"],
     "inputs": {"video": (4, 0)}},
]
GROUPS = [
    {"title": "1. Load", "note": "A clip bundled with the pack: nothing to copy into input/.", "at": (0, 0),
     "cols": [[1, 2]]},
    {"title": "2. Interpolate", "note": "Optical flow makes 3 new frames between each pair; no weights.",
     "at": (420, 0), "cols": [[3]]},
    {"title": "3. Save", "note": "77 frames at 50 fps, saved as an MP4 in output/.", "at": (840, 0),
     "cols": [[4, 5]]},
]

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS))
