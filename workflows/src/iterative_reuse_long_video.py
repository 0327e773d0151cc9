"""Source of workflows/iterative_reuse_long_video.json (UI format).
Regenerate: .venv/bin/python workflows/src/iterative_reuse_long_video.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.ui_workflow import write_bundled  # noqa: E402

# IterativeReuseSampler widgets: total_frames, overlap, noise_recycle, guidance_ratio, fnr, overlap_mode,
# seed, (control), steps, cfg, sampler_name, scheduler, denoise
spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": ["random_sd15.safetensors"], "pos": [0, 0]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a sailboat drifting across a calm lake at sunset, cinematic"],
     "inputs": {"clip": (1, 1)}, "pos": [350, 0], "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark"], "inputs": {"clip": (1, 1)},
     "pos": [350, 200], "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "pos": [350, 400],
     "title": "One clip: N = 16 frames"},
    {"id": 5, "type": "CoherentVideo_IterativeReuseSampler",
     "widgets": [64, 4, 4.0, 0.4, True, "drop", 42, "fixed", 20, 7.5, "euler", "normal", 1.0],
     "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)},
     "pos": [700, 0]},
    {"id": 6, "type": "VAEDecode", "inputs": {"samples": (5, 0), "vae": (1, 2)}, "pos": [1050, 0]},
    {"id": 7, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/iterative_reuse", 8.0, False, 90, "default"],
     "inputs": {"images": (6, 0)}, "pos": [1350, 0]},
]

if __name__ == "__main__":
    print(write_bundled(spec, "iterative_reuse_long_video"))
