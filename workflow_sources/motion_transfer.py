"""Template "Motion transfer between two clips - no weights": in IMAGE space, with no VAE and no weights, clip A
gives the content (its first frame) and clip B the motion (its adjacent-frame differences); MotionCombiner rebuilds
a video with A's look and B's motion. Both clips are bundled with the pack.
Regenerate: .venv/bin/python -m workflow_sources.motion_transfer
"""
from workflow_sources._template import write

NAME = "Motion transfer between two clips - no weights"
W, H, FRAMES = 256, 144, 16

spec = [
    {"id": 1, "type": "CoherentVideo_LoadBundledClip", "widgets": ["bbb_flow_demo.mp4"], "title": "Clip A (content)"},
    {"id": 2, "type": "GetVideoComponents", "inputs": {"video": (1, 0)}},
    {"id": 3, "type": "ImageFromBatch", "widgets": [0, FRAMES], "inputs": {"image": (2, 0)}},
    {"id": 4, "type": "ImageScale", "widgets": ["bilinear", W, H, "center"], "inputs": {"image": (3, 0)},
     "title": "A: same size as B"},
    {"id": 5, "type": "CoherentVideo_LoadBundledClip", "widgets": ["bbb_emerge.mp4"], "title": "Clip B (motion)"},
    {"id": 6, "type": "GetVideoComponents", "inputs": {"video": (5, 0)}},
    {"id": 7, "type": "ImageFromBatch", "widgets": [0, FRAMES], "inputs": {"image": (6, 0)}},
    {"id": 8, "type": "ImageScale", "widgets": ["bilinear", W, H, "center"], "inputs": {"image": (7, 0)},
     "title": "B: same size as A"},
    {"id": 9, "type": "CoherentVideo_MotionDecomposer", "widgets": ["first frame"], "inputs": {"video": (4, 0)},
     "title": "A -> content"},
    {"id": 10, "type": "CoherentVideo_MotionDecomposer", "widgets": ["first frame"], "inputs": {"video": (8, 0)},
     "title": "B -> motion"},
    {"id": 11, "type": "CoherentVideo_MotionSmooth", "widgets": ["gaussian", 1.0, 1.0, 0.5, 0, -1],
     "inputs": {"motion": (10, 2)}, "title": "de-jitter B's motion"},
    {"id": 12, "type": "CoherentVideo_MotionCombiner", "inputs": {"content": (9, 1), "motion": (11, 0)},
     "title": "A's content + B's motion"},
    {"id": 13, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/motion_transfer", 8.0, False, 90, "default"],
     "inputs": {"images": (12, 1)}},
]
GROUPS = [
    {"title": "1. Clip A gives the look", "note": "16 frames of a bundled clip, resized to 256x144.", "at": (0, 0),
     "cols": [[1, 2], [3, 4]]},
    {"title": "2. Clip B gives the motion", "note": "The same for the second bundled clip.", "at": (0, 640),
     "cols": [[5, 6], [7, 8]]},
    {"title": "3. Split into content and motion", "note": "Content = A's first frame; motion = B's frame differences, smoothed.",
     "at": (840, 0), "cols": [[9, 10, 11]]},
    {"title": "4. Recombine and save", "note": "A's first frame moved by B's motion, saved as an animated WebP.",
     "at": (1260, 0), "cols": [[12, 13]]},
]

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS))
