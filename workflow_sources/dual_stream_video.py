"""Template "DSDN dual-stream video - SD1.5" (arXiv 2308.08316), training-free: an SD reference frame is the content
stream, a bundled clip's latent motion (MotionDecomposer, de-jittered by MotionSmooth) is the motion stream;
MotionCombiner fuses them into the initial latent, and the denoiser aligns them with CrossStreamAttention while
MotionSmoothingPatch low-passes the motion of the denoised estimate. Needs Stable Diffusion 1.5.
Regenerate: .venv/bin/python -m workflow_sources.dual_stream_video
"""
from workflow_sources._template import SD15, write

NAME = "DSDN dual-stream video - SD1.5"
W, H, FRAMES = 512, 288, 16

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [SD15["name"]]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a big fluffy grey rabbit stretching on a grassy hill, cartoon, soft light"],
     "inputs": {"clip": (1, 1)}, "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark, deformed"], "inputs": {"clip": (1, 1)},
     "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [W, H, 1], "title": "reference frame size"},
    {"id": 5, "type": "KSampler", "widgets": [7, "fixed", 20, 7.0, "euler", "normal", 1.0],
     "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)},
     "title": "content stream: reference frame"},
    {"id": 6, "type": "CoherentVideo_LoadBundledClip", "widgets": ["bbb_emerge.mp4"], "title": "motion clip"},
    {"id": 7, "type": "GetVideoComponents", "inputs": {"video": (6, 0)}},
    {"id": 8, "type": "ImageFromBatch", "widgets": [0, FRAMES], "inputs": {"image": (7, 0)}},
    {"id": 9, "type": "ImageScale", "widgets": ["bilinear", W, H, "center"], "inputs": {"image": (8, 0)},
     "title": "same size as the reference"},
    {"id": 10, "type": "VAEEncode", "inputs": {"pixels": (9, 0), "vae": (1, 2)}},
    {"id": 11, "type": "CoherentVideo_MotionDecomposer", "widgets": ["first frame"], "inputs": {"video": (10, 0)},
     "title": "motion stream"},
    {"id": 12, "type": "CoherentVideo_MotionSmooth", "widgets": ["bilateral", 1.0, 2.0, 1.0, 0, -1],
     "inputs": {"motion": (11, 2)}, "title": "de-jitter the motion"},
    {"id": 13, "type": "CoherentVideo_MotionCombiner", "inputs": {"content": (5, 0), "motion": (12, 0)},
     "title": "reference content + clip motion"},
    {"id": 14, "type": "CoherentVideo_CrossStreamAttention",
     "widgets": ["anchor", "first", 0, 1.0, True, True, True, 0, 0.0, 1.0], "inputs": {"model": (1, 0)}},
    {"id": 15, "type": "CoherentVideo_MotionSmoothingPatch", "widgets": [0.5, 1.0, 0.0, 1.0], "inputs": {"model": (14, 0)}},
    {"id": 16, "type": "KSampler", "widgets": [7, "fixed", 20, 7.0, "euler", "normal", 0.6],
     "inputs": {"model": (15, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (13, 0)},
     "title": "dual-stream denoising"},
    {"id": 17, "type": "VAEDecode", "inputs": {"samples": (16, 0), "vae": (1, 2)}},
    {"id": 18, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/dual_stream", 8.0, False, 90, "default"],
     "inputs": {"images": (17, 0)}},
]
GROUPS = [
    {"title": "1. Model, prompt, content stream", "note": "SD1.5 makes the reference frame: the content stream.",
     "at": (0, 0), "cols": [[1, 4], [2, 3], [5]]},
    {"title": "2. Motion stream", "note": "A bundled clip's latent frame differences, de-jittered.",
     "at": (0, 760), "cols": [[6, 7, 8], [9, 10], [11, 12]]},
    {"title": "3. Fuse and align the streams (DSDN)", "note": "Content + motion -> first latent; attention aligns frames.",
     "at": (1290, 0), "cols": [[13, 14, 15]]},
    {"title": "4. Denoise, decode, save", "note": "Partial denoise (0.6) of the fused video, saved as animated WebP.",
     "at": (1710, 0), "cols": [[16, 17, 18]]},
]
MODELS = {1: [SD15]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
