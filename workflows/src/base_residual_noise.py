"""Source of workflows/base_residual_noise.json (UI format). Regenerate: .venv/bin/python workflows/src/base_residual_noise.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.ui_workflow import write_bundled  # noqa: E402

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": ["random_sd15.safetensors"], "pos": [0, 0]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a red fox running through fresh snow, cinematic"],
     "inputs": {"clip": (1, 1)}, "pos": [350, 0], "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark"], "inputs": {"clip": (1, 1)},
     "pos": [350, 200], "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "pos": [350, 400], "title": "16 frames"},
    {"id": 5, "type": "CoherentVideo_BaseResidualNoise", "widgets": [42, "fixed", "shared", 0.5, 1.0, -1, ""], "pos": [700, 0]},
    {"id": 6, "type": "CFGGuider", "widgets": [7.5], "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0)},
     "pos": [700, 250]},
    {"id": 7, "type": "KSamplerSelect", "widgets": ["euler"], "pos": [700, 400]},
    {"id": 8, "type": "BasicScheduler", "widgets": ["normal", 20, 1.0], "inputs": {"model": (1, 0)}, "pos": [700, 500]},
    {"id": 9, "type": "SamplerCustomAdvanced",
     "inputs": {"noise": (5, 0), "guider": (6, 0), "sampler": (7, 0), "sigmas": (8, 0), "latent_image": (4, 0)},
     "pos": [1050, 100]},
    {"id": 10, "type": "VAEDecode", "inputs": {"samples": (9, 0), "vae": (1, 2)}, "pos": [1400, 100]},
    {"id": 11, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/base_residual", 8.0, False, 90, "default"],
     "inputs": {"images": (10, 0)}, "pos": [1700, 100]},
]

if __name__ == "__main__":
    print(write_bundled(spec, "base_residual_noise"))
