"""Template "Cross-frame attention video - SD1.5": an image model made into coherent video the Text2Video-Zero way;
CrossStreamAttention makes every frame's self-attention also attend to the first frame, then a plain KSampler
samples 16 frames. Needs Stable Diffusion 1.5.
Regenerate: .venv/bin/python -m workflow_sources.cross_stream_video
"""
from workflow_sources._template import SD15, write

NAME = "Cross-frame attention video - SD1.5"

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [SD15["name"]]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a sailing boat on a calm sea, golden hour, cinematic"],
     "inputs": {"clip": (1, 1)}, "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark, text"], "inputs": {"clip": (1, 1)},
     "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "title": "16 frames"},
    {"id": 5, "type": "CoherentVideo_CrossStreamAttention",
     "widgets": ["anchor", "first", 0, 1.0, True, True, True, 0, 0.0, 1.0], "inputs": {"model": (1, 0)}},
    {"id": 6, "type": "KSampler", "widgets": [11, "fixed", 20, 7.0, "euler", "normal", 1.0],
     "inputs": {"model": (5, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)}},
    {"id": 7, "type": "VAEDecode", "inputs": {"samples": (6, 0), "vae": (1, 2)}},
    {"id": 8, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/cross_stream_video", 8.0, False, 90, "default"],
     "inputs": {"images": (7, 0)}},
]
GROUPS = [
    {"title": "1. Model and prompt", "note": "Stable Diffusion 1.5; 16 frames are 16 latents in one batch.",
     "at": (0, 0), "cols": [[1, 4], [2, 3]]},
    {"title": "2. Frames attend to frame 0", "note": "Cross-frame attention keeps look and layout across frames.",
     "at": (900, 0), "cols": [[5]]},
    {"title": "3. Sample, decode, save", "note": "A plain KSampler over all frames, decoded to an animated WebP.",
     "at": (1320, 0), "cols": [[6, 7, 8]]},
]
MODELS = {1: [SD15]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
