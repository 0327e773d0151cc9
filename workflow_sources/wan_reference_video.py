"""Template "Wan 2.1 coherent video with a reference image": Wan 2.1 T2V 1.3B makes a reference image (one latent
frame), then a longer video clip by clip (IterativeReuseSampler, VidRD) from shared base noise (BaseResidualNoise,
VideoFusion) whose self-attention also attends to the reference (ReferenceImageCondition, VideoGen; on Wan the
reference tokens sit at the latent frame in front of each clip). Needs the Wan 2.1 T2V 1.3B files.
Regenerate: .venv/bin/python -m workflow_sources.wan_reference_video
"""
from workflow_sources._template import UMT5_XXL_FP8, WAN21_T2V_1_3B, WAN21_VAE, build, write  # noqa: F401

NAME = "Wan 2.1 coherent video with a reference image"

# IterativeReuseSampler widgets: total_frames (latent frames), overlap (latent frames), noise_recycle, guidance_ratio,
# fnr, overlap_mode, seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise
spec = [
    {"id": 1, "type": "UNETLoader", "widgets": [WAN21_T2V_1_3B["name"], "default"]},
    {"id": 2, "type": "CLIPLoader", "widgets": [UMT5_XXL_FP8["name"], "wan", "default"]},
    {"id": 3, "type": "VAELoader", "widgets": [WAN21_VAE["name"]]},
    {"id": 4, "type": "ModelSamplingSD3", "widgets": [8.0], "inputs": {"model": (1, 0)}},
    {"id": 5, "type": "CLIPTextEncode", "widgets": ["a red fox trotting through fresh snow in a birch forest, "
                                                    "soft morning light, cinematic"],
     "inputs": {"clip": (2, 0)}, "title": "Positive"},
    {"id": 6, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, static, watermark, text, low quality"],
     "inputs": {"clip": (2, 0)}, "title": "Negative"},
    {"id": 7, "type": "EmptyHunyuanLatentVideo", "widgets": [832, 480, 1, 1], "title": "reference: one frame"},
    {"id": 8, "type": "KSampler", "widgets": [7, "fixed", 30, 6.0, "uni_pc", "simple", 1.0],
     "inputs": {"model": (4, 0), "positive": (5, 0), "negative": (6, 0), "latent_image": (7, 0)},
     "title": "text-to-image reference"},
    {"id": 9, "type": "EmptyHunyuanLatentVideo", "widgets": [832, 480, 33, 1], "title": "one clip: 33 frames"},
    {"id": 10, "type": "CoherentVideo_ReferenceImageCondition",
     "widgets": [0.8, 0.5, 1.0, 0.0, 0.0, 0.8, False, False, 0, "fixed"],
     "inputs": {"model": (4, 0), "reference": (8, 0), "video_latent": (9, 0)}},
    {"id": 11, "type": "CoherentVideo_BaseResidualNoise", "widgets": [42, "fixed", "shared", 0.5, 1.0, -1, ""]},
    {"id": 12, "type": "CoherentVideo_IterativeReuseSampler",
     "widgets": [25, 2, 4.0, 0.4, True, "forward", 42, "fixed", 30, 6.0, "uni_pc", "simple", 1.0],
     "inputs": {"model": (10, 0), "positive": (5, 0), "negative": (6, 0), "latent_image": (10, 1), "noise": (11, 0)},
     "title": "97 frames clip by clip"},
    {"id": 13, "type": "VAEDecode", "inputs": {"samples": (12, 0), "vae": (3, 0)}},
    {"id": 14, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/wan_reference_video", 16.0, False, 90, "default"],
     "inputs": {"images": (13, 0)}},
]
GROUPS = [
    {"title": "1. Wan 2.1 and the prompt", "note": "Wan 2.1 T2V 1.3B, its text encoder and VAE; the prompt.",
     "at": (0, 0), "cols": [[1, 2, 3, 4], [5, 6]]},
    {"title": "2. Reference image", "note": "Wan makes one frame that every clip follows.",
     "at": (900, 0), "cols": [[7, 8]]},
    {"title": "3. Long video clip by clip", "note": "Reference attention, shared base noise, clips that reuse.",
     "at": (1320, 0), "cols": [[9, 10, 11], [12]]},
    {"title": "4. Decode and save", "note": "Decode all frames, save an animated WebP.",
     "at": (2130, 0), "cols": [[13, 14]]},
]
MODELS = {1: [WAN21_T2V_1_3B], 2: [UMT5_XXL_FP8], 3: [WAN21_VAE]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
