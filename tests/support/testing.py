"""Helpers for tests that run bundled workflows headless, as a user would (a separate process)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runner import ROOT

RUNNER = [sys.executable, "-m", "runner"]  # run from the repository root, as the README says
RANDOM_SD15 = "random_sd15.safetensors"  # the tests' random-weight checkpoint (tests/support/fixtures.py)


def run_workflow_cli(workflow: str, out_dir: Path, sets=(), models_dir: Path | None = None,
                     input_dir: Path | None = None, timeout: int = 900,
                     custom_nodes_dir: Path | None = None) -> list[Path]:
    """Run ``workflows/<workflow>`` through ``python -m runner`` in a subprocess; assert it succeeds
    and return the files it wrote under ``out_dir`` (sorted). With ``models_dir``, every CheckpointLoaderSimple
    is pointed at the random-weight checkpoint with ``--set`` (the templates name the real SD1.5 file)."""
    cmd = [*RUNNER, str(ROOT / "workflows" / workflow), "--output-dir", str(out_dir), "--quiet"]
    if models_dir is not None:
        cmd += ["--models-dir", str(models_dir)]
        sets = [f"{n['id']}.ckpt_name={RANDOM_SD15}" for n in _nodes(workflow)
                if n["type"] == "CheckpointLoaderSimple"] + list(sets)
    if input_dir is not None:
        cmd += ["--input-dir", str(input_dir)]
    if custom_nodes_dir is not None:
        cmd += ["--custom-nodes-dir", str(custom_nodes_dir)]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(p for p in Path(out_dir).rglob("*") if p.is_file())


def webp_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) of an animated WebP."""
    from PIL import Image

    with Image.open(path) as im:
        return im.n_frames, im.size


def _nodes(workflow: str) -> list[dict]:
    """The workflow's nodes as ``{"id", "type"}``: the UI format's list, or the API format's prompt."""
    data = json.loads((ROOT / "workflows" / workflow).read_text())
    if "nodes" in data:
        return data["nodes"]
    return [{"id": k, "type": v["class_type"]} for k, v in data.items()]


def workflow_node_types(workflow: str) -> set[str]:
    return {n["type"] for n in _nodes(workflow)}


def attention_nodes(pack):
    """(ReferenceImageCondition, CrossStreamAttention, NodeInputError) of the loaded pack."""
    import importlib

    ref = importlib.import_module(pack.__name__ + ".nodes.reference_image").ReferenceImageCondition
    cross = importlib.import_module(pack.__name__ + ".nodes.cross_stream").CrossStreamAttention
    err = importlib.import_module(pack.__name__ + ".nodes._common").NodeInputError
    return ref, cross, err


def node_outputs(o):
    """A node's outputs as a tuple (a V3 ``io.NodeOutput`` or a plain tuple)."""
    return tuple(o.result) if hasattr(o, "result") else tuple(o)
