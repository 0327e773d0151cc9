"""ComfyUI's real server (`main.py --cpu`) loads the pack, lists every node, and runs a prompt with one."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.server import assert_pack_linked, comfy_server, get_json as _get, post_json as _post

ROOT = Path(__file__).resolve().parent.parent


def pack_import_line(log: str, pack_name: str) -> str | None:
    """ComfyUI's "Import times for custom nodes" line for our pack (``<seconds> seconds[ (IMPORT FAILED)]:
    <path>``), or None. Other lines with IMPORT FAILED (core's own comfy_extras/API nodes, other packs)
    are not ours to judge."""
    for line in log.splitlines():
        if " seconds" in line and line.rstrip().endswith(pack_name):
            return line
    return None


def test_pack_import_line_ignores_other_failures():
    log = ("IMPORT FAILED: nodes_audio_encoder.py\n"
           "Import times for custom nodes:\n"
           "   0.0 seconds (IMPORT FAILED): /c/custom_nodes/other_pack\n"
           "   0.4 seconds: /c/custom_nodes/ComfyUI-CoherentVideo\n")
    line = pack_import_line(log, "ComfyUI-CoherentVideo")
    assert line is not None and "IMPORT FAILED" not in line
    bad = log.replace("0.4 seconds:", "0.4 seconds (IMPORT FAILED):")
    assert "IMPORT FAILED" in pack_import_line(bad, "ComfyUI-CoherentVideo")
    assert pack_import_line("no import lines", "ComfyUI-CoherentVideo") is None


@pytest.fixture(scope="module")
def server(comfy, sd15_ckpt, tmp_path_factory):
    assert_pack_linked()
    with comfy_server(tmp_path_factory.mktemp("server"), models_base=Path(sd15_ckpt).parent.parent) as srv:
        yield srv.base, srv.tmp


def test_object_info_lists_every_pack_node_with_inputs(server, pack):
    base, tmp = server
    info = _get(base + "/object_info", timeout=60)
    from coherent_video.nodes import all_nodes

    pack_nodes = all_nodes()
    assert len(pack_nodes) >= 2
    for cls in pack_nodes:
        node_id = cls.GET_SCHEMA().node_id
        assert node_id in info, f"{node_id} missing from /object_info"
        want = cls.INPUT_TYPES()
        got = info[node_id]["input"]
        for section in ("required", "optional"):
            assert set((want.get(section) or {})) == set((got.get(section) or {})), f"{node_id} {section} inputs"
        for section in ("required", "optional"):
            for name, spec in (got.get(section) or {}).items():
                opts = spec[1] if len(spec) > 1 else {}
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"
    from runner.comfy_env import PACK_NAME

    line = pack_import_line((tmp / "server.log").read_text(), PACK_NAME)
    assert line is not None and "IMPORT FAILED" not in line, line


def test_prompt_with_pack_node_succeeds(server):
    base, tmp = server
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "random_sd15.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a boat"}},
        "3": {"class_type": "CoherentVideo_BaseResidualNoiseModel",
              "inputs": {"model": ["1", 0], "mode": "shared", "base_ratio": 0.6, "alpha": 1.0, "key_frame": -1,
                         "initial_noise": True, "per_step_noise": False}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["4", 0], "seed": 3, "steps": 1, "cfg": 4.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "server_test"}},
    }
    resp = _post(base + "/prompt", {"prompt": prompt, "client_id": "pytest"})
    assert not resp.get("node_errors"), resp
    pid = resp["prompt_id"]
    deadline = time.time() + 600
    while time.time() < deadline:
        hist = _get(f"{base}/history/{pid}")
        if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
            status = hist[pid]["status"]
            if status.get("status_str") == "error":
                break
            if status.get("completed"):
                images = hist[pid]["outputs"]["7"]["images"]
                assert len(images) == 2
                assert all((tmp / "out" / i["subfolder"] / i["filename"]).is_file() for i in images)
                return
        time.sleep(1)
    raise AssertionError(f"prompt did not succeed: {_get(f'{base}/history/{pid}')}\n"
                         + (tmp / "server.log").read_text()[-3000:])


def test_template_browser_lists_bundled_workflows(server):
    base, _ = server
    from runner.comfy_env import PACK_NAME

    templates = _get(base + "/workflow_templates")
    bundled = {p.stem for p in (ROOT / "workflows").glob("*.json")}
    assert "VideoFusion shared noise video - SD1.5" in bundled
    assert bundled <= set(templates.get(PACK_NAME, [])), templates
