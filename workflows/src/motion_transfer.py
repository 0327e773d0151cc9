"""Source of workflows/motion_transfer.json (UI format). Regenerate: .venv/bin/python workflows/src/motion_transfer.py

Motion transfer in IMAGE space (no VAE, no model weights): clip A gives the content (its first
frame), clip B gives the motion (its adjacent-frame differences); MotionCombiner rebuilds a video
with A's look and B's motion. Clips are read from ComfyUI's input folder (runner: --input-dir).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.ui_workflow import write_bundled  # noqa: E402

CLIP_A = "bbb_flow_demo.mp4"  # the bundled demo clip (flow helper), bunny stretching
CLIP_B = "bbb_emerge.mp4"
W, H, FRAMES = 256, 144, 16

spec = [
    {"id": 1, "type": "LoadVideo", "widgets": [CLIP_A, "image"], "pos": [0, 0], "title": "Clip A (content)"},
    {"id": 2, "type": "GetVideoComponents", "inputs": {"video": (1, 0)}, "pos": [300, 0]},
    {"id": 3, "type": "ImageFromBatch", "widgets": [0, FRAMES], "inputs": {"image": (2, 0)}, "pos": [600, 0]},
    {"id": 4, "type": "ImageScale", "widgets": ["bilinear", W, H, "center"], "inputs": {"image": (3, 0)},
     "pos": [900, 0], "title": "A: same size as B"},
    {"id": 5, "type": "LoadVideo", "widgets": [CLIP_B, "image"], "pos": [0, 350], "title": "Clip B (motion)"},
    {"id": 6, "type": "GetVideoComponents", "inputs": {"video": (5, 0)}, "pos": [300, 350]},
    {"id": 7, "type": "ImageFromBatch", "widgets": [0, FRAMES], "inputs": {"image": (6, 0)}, "pos": [600, 350]},
    {"id": 8, "type": "ImageScale", "widgets": ["bilinear", W, H, "center"], "inputs": {"image": (7, 0)},
     "pos": [900, 350], "title": "B: same size as A"},
    {"id": 9, "type": "CoherentVideo_MotionDecomposer", "widgets": ["first frame"], "inputs": {"video": (4, 0)},
     "pos": [1200, 0], "title": "A -> content"},
    {"id": 10, "type": "CoherentVideo_MotionDecomposer", "widgets": ["first frame"], "inputs": {"video": (8, 0)},
     "pos": [1200, 350], "title": "B -> motion"},
    {"id": 11, "type": "CoherentVideo_MotionSmooth", "widgets": ["gaussian", 1.0, 1.0, 0.5, 0, -1], "inputs": {"motion": (10, 2)},
     "pos": [1500, 350], "title": "de-jitter B's motion"},
    {"id": 12, "type": "CoherentVideo_MotionCombiner", "inputs": {"content": (9, 1), "motion": (11, 0)}, "pos": [1800, 100],
     "title": "A's content + B's motion"},
    {"id": 13, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/motion_transfer", 8.0, False, 90, "default"],
     "inputs": {"images": (12, 1)}, "pos": [2100, 100]},
]

if __name__ == "__main__":
    print(write_bundled(spec, "motion_transfer"))
