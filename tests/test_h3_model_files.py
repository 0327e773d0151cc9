"""The random MiniMax H3 files (tests/support/dit_files.py ``h3_model_files``) run a text-to-video graph headless
(``python -m runner`` in a subprocess) on ComfyUI 0.33+, loaded by ComfyUI's own loaders: UNETLoader detects the
tiny DiT as ``comfy.supported_models.MiniMaxH3``, VAELoader reads ``taeh3.safetensors`` as H3's TAE.

The graph is ComfyUI's own H3 T2V template's (UNETLoader, EmptyMiniMaxH3LatentAV, sampler on the joint AV latent,
VAEDecode on it: VAEDecode takes the video stream of the NestedTensor, CreateVideo + SaveVideo) with two swaps: the
text encoder (CLIPLoader with the random CLIP-L, type "stable_diffusion", in place of Qwen3-VL-32B, type "minimax")
and the video VAE (the TAE in place of the 2.6 B-parameter H3 VAE); no audio decode (ComfyUI's H3 audio VAE has one
fixed 151 M-parameter config). On ComfyUI 0.3.75 (no MiniMax H3) the test is skipped with the reason.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import dit_files

LENGTH = 22          # EmptyMiniMaxH3LatentAV: 17k+5 frames -> 5k+2 latent frames: 22 frames = 7 latent frames
SIZE = 64            # 64x64 pixels = a 4x4 latent (16x)


def _video(path: Path) -> tuple[int, tuple[int, int]]:
    import av

    with av.open(str(path)) as c:
        frames = [f for f in c.decode(video=0)]
    return len(frames), (frames[0].width, frames[0].height)


def _prompt(files: dict) -> dict:
    return {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": files["unet_name"], "weight_dtype": "default"}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": files["clip_name"], "type": "stable_diffusion",
                                                      "device": "default"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox running through snow", "clip": ["2", 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 0]}},
        "5": {"class_type": "EmptyMiniMaxH3LatentAV", "inputs": {"width": SIZE, "height": SIZE, "length": LENGTH}},
        "6": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 2, "cfg": 2.0, "sampler_name": "euler",
                                                    "scheduler": "simple", "denoise": 1.0, "model": ["1", 0],
                                                    "positive": ["3", 0], "negative": ["4", 0],
                                                    "latent_image": ["5", 0]}},
        "7": {"class_type": "VAELoader", "inputs": {"vae_name": files["vae_name"]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["7", 0]}},
        "9": {"class_type": "CreateVideo", "inputs": {"images": ["8", 0], "fps": 24.0}},
        "10": {"class_type": "SaveVideo", "inputs": {"video": ["9", 0], "filename_prefix": "video/h3_tiny",
                                                     "format": "auto", "codec": "auto"}},
    }


def test_h3_model_files_run_text_to_video_headless(comfy, sd15_ckpt, tmp_path):
    """Tiny H3 DiT + random CLIP-L, KSampler (2 steps, cfg 2) on a 64x64, 22-frame AV latent, the video stream
    decoded by the random TAE: a 22-frame 64x64 MP4."""
    import comfy.supported_models

    if not hasattr(comfy.supported_models, "MiniMaxH3"):
        reason = ("MiniMax H3: this ComfyUI has no comfy.supported_models.MiniMaxH3 (added in ComfyUI 0.33; 0.3.75 "
                  "has neither the model nor EmptyMiniMaxH3LatentAV nor the taeh3 TAE)")
        print(reason)
        pytest.skip(reason)
    from support.testing import run_workflow_cli

    files = dit_files.h3_model_files(sd15_ckpt)
    assert set(files) == {"unet_name", "vae_name", "clip_name", "models_dir"}
    assert (files["models_dir"] / "diffusion_models" / files["unet_name"]).is_file()
    assert (files["models_dir"] / "vae_approx" / files["vae_name"]).is_file()
    api = tmp_path / "prompt.json"
    api.write_text(json.dumps(_prompt(files)))
    out = run_workflow_cli(str(api), tmp_path / "out", models_dir=files["models_dir"], timeout=600)
    videos = [p for p in out if p.suffix == ".mp4"]
    assert len(videos) == 1, out
    assert _video(videos[0]) == (LENGTH, (SIZE, SIZE))


def test_h3_files_are_detected_by_comfyuis_loaders(comfy, sd15_ckpt):
    """In process: the DiT file is detected as MiniMaxH3 with the tiny config read from its weights, the TAE is
    listed by VAELoader and decodes the H3 latent of EmptyMiniMaxH3LatentAV to 17k+5 finite frames in [0, 1]."""
    import comfy.supported_models

    if not hasattr(comfy.supported_models, "MiniMaxH3"):
        reason = "MiniMax H3: this ComfyUI has no comfy.supported_models.MiniMaxH3 (added in ComfyUI 0.33)"
        print(reason)
        pytest.skip(reason)
    import comfy.sd
    import folder_paths
    import nodes
    import torch

    files = dit_files.h3_model_files(sd15_ckpt)
    model = comfy.sd.load_diffusion_model(str(files["models_dir"] / "diffusion_models" / files["unet_name"]))
    assert type(model.model.model_config) is comfy.supported_models.MiniMaxH3
    cfg = model.model.model_config.unet_config
    assert {k: cfg[k] for k in ("hidden_size", "num_layers", "num_attention_heads", "attention_head_dim",
                                "text_dim", "latents_dim", "audio_latents_dim")} == {
        "hidden_size": 64, "num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 32, "text_dim": 768,
        "latents_dim": 24, "audio_latents_dim": 32}

    folder_paths.add_model_folder_path("vae_approx", str(files["models_dir"] / "vae_approx"))
    loader = nodes.VAELoader()
    assert files["vae_name"] in loader.vae_list(loader)
    vae = loader.load_vae(files["vae_name"])[0]
    assert vae.latent_channels == 24 and type(vae.first_stage_model).__name__ == "TAEHV"
    latent = nodes.NODE_CLASS_MAPPINGS["EmptyMiniMaxH3LatentAV"].execute(SIZE, SIZE, LENGTH).result[0]["samples"]
    video = latent.unbind()[0]
    assert tuple(video.shape) == (1, 24, 7, 4, 4)
    g = torch.Generator().manual_seed(0)
    frames = vae.decode(torch.randn(video.shape, generator=g))
    assert tuple(frames.shape) == (1, LENGTH, SIZE, SIZE, 3)
    assert torch.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1 and frames.std() > 0.01
