"""Template "LTX-2 image-to-video with a reference": LTX-2 19B (video + audio, the files of ComfyUI's own LTX-2 I2V
template) turns a start image into a clip with sound. LTXVImgToVideoInplace holds the start image as the first
latent frame; ReferenceImageCondition (VideoGen) lets the video self-attention of every block also attend to the
same start image, encoded as the reference, so later frames keep its look and subject (its first-frame anchor is off:
the in-place node already holds frame 0). The audio part of the latent passes through our patch untouched. One
sampling stage (ComfyUI's template adds a distilled LoRA and a 2x latent upscale; add them after the KSampler if you
want them). The start image is a bundled clip's first frame, so the template opens and runs with an empty input/
folder; replace it with Load Image for your own picture. Needs the LTX-2 checkpoint and the Gemma 3 text encoder.
ComfyUI 0.33+ (LTX-2 does not exist in 0.3.75).
Regenerate: .venv-0.33/bin/python -m workflow_sources.ltx2_i2v_reference
"""
from workflow_sources._template import GEMMA3_12B_FP4, LTX2_19B_DEV_FP8, build, write  # noqa: F401

NAME = "LTX-2 image-to-video with a reference"
WIDTH, HEIGHT, FRAMES, FPS = 1280, 704, 121, 25   # ComfyUI's template: 121 frames at 25 fps; sizes step 32

# ReferenceImageCondition widgets: strength, style_fidelity, attention_weight, adain_weight, start_percent,
# end_percent, anchor_first_frame, concat_reference, noise_seed, control_after_generate
spec = [
    {"id": 1, "type": "CheckpointLoaderSimple", "widgets": [LTX2_19B_DEV_FP8["name"]]},
    {"id": 2, "type": "LTXAVTextEncoderLoader", "widgets": [GEMMA3_12B_FP4["name"], LTX2_19B_DEV_FP8["name"], "default"]},
    {"id": 3, "type": "LTXVAudioVAELoader", "widgets": [LTX2_19B_DEV_FP8["name"]]},
    {"id": 4, "type": "CLIPTextEncode", "widgets": ["a big fluffy rabbit steps out of its burrow into a sunny meadow, "
                                                    "looks around and hops slowly towards the camera, birds sing, "
                                                    "leaves rustle in a light wind, cartoon"],
     "inputs": {"clip": (2, 0)}, "title": "Positive"},
    {"id": 5, "type": "CLIPTextEncode", "widgets": ["blurry, low quality, still frame, frames, watermark, overlay, "
                                                    "titles, has blurbox, has subtitles"],
     "inputs": {"clip": (2, 0)}, "title": "Negative"},
    {"id": 6, "type": "LTXVConditioning", "widgets": [float(FPS)], "inputs": {"positive": (4, 0), "negative": (5, 0)}},
    {"id": 7, "type": "CoherentVideo_LoadBundledClip", "widgets": ["bbb_emerge.mp4"], "title": "start image source"},
    {"id": 8, "type": "GetVideoComponents", "inputs": {"video": (7, 0)}},
    {"id": 9, "type": "ImageFromBatch", "widgets": [0, 1], "inputs": {"image": (8, 0)}, "title": "start image"},
    {"id": 10, "type": "ImageScale", "widgets": ["lanczos", WIDTH, HEIGHT, "center"], "inputs": {"image": (9, 0)},
     "title": "start image at the video size"},
    {"id": 11, "type": "EmptyLTXVLatentVideo", "widgets": [WIDTH, HEIGHT, FRAMES, 1], "title": "121 frames"},
    {"id": 12, "type": "LTXVImgToVideoInplace", "widgets": [1.0, False],
     "inputs": {"vae": (1, 2), "image": (10, 0), "latent": (11, 0)}, "title": "start image as frame 0"},
    {"id": 13, "type": "VAEEncode", "inputs": {"pixels": (10, 0), "vae": (1, 2)}, "title": "reference: the start image"},
    {"id": 14, "type": "CoherentVideo_ReferenceImageCondition",
     "widgets": [0.8, 0.5, 1.0, 0.0, 0.0, 0.8, False, False, 0, "fixed"],
     "inputs": {"model": (1, 0), "reference": (13, 0), "video_latent": (12, 0)}},
    {"id": 15, "type": "LTXVEmptyLatentAudio", "widgets": [FRAMES, float(FPS), 1], "inputs": {"audio_vae": (3, 0)}},
    {"id": 16, "type": "LTXVConcatAVLatent", "inputs": {"video_latent": (14, 1), "audio_latent": (15, 0)}},
    {"id": 17, "type": "KSampler", "widgets": [42, "fixed", 20, 4.0, "euler", "simple", 1.0],
     "inputs": {"model": (14, 0), "positive": (6, 0), "negative": (6, 1), "latent_image": (16, 0)}},
    {"id": 18, "type": "LTXVSeparateAVLatent", "inputs": {"av_latent": (17, 0)}},
    {"id": 19, "type": "VAEDecode", "inputs": {"samples": (18, 0), "vae": (1, 2)}},
    {"id": 20, "type": "LTXVAudioVAEDecode", "inputs": {"samples": (18, 1), "audio_vae": (3, 0)}},
    {"id": 21, "type": "CreateVideo", "widgets": [float(FPS)], "inputs": {"images": (19, 0), "audio": (20, 0)}},
    {"id": 22, "type": "SaveVideo", "widgets": ["video/CoherentVideo_ltx2_i2v_reference", "auto", "auto"],
     "inputs": {"video": (21, 0)}},
]
GROUPS = [
    {"title": "1. LTX-2 and the prompt", "note": "LTX-2 19B, its audio VAE and Gemma 3 text encoder; the prompt.",
     "at": (0, 0), "cols": [[1, 2, 3], [4, 5, 6]]},
    {"title": "2. Start image", "note": "A bundled frame; use Load Image for your own picture.",
     "at": (900, 0), "cols": [[7, 8, 9, 10]]},
    {"title": "3. Frame 0 and reference", "note": "The start image is frame 0; all frames' attention sees it too.",
     "at": (1320, 0), "cols": [[11, 12, 13, 14]]},
    {"title": "4. Sample, decode and save", "note": "With sound: one sampling stage, an MP4 at 25 fps.",
     "at": (1740, 0), "cols": [[15, 16, 17], [18, 19, 20, 21, 22]]},
]
MODELS = {1: [LTX2_19B_DEV_FP8], 2: [GEMMA3_12B_FP4], 3: [LTX2_19B_DEV_FP8]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
