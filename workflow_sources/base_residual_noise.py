"""Template "VideoFusion shared noise video - SD1.5": BaseResidualNoise gives 16 frames one shared base noise plus
small per-frame residuals, sampled with SamplerCustomAdvanced. Needs Stable Diffusion 1.5.
Regenerate: .venv/bin/python -m workflow_sources.base_residual_noise
"""
from workflow_sources._template import SD15, write

NAME = "VideoFusion shared noise video - SD1.5"

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [SD15["name"]]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a red fox running through fresh snow, cinematic"],
     "inputs": {"clip": (1, 1)}, "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark"], "inputs": {"clip": (1, 1)},
     "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "title": "16 frames"},
    {"id": 5, "type": "CoherentVideo_BaseResidualNoise", "widgets": [42, "fixed", "shared", 0.5, 1.0, -1, ""]},
    {"id": 6, "type": "CFGGuider", "widgets": [7.5], "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0)}},
    {"id": 7, "type": "KSamplerSelect", "widgets": ["euler"]},
    {"id": 8, "type": "BasicScheduler", "widgets": ["normal", 20, 1.0], "inputs": {"model": (1, 0)}},
    {"id": 9, "type": "SamplerCustomAdvanced",
     "inputs": {"noise": (5, 0), "guider": (6, 0), "sampler": (7, 0), "sigmas": (8, 0), "latent_image": (4, 0)}},
    {"id": 10, "type": "VAEDecode", "inputs": {"samples": (9, 0), "vae": (1, 2)}},
    {"id": 11, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/base_residual", 8.0, False, 90, "default"],
     "inputs": {"images": (10, 0)}},
]
GROUPS = [
    {"title": "1. Model and prompt", "note": "Stable Diffusion 1.5; 16 frames are 16 latents in one batch.",
     "at": (0, 0), "cols": [[1, 4], [2, 3]]},
    {"title": "2. Shared noise (VideoFusion)", "note": "Every frame's noise = shared base + small residual.",
     "at": (900, 0), "cols": [[5, 6, 7, 8]]},
    {"title": "3. Sample, decode, save", "note": "Sample all frames together, decode, save an animated WebP.",
     "at": (1320, 0), "cols": [[9, 10, 11]]},
]
MODELS = {1: [SD15]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
