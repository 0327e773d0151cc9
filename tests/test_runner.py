"""The headless runner: UI-format conversion, ComfyUI validation/execution, errors, `make run`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runner(comfy):
    from runner import headless as run_workflow

    return run_workflow


@pytest.fixture(scope="module")
def models_dir(sd15_ckpt):
    return str(Path(sd15_ckpt).parent.parent)


def _ui_node(nid, ctype, widgets=(), inputs=(), outputs=(), mode=0):
    return {"id": nid, "type": ctype, "mode": mode, "widgets_values": list(widgets),
            "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs]}


def test_ui_conversion_widgets_links_reroute_primitive_mute_bypass(runner):
    from runner.workflow_format import ui_to_api

    wf = {
        "version": 0.4,
        "nodes": [
            _ui_node(1, "EmptyLatentImage", [64, 64, 4], outputs=[{"name": "LATENT", "type": "LATENT", "links": [1]}]),
            _ui_node(2, "Reroute", inputs=[{"name": "", "type": "*", "link": 1}],
                     outputs=[{"name": "", "type": "LATENT", "links": [2]}]),
            # bypassed: its LATENT output is passed through from its LATENT input
            _ui_node(3, "LatentUpscaleBy", ["nearest-exact", 2.0], mode=4,
                     inputs=[{"name": "samples", "type": "LATENT", "link": 2}],
                     outputs=[{"name": "LATENT", "type": "LATENT", "links": [3]}]),
            _ui_node(4, "PrimitiveNode", [1234, "fixed"], outputs=[{"name": "INT", "type": "INT", "links": [4],
                                                                     "widget": {"name": "seed"}}]),
            _ui_node(5, "KSampler", [7, "randomize", 3, 6.5, "euler", "normal", 1.0],
                     inputs=[{"name": "model", "type": "MODEL", "link": None},
                             {"name": "latent_image", "type": "LATENT", "link": 3},
                             {"name": "seed", "type": "INT", "link": 4, "widget": {"name": "seed"}}]),
            _ui_node(6, "SaveImage", ["muted"], mode=2, inputs=[{"name": "images", "type": "IMAGE", "link": None}]),
            _ui_node(7, "Note", ["a note"]),
        ],
        "links": [[1, 1, 0, 2, 0, "LATENT"], [2, 2, 0, 3, 0, "LATENT"], [3, 3, 0, 5, 3, "LATENT"],
                  [4, 4, 0, 5, 4, "INT"]],
    }
    import nodes

    prompt = ui_to_api(wf, lambda c: nodes.NODE_CLASS_MAPPINGS[c].INPUT_TYPES() if c in nodes.NODE_CLASS_MAPPINGS else None)
    assert set(prompt) == {"1", "5"}  # reroute, primitive, note, bypassed and muted nodes are gone
    assert prompt["1"]["inputs"] == {"width": 64, "height": 64, "batch_size": 4}
    ks = prompt["5"]["inputs"]
    assert ks["seed"] == 1234  # from the primitive, through the converted widget
    assert ks["latent_image"] == ["1", 0]  # through the reroute and the bypassed node
    assert (ks["steps"], ks["cfg"], ks["sampler_name"], ks["scheduler"], ks["denoise"]) == (3, 6.5, "euler", "normal", 1.0)


def test_ui_conversion_rejects_wrong_widget_count_and_unknown_class(runner):
    from runner.workflow_format import WorkflowError, ui_to_api
    import nodes

    types = lambda c: nodes.NODE_CLASS_MAPPINGS[c].INPUT_TYPES() if c in nodes.NODE_CLASS_MAPPINGS else None  # noqa: E731
    with pytest.raises(WorkflowError, match=r"node 1 \(EmptyLatentImage\)"):
        ui_to_api({"nodes": [_ui_node(1, "EmptyLatentImage", [64, 64, 4, 9])], "links": []}, types)
    with pytest.raises(WorkflowError, match=r"node 3: unknown node class 'NoSuchNode'"):
        ui_to_api({"nodes": [_ui_node(3, "NoSuchNode")], "links": []}, types)


def test_runner_executes_bundled_workflow_on_random_sd15(runner, models_dir, tmp_path):
    out = runner.run(str(ROOT / "workflows" / "VideoFusion shared noise video - SD1.5.json"), output_dir=str(tmp_path),
                     models_dirs=[models_dir], quiet=True,
                     sets=["1.ckpt_name=random_sd15.safetensors", "4.width=64", "4.height=64", "4.batch_size=3", "8.steps=1"])
    assert out["prompt"]["5"]["class_type"] == "CoherentVideo_BaseResidualNoise"
    assert len(out["files"]) == 1 and out["files"][0].endswith(".webp")
    from PIL import Image

    with Image.open(out["files"][0]) as im:
        assert im.n_frames == 3 and im.size == (64, 64)


def test_runner_errors_name_node_class_and_input(runner, models_dir, tmp_path):
    wf = str(ROOT / "workflows" / "VideoFusion shared noise video - SD1.5.json")
    small = ["1.ckpt_name=random_sd15.safetensors", "4.width=64", "4.height=64", "4.batch_size=3", "8.steps=1"]
    with pytest.raises(runner.RunError, match=r"node 5 \(CoherentVideo_BaseResidualNoise\) input 'base_ratio'"):
        runner.run(wf, output_dir=str(tmp_path), models_dirs=[models_dir], quiet=True, sets=small + ["5.base_ratio=2"])
    with pytest.raises(runner.RunError, match=r"node 1 \(CheckpointLoaderSimple\) input 'ckpt_name'.*folder 'checkpoints', searched"):
        runner.run(wf, output_dir=str(tmp_path), models_dirs=[models_dir], quiet=True,
                   sets=small + ["1.ckpt_name=missing.safetensors"])
    with pytest.raises(runner.RunError, match=r"node 9 \(SamplerCustomAdvanced\).*\[BaseResidualNoise\] input 'key_frame'"):
        runner.run(wf, output_dir=str(tmp_path), models_dirs=[models_dir], quiet=True, sets=small + ["5.key_frame=40"])
    with pytest.raises(runner.RunError, match=r"node 5 \(CoherentVideo_BaseResidualNoise\) has no input 'nope'"):
        runner.run(wf, output_dir=str(tmp_path), quiet=True, sets=["5.nope=1"])


def test_make_run_api_format_passes_args(tmp_path):
    """`make run WORKFLOW=F ARGS=...` in a subprocess: an API-format prompt, no weights needed."""
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 16, "batch_size": 2, "color": 0}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "api"}}}
    wf = tmp_path / "api.json"
    wf.write_text(json.dumps(prompt))
    out_dir = tmp_path / "out"
    proc = subprocess.run(["make", "-s", "run", f"WORKFLOW={wf}",
                           f"ARGS=--output-dir {out_dir} --set 1.color=16711680 --set 2.filename_prefix=red"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    files = sorted(out_dir.glob("red_*.png"))
    assert len(files) == 2
    from PIL import Image

    with Image.open(files[0]) as im:
        assert im.size == (32, 16) and im.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


IMPORT_TROUBLE = ("IMPORT FAILED", "Traceback", "did not import correctly", "Error while calling comfy_entrypoint",
                  "has no attribute 'instance'", "Cannot import")


def test_runner_starts_without_import_warnings(tmp_path):
    """`python -m runner` on a bundled model-free template, in a subprocess: every core extra node and node pack
    imports. ComfyUI 0.33's comfy_extras/nodes_replacements.py registers through PromptServer.instance in on_load:
    without the PromptServer main.py creates first, "IMPORT FAILED: nodes_replacements.py"."""
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "runner", str(ROOT / "workflows" / "Frame interpolation x4 - no weights.json"),
                           "--quiet", "--output-dir", str(out_dir), "--set", "3.multiplier=2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    trouble = [line for line in log.splitlines() if any(t in line for t in IMPORT_TROUBLE)]
    assert not trouble, log[-4000:]
    assert list(out_dir.rglob("*.mp4")), log[-2000:]


def test_runner_applies_the_servers_node_replacements(runner):
    """As the server does with a posted prompt (0.33): a node class that is gone becomes its registered replacement
    (nodes_replacements.py: T2IAdapterLoader -> ControlNetLoader). ComfyUIs without node replacements: skipped."""
    from runner import comfy_env

    if not hasattr(comfy_env.prompt_server(), "node_replace_manager"):
        pytest.skip("this ComfyUI has no node replacements (PromptServer.node_replace_manager came after 0.3.75)")
    prompt = {"1": {"class_type": "T2IAdapterLoader", "inputs": {"t2i_adapter_name": "t2i.safetensors"},
                    "_meta": {"title": "old"}}}
    runner.apply_node_replacements(prompt)
    assert prompt["1"]["class_type"] == "ControlNetLoader"
    assert prompt["1"]["inputs"] == {"control_net_name": "t2i.safetensors"}
