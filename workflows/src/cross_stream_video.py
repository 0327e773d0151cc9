"""Source of workflows/cross_stream_video.json (UI format). Regenerate: .venv/bin/python workflows/src/cross_stream_video.py

An image model turned into coherent video the Text2Video-Zero way: CrossStreamAttention makes every
frame's self-attention also attend to the first frame, then a plain KSampler samples 16 frames.
Needs an SD1.x checkpoint (the tests use the random-weight random_sd15.safetensors).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.ui_workflow import write_bundled  # noqa: E402

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": ["random_sd15.safetensors"], "pos": [0, 0]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a sailing boat on a calm sea, golden hour, cinematic"],
     "inputs": {"clip": (1, 1)}, "pos": [350, 0], "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark, text"], "inputs": {"clip": (1, 1)},
     "pos": [350, 220], "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "pos": [350, 440], "title": "16 frames"},
    {"id": 5, "type": "CoherentVideo_CrossStreamAttention", "widgets": ["anchor", "first", 0, 1.0, True, True, True, 0, 0.0, 1.0],
     "inputs": {"model": (1, 0)}, "pos": [700, 0]},
    {"id": 6, "type": "KSampler", "widgets": [11, "fixed", 20, 7.0, "euler", "normal", 1.0],
     "inputs": {"model": (5, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)}, "pos": [1050, 0]},
    {"id": 7, "type": "VAEDecode", "inputs": {"samples": (6, 0), "vae": (1, 2)}, "pos": [1400, 0]},
    {"id": 8, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/cross_stream_video", 8.0, False, 90, "default"],
     "inputs": {"images": (7, 0)}, "pos": [1700, 0]},
]

if __name__ == "__main__":
    print(write_bundled(spec, "cross_stream_video"))
