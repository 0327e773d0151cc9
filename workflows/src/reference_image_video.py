"""Source of workflows/reference_image_video.json (UI format). Regenerate: .venv/bin/python workflows/src/reference_image_video.py

VideoGen's graph, training-free: SD text-to-image makes the reference image latent; the video frames
(16-frame latent) are sampled with ReferenceImageCondition (reference-only attention + frame-0
anchor) and BaseResidualNoise (VideoFusion's shared base noise) through SamplerCustomAdvanced, then
decoded and saved. Needs an SD1.x checkpoint (the tests use the random-weight random_sd15.safetensors).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.ui_workflow import write_bundled  # noqa: E402

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": ["random_sd15.safetensors"], "pos": [0, 0]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a lighthouse on a cliff at sunset, waves crashing, cinematic"],
     "inputs": {"clip": (1, 1)}, "pos": [350, 0], "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark, text"], "inputs": {"clip": (1, 1)},
     "pos": [350, 220], "title": "Negative"},
    # text-to-image: the reference
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 1], "pos": [350, 440], "title": "reference size"},
    {"id": 5, "type": "KSampler", "widgets": [7, "fixed", 20, 7.0, "euler", "normal", 1.0],
     "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)},
     "pos": [700, 0], "title": "text-to-image reference"},
    # video: frames conditioned on the reference
    {"id": 6, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "pos": [700, 500], "title": "16 frames"},
    {"id": 7, "type": "CoherentVideo_ReferenceImageCondition", "widgets": [1.0, 0.5, 1.0, 0.0, 0.0, 1.0, True, False, 0, "fixed"],
     "inputs": {"model": (1, 0), "reference": (5, 0), "video_latent": (6, 0)}, "pos": [1050, 0]},
    {"id": 8, "type": "CoherentVideo_BaseResidualNoise", "widgets": [42, "fixed", "shared", 0.5, 1.0, -1, ""], "pos": [1050, 450]},
    {"id": 9, "type": "CFGGuider", "widgets": [7.0], "inputs": {"model": (7, 0), "positive": (2, 0), "negative": (3, 0)},
     "pos": [1400, 0]},
    {"id": 10, "type": "KSamplerSelect", "widgets": ["euler"], "pos": [1400, 200]},
    {"id": 11, "type": "BasicScheduler", "widgets": ["normal", 20, 1.0], "inputs": {"model": (7, 0)}, "pos": [1400, 300]},
    {"id": 12, "type": "SamplerCustomAdvanced",
     "inputs": {"noise": (8, 0), "guider": (9, 0), "sampler": (10, 0), "sigmas": (11, 0), "latent_image": (7, 1)},
     "pos": [1750, 100]},
    {"id": 13, "type": "VAEDecode", "inputs": {"samples": (12, 0), "vae": (1, 2)}, "pos": [2100, 100]},
    {"id": 14, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/reference_image_video", 8.0, False, 90, "default"],
     "inputs": {"images": (13, 0)}, "pos": [2400, 100]},
]

if __name__ == "__main__":
    print(write_bundled(spec, "reference_image_video"))
