"""Template "AnimateDiff reference image video - SD1.5": the way SD1.5 video users build it, with
AnimateDiff-Evolved (ADE) making the motion: SD text-to-image makes a reference; ADE's motion module
(the standard mm_sd_v15_v2.ckpt) goes on the model through Use Evolved Sampling; ReferenceImageCondition makes the
16 frames follow the reference and BaseResidualNoise correlates their starting noise. Needs Stable Diffusion 1.5
and the ComfyUI-AnimateDiff-Evolved node pack with its v2 motion module.
Regenerate (ADE must be in ComfyUI's custom_nodes/ or in ../shared/interop/): .venv/bin/python -m workflow_sources.animatediff_reference_video
"""
from workflow_sources._template import SD15, write, write_graph_thumbnail

NAME = "AnimateDiff reference image video - SD1.5"
NEEDS_PACKS = ["ComfyUI-AnimateDiff-Evolved"]  # nodes outside core and this pack (tests load it or skip)

MM_V2 = {"name": "mm_sd_v15_v2.ckpt",
         "url": "https://huggingface.co/guoyww/animatediff/resolve/main/mm_sd_v15_v2.ckpt?download=true",
         "directory": "animatediff_models"}

spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [SD15["name"]]},
    {"id": 2, "type": "CLIPTextEncode", "widgets": ["a sailing boat on a calm sea at sunrise, gentle waves, cinematic"],
     "inputs": {"clip": (1, 1)}, "title": "Positive"},
    {"id": 3, "type": "CLIPTextEncode", "widgets": ["blurry, flicker, watermark, text"], "inputs": {"clip": (1, 1)},
     "title": "Negative"},
    {"id": 4, "type": "EmptyLatentImage", "widgets": [512, 512, 1], "title": "reference size"},
    {"id": 5, "type": "KSampler", "widgets": [7, "fixed", 20, 7.0, "euler", "normal", 1.0],
     "inputs": {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (4, 0)},
     "title": "text-to-image reference"},
    {"id": 6, "type": "ADE_LoadAnimateDiffModel", "widgets": [MM_V2["name"]]},
    {"id": 7, "type": "ADE_ApplyAnimateDiffModelSimple", "inputs": {"motion_model": (6, 0)}},
    {"id": 8, "type": "ADE_UseEvolvedSampling", "widgets": ["autoselect"], "inputs": {"model": (1, 0), "m_models": (7, 0)}},
    {"id": 9, "type": "EmptyLatentImage", "widgets": [512, 512, 16], "title": "16 frames"},
    {"id": 10, "type": "CoherentVideo_ReferenceImageCondition",
     "widgets": [1.0, 0.5, 1.0, 0.0, 0.0, 1.0, True, False, 0, "fixed"],
     "inputs": {"model": (8, 0), "reference": (5, 0), "video_latent": (9, 0)}},
    {"id": 11, "type": "CoherentVideo_BaseResidualNoise", "widgets": [42, "fixed", "shared", 0.5, 1.0, -1, ""]},
    {"id": 12, "type": "CFGGuider", "widgets": [7.0], "inputs": {"model": (10, 0), "positive": (2, 0), "negative": (3, 0)}},
    {"id": 13, "type": "KSamplerSelect", "widgets": ["euler"]},
    {"id": 14, "type": "BasicScheduler", "widgets": ["normal", 20, 1.0], "inputs": {"model": (10, 0)}},
    {"id": 15, "type": "SamplerCustomAdvanced",
     "inputs": {"noise": (11, 0), "guider": (12, 0), "sampler": (13, 0), "sigmas": (14, 0), "latent_image": (10, 1)}},
    {"id": 16, "type": "VAEDecode", "inputs": {"samples": (15, 0), "vae": (1, 2)}},
    {"id": 17, "type": "SaveAnimatedWEBP", "widgets": ["CoherentVideo/animatediff_reference_video", 8.0, False, 90, "default"],
     "inputs": {"images": (16, 0)}},
]
GROUPS = [
    {"title": "1. Model and prompt", "note": "Stable Diffusion 1.5 and the prompt both stages share.",
     "at": (0, 0), "cols": [[1], [2, 3]]},
    {"title": "2. Reference image", "note": "Text-to-image makes the one frame every video frame follows.",
     "at": (900, 0), "cols": [[4, 5]]},
    {"title": "3. Motion (AnimateDiff-Evolved)", "note": "ADE's v2 motion module on the model (Gen2 nodes).",
     "at": (1320, 0), "cols": [[6, 7, 8]]},
    {"title": "4. Frames follow the reference (VideoGen)", "note": "Reference attention + shared base noise for 16 frames.",
     "at": (1740, 0), "cols": [[9, 10], [11, 12, 13, 14]]},
    {"title": "5. Sample, decode, save", "note": "Sample all frames, decode, save an animated WebP.",
     "at": (2550, 0), "cols": [[15, 16, 17]]},
]
MODELS = {1: [SD15], 6: [MM_V2]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS, packs=NEEDS_PACKS))
    print(write_graph_thumbnail(NAME))  # the browser test does not open it (it needs ADE): a drawn picture
