"""Template "VideoGen reference image video - SD1.5": SD text-to-image makes a reference latent; 16 frames are
sampled with ReferenceImageCondition (reference-only attention + frame-0 anchor) and BaseResidualNoise through
SamplerCustomAdvanced, then decoded and saved. Needs Stable Diffusion 1.5.
Regenerate: .venv/bin/python -m workflow_sources.reference_image_video
"""
from workflow_sources._template import SD15, write

NAME = "VideoGen reference image video - SD1.5"

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [SD15["name"]]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a lighthouse on a cliff at sunset, waves crashing, cinematic"],
     "inputs": {"clip": (1, 1)}, "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark, text"], "inputs": {"clip": (1, 1)},
     "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 1], "title": "reference size"},
    {"id": 5, "type": "KSampler", "widgets": [7, "fixed", 20, 7.0, "euler", "normal", 1.0],
     "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)},
     "title": "text-to-image reference"},
    {"id": 6, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "title": "16 frames"},
    {"id": 7, "type": "CoherentVideo_ReferenceImageCondition",
     "widgets": [1.0, 0.5, 1.0, 0.0, 0.0, 1.0, True, False, 0, "fixed"],
     "inputs": {"model": (1, 0), "reference": (5, 0), "video_latent": (6, 0)}},
    {"id": 8, "type": "CoherentVideo_BaseResidualNoise", "widgets": [42, "fixed", "shared", 0.5, 1.0, -1, ""]},
    {"id": 9, "type": "CFGGuider", "widgets": [7.0], "inputs": {"model": (7, 0), "positive": (2, 0), "negative": (3, 0)}},
    {"id": 10, "type": "KSamplerSelect", "widgets": ["euler"]},
    {"id": 11, "type": "BasicScheduler", "widgets": ["normal", 20, 1.0], "inputs": {"model": (7, 0)}},
    {"id": 12, "type": "SamplerCustomAdvanced",
     "inputs": {"noise": (8, 0), "guider": (9, 0), "sampler": (10, 0), "sigmas": (11, 0), "latent_image": (7, 1)}},
    {"id": 13, "type": "VAEDecode", "inputs": {"samples": (12, 0), "vae": (1, 2)}},
    {"id": 14, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/reference_image_video", 8.0, False, 90, "default"],
     "inputs": {"images": (13, 0)}},
]
GROUPS = [
    {"title": "1. Model and prompt", "note": "Stable Diffusion 1.5 and the prompt both stages share.",
     "at": (0, 0), "cols": [[1], [2, 3]]},
    {"title": "2. Reference image", "note": "Text-to-image makes the one frame every video frame follows.",
     "at": (900, 0), "cols": [[4, 5]]},
    {"title": "3. Frames follow the reference (VideoGen)", "note": "Reference attention + shared base noise for 16 frames.",
     "at": (1320, 0), "cols": [[6, 7], [8, 9, 10, 11]]},
    {"title": "4. Sample, decode, save", "note": "Sample all frames, decode, save an animated WebP.",
     "at": (2130, 0), "cols": [[12, 13, 14]]},
]
MODELS = {1: [SD15]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
