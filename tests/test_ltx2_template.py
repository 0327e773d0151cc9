"""The "LTX-2 image-to-video with a reference" template runs headless, as a user runs it (``python -m runner`` in a
subprocess), on ComfyUI 0.33+ with a tiny random LTX-2 checkpoint that ComfyUI's own loaders detect as LTX-2
(tests/support/dit_files.py: CheckpointLoaderSimple reads the LTXAV model and video VAE from it, LTXVAudioVAELoader
its audio VAE) and small sizes set; its ``models`` metadata names the files of ComfyUI's own LTX-2 I2V template.

The text encoder is swapped (CLIPLoader with a random CLIP-L in place of LTXAVTextEncoderLoader): ComfyUI has one
fixed 12 B-parameter Gemma 3 config and the Gemma tokenizer ships only inside the real file. Every other node, link
and input is the template's. On ComfyUI 0.3.75 (no LTX-2) the run is skipped with the reason.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import dit_files

ROOT = Path(__file__).resolve().parent.parent
LTX2_REF = "LTX-2 image-to-video with a reference.json"


def _video(path: Path) -> tuple[int, tuple[int, int], bool]:
    import av

    with av.open(str(path)) as c:
        has_audio = bool(c.streams.audio)
        frames = [f for f in c.decode(video=0)]
    return len(frames), (frames[0].width, frames[0].height), has_audio


def test_ltx2_reference_template_runs_headless(comfy, sd15_ckpt, tmp_path):
    """Tiny LTX-2 (video + audio), the bundled start frame in place (LTXVImgToVideoInplace) and as the reference of
    ReferenceImageCondition, KSampler on the joint AV latent, video and audio decoded: 9 frames of 64x64 with an
    audio stream in the saved MP4."""
    import comfy.supported_models

    if not hasattr(comfy.supported_models, "LTXAV"):
        pytest.skip("LTX-2: this ComfyUI has no comfy.supported_models.LTXAV (added in ComfyUI 0.33; the template's "
                    "LTX-2 nodes do not exist in 0.3.75)")
    from runner import headless as run_workflow
    from support.testing import run_workflow_cli

    files = dit_files.ltx2_model_files(sd15_ckpt)
    prompt, fmt = run_workflow.load_workflow(str(ROOT / "workflows" / LTX2_REF))
    assert fmt == "ui"
    ref = next(n for n in prompt.values() if n["class_type"] == "CoherentVideo_ReferenceImageCondition")["inputs"]
    assert ref["anchor_first_frame"] is False and ref["strength"] > 0
    sets = []
    for nid, node in prompt.items():
        t, ins = node["class_type"], node["inputs"]
        if t in ("CheckpointLoaderSimple", "LTXVAudioVAELoader"):
            ins["ckpt_name"] = files["ckpt_name"]
            sets.append(f"{nid}.ckpt_name={files['ckpt_name']}")
        elif t == "LTXAVTextEncoderLoader":
            node.update(class_type="CLIPLoader", inputs={"clip_name": files["clip_name"], "type": "stable_diffusion"})
        elif t in ("EmptyLTXVLatentVideo", "ImageScale"):
            ins.update(width=64, height=64)
            if t == "EmptyLTXVLatentVideo":
                ins["length"] = 9                    # 2 latent frames
        elif t == "LTXVEmptyLatentAudio":
            ins["frames_number"] = 9
        elif t == "KSampler":
            ins["steps"] = 2
    api = tmp_path / "prompt.json"
    api.write_text(json.dumps(prompt))
    out = run_workflow_cli(str(api), tmp_path / "out", sets=sets, models_dir=files["models_dir"],
                           timeout=600)
    videos = [p for p in out if p.suffix == ".mp4"]
    assert len(videos) == 1, out
    assert _video(videos[0]) == (9, (64, 64), True)


def test_ltx2_reference_template_declares_comfyuis_ltx2_files():
    data = json.loads((ROOT / "workflows" / LTX2_REF).read_text())
    declared = {m["name"]: m for n in data["nodes"] for m in n.get("properties", {}).get("models", [])}
    assert set(declared) == {"ltx-2-19b-dev-fp8.safetensors", "gemma_3_12B_it_fp4_mixed.safetensors"}
    assert declared["ltx-2-19b-dev-fp8.safetensors"] == {
        "name": "ltx-2-19b-dev-fp8.safetensors", "directory": "checkpoints",
        "url": "https://huggingface.co/Lightricks/LTX-2/resolve/main/ltx-2-19b-dev-fp8.safetensors"}
    assert declared["gemma_3_12B_it_fp4_mixed.safetensors"]["directory"] == "text_encoders"
    assert [m["name"] for m in data["models"]] == ["ltx-2-19b-dev-fp8.safetensors",
                                                   "gemma_3_12B_it_fp4_mixed.safetensors"]
    loaders = {n["type"]: n["widgets_values"] for n in data["nodes"]}
    assert loaders["LTXAVTextEncoderLoader"][:2] == ["gemma_3_12B_it_fp4_mixed.safetensors",
                                                     "ltx-2-19b-dev-fp8.safetensors"]
    assert not data.get("definitions"), "a plain graph, no subgraph"
