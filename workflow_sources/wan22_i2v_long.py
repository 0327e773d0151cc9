"""Template "Wan 2.2 14B image-to-video, long, without drift": Wan 2.2 A14B image-to-video (both experts, as ComfyUI's own
Wan 2.2 14B I2V template) made clip by clip by IterativeReuseSampler (VidRD) with ``condition_on_previous``: every
clip after the first gets the previous clip's last latent frames as known frames (no decode / re-encode round trip,
which shifts colour at every extension), and ``colour_hold`` holds each clip's latent colour statistics to the first
clip's. The start image is a bundled clip's first frame, so the template opens and runs with an empty input/ folder;
replace it with Load Image for your own picture. Needs the Wan 2.2 14B I2V files.
Regenerate: .venv/bin/python -m workflow_sources.wan22_i2v_long
"""
from workflow_sources._template import (UMT5_XXL_FP8_WAN22, WAN22_I2V_HIGH, WAN22_I2V_LOW, WAN22_VAE, build,  # noqa: F401
                                        write)

NAME = "Wan 2.2 14B image-to-video, long, without drift"
SIZE, CLIP_FRAMES = 640, 81          # one clip: 81 frames = 21 latent frames (ComfyUI's template size)
CLIPS, OVERLAP = 4, 2                # latent frames
TOTAL = 21 + (CLIPS - 1) * (21 - OVERLAP)   # 78 latent frames = 309 frames

# IterativeReuseSampler widgets: total_frames, overlap (latent frames), noise_recycle, guidance_ratio, fnr, overlap_mode,
# seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise, condition_on_previous, colour_hold,
# low_noise_start_step (ComfyUI's template: 20 steps, cfg 3.5, euler/simple, the low-noise expert from step 10)
spec = [
    {"id": 1, "type": "UNETLoader", "widgets": [WAN22_I2V_HIGH["name"], "default"], "title": "high-noise expert"},
    {"id": 2, "type": "UNETLoader", "widgets": [WAN22_I2V_LOW["name"], "default"], "title": "low-noise expert"},
    {"id": 3, "type": "CLIPLoader", "widgets": [UMT5_XXL_FP8_WAN22["name"], "wan", "default"]},
    {"id": 4, "type": "VAELoader", "widgets": [WAN22_VAE["name"]]},
    {"id": 5, "type": "ModelSamplingSD3", "widgets": [8.0], "inputs": {"model": (1, 0)}},
    {"id": 6, "type": "ModelSamplingSD3", "widgets": [8.0], "inputs": {"model": (2, 0)}},
    {"id": 7, "type": "CLIPTextEncode", "widgets": ["a big fluffy rabbit steps out of its burrow into a sunny meadow, "
                                                    "looks around and hops slowly towards the camera, cartoon"],
     "inputs": {"clip": (3, 0)}, "title": "Positive"},
    {"id": 8, "type": "CLIPTextEncode", "widgets": ["colour shift, oversaturated, overexposed, flicker, static, blurry, "
                                                    "watermark, text, low quality"],
     "inputs": {"clip": (3, 0)}, "title": "Negative"},
    {"id": 9, "type": "CoherentVideo_LoadBundledClip", "widgets": ["bbb_emerge.mp4"], "title": "start image source"},
    {"id": 10, "type": "GetVideoComponents", "inputs": {"video": (9, 0)}},
    {"id": 11, "type": "ImageFromBatch", "widgets": [0, 1], "inputs": {"image": (10, 0)}, "title": "start image"},
    {"id": 12, "type": "WanImageToVideo", "widgets": [SIZE, SIZE, CLIP_FRAMES, 1],
     "inputs": {"positive": (7, 0), "negative": (8, 0), "vae": (4, 0), "start_image": (11, 0)},
     "title": "one clip: 81 frames"},
    {"id": 13, "type": "CoherentVideo_IterativeReuseSampler",
     "widgets": [TOTAL, OVERLAP, 4.0, 0.4, True, "forward", 42, "fixed", 20, 3.5, "euler", "simple", 1.0,
                 True, 0.5, 10],
     "inputs": {"model": (5, 0), "positive": (12, 0), "negative": (12, 1), "latent_image": (12, 2),
                "model_low_noise": (6, 0)},
     "title": "309 frames clip by clip"},
    {"id": 14, "type": "VAEDecode", "inputs": {"samples": (13, 0), "vae": (4, 0)}},
    {"id": 15, "type": "CreateVideo", "widgets": [16.0], "inputs": {"images": (14, 0)}},
    {"id": 16, "type": "SaveVideo", "widgets": ["video/CoherentVideo_wan22_i2v_long", "auto", "auto"],
     "inputs": {"video": (15, 0)}},
]
GROUPS = [
    {"title": "1. Wan 2.2 14B I2V and the prompt", "note": "Both experts, the text encoder and VAE; the prompt.",
     "at": (0, 0), "cols": [[1, 2, 3, 4], [5, 6, 7, 8]]},
    {"title": "2. Start image", "note": "A bundled frame; use Load Image for your own picture.",
     "at": (900, 0), "cols": [[9, 10, 11, 12]]},
    {"title": "3. Long video without drift", "note": "Each clip continues the last in latent space; colours held.",
     "at": (1320, 0), "cols": [[13]]},
    {"title": "4. Decode and save", "note": "Decode all 309 frames and save an MP4 at 16 fps.",
     "at": (1740, 0), "cols": [[14, 15, 16]]},
]
MODELS = {1: [WAN22_I2V_HIGH], 2: [WAN22_I2V_LOW], 3: [UMT5_XXL_FP8_WAN22], 4: [WAN22_VAE]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
