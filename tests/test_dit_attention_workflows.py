"""The bundled Wan templates run headless, as a user runs them (`python -m runner` in a subprocess), with tiny
random files swapped in for the real Wan 2.1 ones (tests/support/dit_files.py) and small sizes set.

The swap, beside file names and sizes: the text encoder. ComfyUI detects every Wan 2.1 DiT with a 4096-wide text
input and has one fixed 5.7 B-parameter UMT5-XXL config, so the prompt is encoded by a random CLIP-L (CLIPLoader type
``stable_diffusion``) and widened to 4096 by a test-only node (tests/support/custom_nodes). Every other node, link and
pack input is the template's.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import dit_files

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "Wan 2.1 coherent video with a reference image.json"
ANCHOR = "Wan 2.1 long video in context windows with anchor attention.json"


def _run(comfy, workflow: str, sizes: dict, sd15_ckpt, tmp_path) -> list[Path]:
    from runner import headless as run_workflow
    from support.testing import run_workflow_cli

    files = dit_files.wan_model_files(sd15_ckpt)
    prompt, fmt = run_workflow.load_workflow(str(ROOT / "workflows" / workflow))
    assert fmt == "ui"
    api = tmp_path / "prompt.json"
    api.write_text(json.dumps(dit_files.swap_in_tiny_files(prompt, files, sizes)))
    return run_workflow_cli(str(api), tmp_path / "out", models_dir=files["models_dir"],
                            timeout=600)


def _node_ids(workflow: str, node_type: str) -> list[str]:
    data = json.loads((ROOT / "workflows" / workflow).read_text())
    return [str(n["id"]) for n in data["nodes"] if n["type"] == node_type]


def test_wan_reference_video_template_runs_headless(comfy, sd15_ckpt, tmp_path):
    from support.testing import webp_frames

    ref_size, clip_size = _node_ids(REFERENCE, "EmptyHunyuanLatentVideo")
    sizes = {ref_size: {"width": 64, "height": 64, "length": 1},
             clip_size: {"width": 64, "height": 64, "length": 9},          # one clip: 3 latent frames
             "KSampler": {"steps": 2},
             "CoherentVideo_IterativeReuseSampler": {"total_frames": 5, "overlap": 1, "steps": 2}}
    out = _run(comfy, REFERENCE, sizes, sd15_ckpt, tmp_path)
    webps = [p for p in out if p.suffix == ".webp"]
    assert len(webps) == 1
    assert webp_frames(webps[0]) == (1 + 4 * (5 - 1), (64, 64))          # 5 latent frames -> 17 frames


def test_wan_long_video_anchor_template_runs_headless(comfy, sd15_ckpt, tmp_path):
    from support.testing import webp_frames

    sizes = {"EmptyHunyuanLatentVideo": {"width": 64, "height": 64, "length": 33},   # 9 latent frames
             "WanContextWindowsManual": {"context_length": 17, "context_overlap": 5},  # windows of 5, overlap 2
             "KSampler": {"steps": 2}}
    out = _run(comfy, ANCHOR, sizes, sd15_ckpt, tmp_path)
    webps = [p for p in out if p.suffix == ".webp"]
    assert len(webps) == 1
    assert webp_frames(webps[0]) == (33, (64, 64))


@pytest.mark.parametrize("workflow", (REFERENCE, ANCHOR))
def test_wan_templates_declare_the_real_wan_files(workflow):
    data = json.loads((ROOT / "workflows" / workflow).read_text())
    declared = {m["name"]: m for n in data["nodes"] for m in n.get("properties", {}).get("models", [])}
    assert set(declared) == {"wan2.1_t2v_1.3B_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                             "wan_2.1_vae.safetensors"}
    loaders = {"UNETLoader": "diffusion_models", "CLIPLoader": "text_encoders", "VAELoader": "vae"}
    for n in data["nodes"]:
        if n["type"] in loaders:
            (m,) = n["properties"]["models"]
            assert m["name"] == n["widgets_values"][0] and m["directory"] == loaders[n["type"]]
            assert m["url"].startswith("https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/")
