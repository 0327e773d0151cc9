"""Template "MiniMax H3 long video in context windows with anchor attention": MiniMax H3 (video + audio, the files of
ComfyUI's own MiniMax H3 templates) samples 362 frames (15 s at 24 fps, 107 latent frames) in context windows of
37 latent frames (124 frames, H3's default clip) overlapping by 12. Core's context-window nodes cannot window H3's
packed video + audio latent, so the pack's StreamContextWindows cuts the video and the audio each on its own time
axis; CrossStreamAttention makes every window's self-attention also attend to the first latent frame, cached from
the first window at each step, against seams and colour drift between windows (the audio of each call is the
unpatched model's). Sampling as ComfyUI's H3 template: BasicGuider (no negative prompt), res_multistep, 20 steps.
Needs the MiniMax H3 diffusion model, its Qwen3-VL text encoder and video and audio VAEs. ComfyUI 0.33+ (H3 does not
exist in 0.3.75).
Regenerate: .venv-0.33/bin/python -m workflow_sources.minimax_h3_long_anchor
"""
from workflow_sources._template import (MINIMAX_H3_AUDIO_VAE, MINIMAX_H3_INT8, MINIMAX_H3_VIDEO_VAE,  # noqa: F401
                                        QWEN3VL_32B_H3, build, write)

NAME = "MiniMax H3 long video in context windows with anchor attention"
WIDTH, HEIGHT, FRAMES, FPS = 864, 480, 362, 24    # 0.4 MP 16:9 as ComfyUI's template; 362 = 17k + 5

# StreamContextWindows widgets: context_length, context_overlap (latent frames), context_schedule, fuse_method,
# causal_window_fix. CrossStreamAttention widgets: mode, anchor, anchor_index, strength, input_blocks, middle_block,
# output_blocks, min_level, start_percent, end_percent.
spec = [
    {"id": 1, "type": "UNETLoader", "widgets": [MINIMAX_H3_INT8["name"], "default"]},
    {"id": 2, "type": "CLIPLoader", "widgets": [QWEN3VL_32B_H3["name"], "minimax", "default"]},
    {"id": 3, "type": "VAELoader", "widgets": [MINIMAX_H3_VIDEO_VAE["name"]], "title": "video VAE"},
    {"id": 4, "type": "VAELoader", "widgets": [MINIMAX_H3_AUDIO_VAE["name"]], "title": "audio VAE"},
    {"id": 5, "type": "MiniMaxH3ImageToVideo",
     "widgets": ["a red vintage tram rides through a sunny old town, past cafes and a fountain, the camera follows "
                 "it slowly; the tram bell rings, wheels squeal softly on the rails, people chat at the tables",
                 WIDTH, HEIGHT, FRAMES],
     "inputs": {"clip": (2, 0), "vae": (3, 0)}, "title": "Prompt and 362-frame latent"},
    {"id": 6, "type": "CoherentVideo_StreamContextWindows", "widgets": [37, 12, "standard_static", "pyramid", True],
     "inputs": {"model": (1, 0)}},
    {"id": 7, "type": "CoherentVideo_CrossStreamAttention",
     "widgets": ["anchor", "first", 0, 0.7, True, True, True, 0, 0.0, 0.6], "inputs": {"model": (6, 0)}},
    {"id": 8, "type": "BasicGuider", "inputs": {"model": (7, 0), "conditioning": (5, 0)}},
    {"id": 9, "type": "RandomNoise", "widgets": [42, "fixed"]},
    {"id": 10, "type": "KSamplerSelect", "widgets": ["res_multistep"]},
    {"id": 11, "type": "BasicScheduler", "widgets": ["simple", 20, 1.0], "inputs": {"model": (7, 0)}},
    {"id": 12, "type": "SamplerCustomAdvanced",
     "inputs": {"noise": (9, 0), "guider": (8, 0), "sampler": (10, 0), "sigmas": (11, 0), "latent_image": (5, 1)}},
    {"id": 13, "type": "VAEDecode", "inputs": {"samples": (12, 0), "vae": (3, 0)}},
    {"id": 14, "type": "VAEDecodeAudio", "inputs": {"samples": (12, 0), "vae": (4, 0)}},
    {"id": 15, "type": "CreateVideo", "widgets": [float(FPS)], "inputs": {"images": (13, 0), "audio": (14, 0)}},
    {"id": 16, "type": "SaveVideo", "widgets": ["video/CoherentVideo_minimax_h3_long_anchor", "auto", "auto"],
     "inputs": {"video": (15, 0)}},
]
GROUPS = [
    {"title": "1. MiniMax H3 and the prompt", "note": "H3, its Qwen3-VL text encoder and VAEs; 362 frames (15 s).",
     "at": (0, 0), "cols": [[1, 2, 3, 4], [5]]},
    {"title": "2. Windows that see the first frame", "note": "37-latent-frame windows, video and audio on their "
                                                            "own axes; each sees frame 0.",
     "at": (900, 0), "cols": [[6, 7]]},
    {"title": "3. Sample, decode, save", "note": "As ComfyUI's H3 template: res_multistep, 20 steps; MP4 with sound.",
     "at": (1320, 0), "cols": [[8, 9, 10, 11, 12], [13, 14, 15, 16]]},
]
MODELS = {1: [MINIMAX_H3_INT8], 2: [QWEN3VL_32B_H3], 3: [MINIMAX_H3_VIDEO_VAE], 4: [MINIMAX_H3_AUDIO_VAE]}

if __name__ == "__main__":
    print(write(NAME, spec, GROUPS, MODELS))
