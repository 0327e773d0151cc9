"""Template "Text-to-video demo - small models trained here": what ``make demo-video`` runs, on CPU, with nothing to
download. The models are the pack's small DEMONSTRATION models (``models/``: a 1.8 M-parameter Wan 2.1 DiT and a
0.9 M-parameter Wan 2.1 VAE, trained here on four short real clips, 64 x 64 pixels; see the README's model card);
the text encoder is ComfyUI's CLIP-L with fixed random weights, padded to Wan's 4096 text width as in training.
They know four prompts (bunny, bikes, carphone, city) and make blurry 64 x 64 video: they exist to show the pack's
techniques on a model that has learnt real footage, not to make good video. The graph: one text-to-video clip of
17 frames made three times longer by IterativeReuseSampler (VidRD: each clip re-traces the previous one's last
latent frame), every clip's noise from BaseResidualNoise (VideoFusion: a shared base + per-frame residuals).
Run it: ``make demo-video`` (prepares the models folder with ``python -m scripts.demo_models``).
Regenerate: .venv/bin/python -m workflow_sources.demo_video
Thumbnail (its real output): make demo-video, then .venv/bin/python -m workflow_sources.demo_video --thumbnail VIDEO
(8 evenly spaced frames of the saved MP4, 2 rows of 4, each 192 px).
"""
from workflow_sources._template import write

NAME = "Text-to-video demo - small models trained here"
T2V, VAE, CLIP = "coherent_tiny_wan21_t2v.safetensors", "coherent_tiny_wan21_vae.safetensors", "random_clip_l.safetensors"
SIZE, CLIP_FRAMES = 64, 17           # one clip: 17 frames = 5 latent frames, as the models were trained
CLIPS, OVERLAP = 3, 1                # latent frames
TOTAL = 5 + (CLIPS - 1) * (5 - OVERLAP)   # 13 latent frames = 49 frames

# IterativeReuseSampler widgets: total_frames, overlap (latent frames), noise_recycle, guidance_ratio, fnr, overlap_mode,
# seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise, condition_on_previous, colour_hold,
# low_noise_start_step (the settings the demonstration models were evaluated with: 12 steps, cfg 3, euler/simple)
spec = [
    {"id": 1, "type": "UNETLoader", "widgets": [T2V, "default"], "title": "demo video model (trained here)"},
    {"id": 2, "type": "CLIPLoader", "widgets": [CLIP, "stable_diffusion", "default"],
     "title": "demo text encoder (random CLIP-L)"},
    {"id": 3, "type": "VAELoader", "widgets": [VAE], "title": "demo VAE (trained here)"},
    {"id": 4, "type": "CLIPTextEncode", "widgets": ["a man talking on a phone in a car"],
     "inputs": {"clip": (2, 0)}, "title": "Positive (bunny, bikes, carphone or city)"},
    {"id": 5, "type": "CLIPTextEncode", "widgets": [""], "inputs": {"clip": (2, 0)}, "title": "Negative"},
    {"id": 6, "type": "CoherentVideo_PadConditioningWidth", "widgets": [4096], "inputs": {"conditioning": (4, 0)}},
    {"id": 7, "type": "CoherentVideo_PadConditioningWidth", "widgets": [4096], "inputs": {"conditioning": (5, 0)}},
    {"id": 8, "type": "EmptyHunyuanLatentVideo", "widgets": [SIZE, SIZE, CLIP_FRAMES, 1], "title": "one clip: 17 frames"},
    {"id": 9, "type": "CoherentVideo_BaseResidualNoise", "widgets": [7, "fixed", "shared", 0.5, 1.0, -1, ""]},
    {"id": 10, "type": "CoherentVideo_IterativeReuseSampler",
     "widgets": [TOTAL, OVERLAP, 4.0, 0.4, True, "forward", 7, "fixed", 12, 3.0, "euler", "simple", 1.0,
                 False, 0.0, 10],
     "inputs": {"model": (1, 0), "positive": (6, 0), "negative": (7, 0), "latent_image": (8, 0), "noise": (9, 0)},
     "title": "49 frames clip by clip"},
    {"id": 11, "type": "VAEDecode", "inputs": {"samples": (10, 0), "vae": (3, 0)}},
    {"id": 12, "type": "CreateVideo", "widgets": [8.0], "inputs": {"images": (11, 0)}},
    {"id": 13, "type": "SaveVideo", "widgets": ["video/CoherentVideo_demo", "auto", "auto"], "inputs": {"video": (12, 0)}},
]
PACK_MODELS = {1: T2V, 2: CLIP, 3: VAE}   # the pack's own files (models/ + the seeded CLIP-L): no download URL
GROUPS = [
    {"title": "1. Small demonstration models (trained here, 64 px)",
     "note": "Tiny models trained on four clips: blurry by design, not for real use.",
     "at": (0, 0), "cols": [[1, 2, 3], [4, 5, 6, 7]]},
    {"title": "2. Coherent noise and long video",
     "note": "Shared base noise (VideoFusion); three clips, each re-tracing the last (VidRD).",
     "at": (900, 0), "cols": [[8, 9], [10]]},
    {"title": "3. Decode and save", "note": "Decode all 49 frames and save an MP4 at 8 fps.",
     "at": (1740, 0), "cols": [[11, 12, 13]]},
]


def write_output_thumbnail(video: str, cols: int = 4, rows: int = 2, px: int = 192):
    """``workflows/<NAME>.jpg`` from the demo's real output: ``cols x rows`` evenly spaced frames of ``video``."""
    import av
    from PIL import Image

    from workflow_sources._template import ROOT

    with av.open(str(video)) as c:
        frames = [f.to_image() for f in c.decode(video=0)]
    n = cols * rows
    pick = [frames[round(i * (len(frames) - 1) / (n - 1))] for i in range(n)]
    img = Image.new("RGB", (cols * px, rows * px))
    for i, f in enumerate(pick):
        img.paste(f.resize((px, px), Image.LANCZOS), ((i % cols) * px, (i // cols) * px))
    path = ROOT / "workflows" / f"{NAME}.jpg"
    img.save(path, quality=90)
    return path


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--thumbnail"]:
        print(write_output_thumbnail(sys.argv[2]))
    else:
        print(write(NAME, spec, GROUPS))
