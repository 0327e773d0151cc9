"""Template "Wan 2.1 long video in context windows with anchor attention": Wan 2.1 T2V 1.3B samples 161 frames in
core context windows (WanContextWindowsManual, 81 frames each); CrossStreamAttention makes every window's
self-attention also attend to the first latent frame, cached from the first window at each step, against seams and
colour drift between windows. Needs the Wan 2.1 T2V 1.3B files.
Regenerate: .venv/bin/python -m workflow_sources.wan_long_video_anchor
"""
from workflow_sources._template import UMT5_XXL_FP8, WAN21_T2V_1_3B, WAN21_VAE, build, write  # noqa: F401

NAME = "Wan 2.1 long video in context windows with anchor attention"

# WanContextWindowsManual widgets: context_length, context_overlap (pixel frames), context_schedule, context_stride,
# closed_loop, fuse_method. CrossStreamAttention widgets: mode, anchor, anchor_index, strength, input_blocks,
# middle_block, output_blocks, min_level, start_percent, end_percent (on Wan: first/middle/last third of the blocks).
spec = [
    {"id": 1, "type": "UNETLoader", "widgets": [WAN21_T2V_1_3B["name"], "default"]},
    {"id": 2, "type": "CLIPLoader", "widgets": [UMT5_XXL_FP8["name"], "wan", "default"]},
    {"id": 3, "type": "VAELoader", "widgets": [WAN21_VAE["name"]]},
    {"id": 4, "type": "ModelSamplingSD3", "widgets": [8.0], "inputs": {"model": (1, 0)}},
    {"id": 5, "type": "CLIPTextEncode", "widgets": ["a paper boat floating down a rain-soaked city street, "
                                                    "reflections, cinematic tracking shot"],
     "inputs": {"clip": (2, 0)}, "title": "Positive"},
    {"id": 6, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, static, watermark, text, low quality"],
     "inputs": {"clip": (2, 0)}, "title": "Negative"},
    {"id": 7, "type": "WanContextWindowsManual", "widgets": [81, 21, "standard_static", 1, False, "pyramid"],
     "inputs": {"model": (4, 0)}},
    {"id": 8, "type": "CoherentVideo_CrossStreamAttention",
     "widgets": ["anchor", "first", 0, 0.7, True, True, True, 0, 0.0, 0.6], "inputs": {"model": (7, 0)}},
    {"id": 9, "type": "EmptyHunyuanLatentVideo", "widgets": [832, 480, 161, 1], "title": "161 frames"},
    {"id": 10, "type": "KSampler", "widgets": [42, "fixed", 30, 6.0, "uni_pc", "simple", 1.0],
     "inputs": {"model": (8, 0), "positive": (5, 0), "negative": (6, 0), "latent_image": (9, 0)}},
    {"id": 11, "type": "VAEDecode", "inputs": {"samples": (10, 0), "vae": (3, 0)}},
    {"id": 12, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/wan_long_video_anchor", 16.0, False, 90, "default"],
     "inputs": {"images": (11, 0)}},
]
GROUPS = [
    {"title": "1. Wan 2.1 and the prompt", "note": "Wan 2.1 T2V 1.3B, its text encoder and VAE; the prompt.",
     "at": (0, 0), "cols": [[1, 2, 3, 4], [5, 6]]},
    {"title": "2. Windows that see the first frame", "note": "81-frame context windows; each attends to frame 0.",
     "at": (900, 0), "cols": [[7, 8]]},
    {"title": "3. Sample, decode, save", "note": "161 frames in one sampling run, decoded and saved.",
     "at": (1320, 0), "cols": [[9, 10], [11, 12]]},
]
MODELS = {1: [WAN21_T2V_1_3B], 2: [UMT5_XXL_FP8], 3: [WAN21_VAE]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
