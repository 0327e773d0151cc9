"""The "MiniMax H3 long video in context windows with anchor attention" template runs headless, as a user runs it
(``python -m runner`` in a subprocess), on ComfyUI 0.33+ with tiny random H3 files that ComfyUI's own loaders
detect (tests/support/dit_files.py ``h3_model_files``: UNETLoader reads the DiT as ``MiniMaxH3``, VAELoader the TAE
``taeh3``), at small sizes, more latent frames than one window; its ``models`` metadata names the files of
ComfyUI's own MiniMax H3 templates.

Swapped, because ComfyUI has one fixed, huge config of each: the text encoder (CLIPLoader with a random CLIP-L, type
``stable_diffusion``, for Qwen3-VL-32B, type ``minimax``), the video VAE (the TAE for the 2.6 B-parameter VAE), and
the audio decode is dropped (ComfyUI's H3 audio VAE has one fixed 151 M-parameter config), so the MP4 has no sound.
Every other node, link and input is the template's. On ComfyUI 0.3.75 (no MiniMax H3) the test is skipped with the
reason.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import dit_files

ROOT = Path(__file__).resolve().parent.parent
H3_LONG = "MiniMax H3 long video in context windows with anchor attention.json"
LENGTH, SIZE = 39, 64   # 39 frames = 12 latent frames (17k + 5 -> 5k + 2): three windows of 5 overlapping by 2


def _video(path: Path) -> tuple[int, tuple[int, int]]:
    import av

    with av.open(str(path)) as c:
        frames = [f for f in c.decode(video=0)]
    return len(frames), (frames[0].width, frames[0].height)


def test_h3_long_anchor_template_runs_headless(comfy, sd15_ckpt, tmp_path):
    """Tiny H3 in StreamContextWindows (windows of 5 latent frames over 12) with the first-frame anchor, sampled as
    the template samples (BasicGuider, res_multistep), the video decoded: 39 frames of 64x64 in the saved MP4."""
    import comfy.supported_models

    if not hasattr(comfy.supported_models, "MiniMaxH3"):
        pytest.skip("MiniMax H3: this ComfyUI has no comfy.supported_models.MiniMaxH3 (added in ComfyUI 0.33; the "
                    "template's H3 nodes do not exist in 0.3.75)")
    from runner import headless as run_workflow
    from support.testing import run_workflow_cli

    files = dit_files.h3_model_files(sd15_ckpt)
    prompt, fmt = run_workflow.load_workflow(str(ROOT / "workflows" / H3_LONG))
    assert fmt == "ui"
    types = {n["class_type"] for n in prompt.values()}
    assert {"CoherentVideo_StreamContextWindows", "CoherentVideo_CrossStreamAttention", "MiniMaxH3ImageToVideo",
            "SamplerCustomAdvanced", "VAEDecodeAudio"} <= types
    cross = next(n for n in prompt.values() if n["class_type"] == "CoherentVideo_CrossStreamAttention")["inputs"]
    assert cross["mode"] == "anchor" and cross["strength"] > 0
    for nid in [k for k, n in prompt.items() if n["class_type"] == "VAEDecodeAudio"]:
        del prompt[nid]
    for nid, node in list(prompt.items()):
        t, ins = node["class_type"], node["inputs"]
        if t == "UNETLoader":
            ins["unet_name"] = files["unet_name"]
        elif t == "CLIPLoader":
            ins.update(clip_name=files["clip_name"], type="stable_diffusion")
        elif t == "VAELoader" and ins["vae_name"] == "minimax_h3_video_vae_fp16.safetensors":
            ins["vae_name"] = files["vae_name"]
        elif t == "VAELoader":
            del prompt[nid]                      # the audio VAE: nothing left reads it
        elif t == "MiniMaxH3ImageToVideo":
            ins.update(width=SIZE, height=SIZE, length=LENGTH)
        elif t == "CoherentVideo_StreamContextWindows":
            ins.update(context_length=5, context_overlap=2)
        elif t == "BasicScheduler":
            ins["steps"] = 2
        elif t == "CreateVideo":
            ins.pop("audio", None)
    api = tmp_path / "prompt.json"
    api.write_text(json.dumps(prompt))
    out = run_workflow_cli(str(api), tmp_path / "out", models_dir=files["models_dir"], timeout=600)
    videos = [p for p in out if p.suffix == ".mp4"]
    assert len(videos) == 1, out
    assert _video(videos[0]) == (LENGTH, (SIZE, SIZE))


def test_h3_long_anchor_template_declares_comfyuis_h3_files():
    data = json.loads((ROOT / "workflows" / H3_LONG).read_text())
    declared = {m["name"]: m for n in data["nodes"] for m in n.get("properties", {}).get("models", [])}
    assert set(declared) == {"minimax_h3_fl2va_pruned_int8_convrot.safetensors",
                             "qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors", "minimax_h3_video_vae_fp16.safetensors",
                             "minimax_h3_audio_vae_fp32.safetensors"}
    assert declared["minimax_h3_fl2va_pruned_int8_convrot.safetensors"] == {
        "name": "minimax_h3_fl2va_pruned_int8_convrot.safetensors", "directory": "diffusion_models",
        "url": "https://huggingface.co/Comfy-Org/MiniMax-H3/resolve/main/diffusion_models/"
               "minimax_h3_fl2va_pruned_int8_convrot.safetensors"}
    assert {m["directory"] for m in declared.values()} == {"diffusion_models", "text_encoders", "vae"}
    loaders = {n["type"]: n["widgets_values"] for n in data["nodes"] if n["type"] in ("UNETLoader", "CLIPLoader")}
    assert loaders["CLIPLoader"][:2] == ["qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors", "minimax"]
    assert not data.get("definitions"), "a plain graph, no subgraph"
