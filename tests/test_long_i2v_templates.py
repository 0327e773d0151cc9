"""The long image-to-video templates run headless, as a user runs them (``python -m runner`` in a subprocess), with
tiny random files in place of the real ones (tests/support/dit_files.py) and small sizes set; their ``models``
metadata names ComfyUI's own files for these models.

As in tests/test_dit_attention_workflows.py, the text encoder is swapped too (a random CLIP-L widened to 4096 by a
test-only node): ComfyUI has one fixed 5.7 B-parameter UMT5-XXL config. Every other node, link and input is the
template's.
"""
from __future__ import annotations

import json
from pathlib import Path

from support import dit_files

ROOT = Path(__file__).resolve().parent.parent
WAN22_LONG = "Wan 2.2 14B image-to-video, long, without drift.json"


def _video_frames(path: Path) -> tuple[int, tuple[int, int]]:
    import av

    with av.open(str(path)) as c:
        frames = [f for f in c.decode(video=0)]
    return len(frames), (frames[0].width, frames[0].height)


def test_wan22_i2v_long_template_runs_headless(comfy, sd15_ckpt, tmp_path):
    """Both random experts (in_dim 36, no img_emb: what ComfyUI reads from the real Wan 2.2 A14B I2V files), the
    bundled start frame, IterativeReuseSampler with condition_on_previous, colour_hold and model_low_noise: 5 latent
    frames in clips of 3 -> 17 frames of 32x32 in the saved MP4."""
    from runner import headless as run_workflow
    from support.testing import run_workflow_cli

    files = dit_files.wan22_i2v_model_files(sd15_ckpt)
    prompt, fmt = run_workflow.load_workflow(str(ROOT / "workflows" / WAN22_LONG))
    assert fmt == "ui"
    sampler = next(n for n in prompt.values() if n["class_type"] == "CoherentVideo_IterativeReuseSampler")["inputs"]
    assert sampler["condition_on_previous"] is True and sampler["colour_hold"] > 0 and "model_low_noise" in sampler
    unets = {"wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors": files["high"],
             "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors": files["low"]}
    sizes = {"WanImageToVideo": {"width": 32, "height": 32, "length": 9},          # one clip: 3 latent frames
             "CoherentVideo_IterativeReuseSampler": {"total_frames": 5, "overlap": 1, "steps": 2,
                                                     "low_noise_start_step": 1}}
    api = tmp_path / "prompt.json"
    api.write_text(json.dumps(dit_files.swap_in_tiny_files(prompt, files, sizes, unets)))
    out = run_workflow_cli(str(api), tmp_path / "out", models_dir=files["models_dir"],
                           timeout=600)
    videos = [p for p in out if p.suffix == ".mp4"]
    assert len(videos) == 1, out
    assert _video_frames(videos[0]) == (1 + 4 * (5 - 1), (32, 32))


def test_wan22_i2v_long_template_declares_comfyuis_wan22_files():
    data = json.loads((ROOT / "workflows" / WAN22_LONG).read_text())
    declared = {m["name"]: m for n in data["nodes"] for m in n.get("properties", {}).get("models", [])}
    assert set(declared) == {"wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                             "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                             "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan_2.1_vae.safetensors"}
    repo = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
    assert declared["wan_2.1_vae.safetensors"]["url"] == repo + "vae/wan_2.1_vae.safetensors"
    for name in ("high", "low"):
        f = f"wan2.2_i2v_{name}_noise_14B_fp8_scaled.safetensors"
        assert declared[f]["url"] == repo + "diffusion_models/" + f and declared[f]["directory"] == "diffusion_models"
