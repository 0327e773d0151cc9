"""Template "VidRD long video clip by clip - SD1.5": IterativeReuseSampler makes a 64-frame video 16 frames at a
time, each clip starting from the previous clip's reused latents. Needs Stable Diffusion 1.5 (add an AnimateDiff
motion model on the MODEL for real motion).
Regenerate: .venv/bin/python -m workflow_sources.iterative_reuse_long_video
"""
from workflow_sources._template import SD15, write

NAME = "VidRD long video clip by clip - SD1.5"

# IterativeReuseSampler widgets: total_frames, overlap, noise_recycle, guidance_ratio, fnr, overlap_mode,
# seed, (control), steps, cfg, sampler_name, scheduler, denoise
spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [SD15["name"]]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a sailboat drifting across a calm lake at sunset, cinematic"],
     "inputs": {"clip": (1, 1)}, "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark"], "inputs": {"clip": (1, 1)},
     "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "title": "One clip: N = 16 frames"},
    {"id": 5, "type": "CoherentVideo_IterativeReuseSampler",
     "widgets": [64, 4, 4.0, 0.4, True, "forward", 42, "fixed", 20, 7.5, "euler", "normal", 1.0],
     "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)}},
    {"id": 6, "type": "VAEDecode", "inputs": {"samples": (5, 0), "vae": (1, 2)}},
    {"id": 7, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/iterative_reuse", 8.0, False, 90, "default"],
     "inputs": {"images": (6, 0)}},
]
GROUPS = [
    {"title": "1. Model and prompt", "note": "Stable Diffusion 1.5; the latent sets one clip's size and length.",
     "at": (0, 0), "cols": [[1, 4], [2, 3]]},
    {"title": "2. Long video, clip by clip (VidRD)", "note": "64 frames in 16-frame clips, each reusing the last.",
     "at": (900, 0), "cols": [[5]]},
    {"title": "3. Decode and save", "note": "All 64 frames decoded and saved as an animated WebP.",
     "at": (1320, 0), "cols": [[6, 7]]},
]
MODELS = {1: [SD15]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
