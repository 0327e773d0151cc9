"""Importing the pack pulls in nothing heavier than torch and comfy, and registers every node."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys
from runner import comfy_env  # run from the repository root (cwd)
from tests.support.fixtures import load_pack_module  # before ComfyUI's own tests/ package is on sys.path
comfy_env.bootstrap()
import nodes  # ComfyUI itself
before = set(sys.modules)
pack = load_pack_module()
loaded = sorted({m.split('.')[0] for m in set(sys.modules) - before})  # the pack's import alone
import asyncio
ext = asyncio.run(pack.comfy_entrypoint())
node_list = asyncio.run(ext.get_node_list())
new = sorted({m.split('.')[0] for m in set(sys.modules) - before})
schemas = [c.GET_SCHEMA() for c in node_list]
untipped = [f"{s.node_id}.{p.id}" for s in schemas for p in list(s.inputs) + list(s.outputs) if not p.tooltip]
print(json.dumps({"loaded": loaded, "new": new, "nodes": [s.node_id for s in schemas], "untipped": untipped}))
"""

ALLOWED = {"coherent_video", "kornia", "kornia_rs", "einops", "safetensors", "numpy", "torch", "comfy", "comfy_api",
           "folder_paths", "node_helpers", "nodes", "nvidia", "triton", "typing_extensions", "_distutils_hack", "importlib_metadata", "zipp"}


def test_pack_import_is_light_and_registers_nodes():
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # importing the pack imports no ComfyUI module (ComfyUI's loader calls comfy_entrypoint for that), so the
    # pure math in model_patches/ imports without ComfyUI (tests/unit)
    assert out["loaded"] == ["coherent_video"], out["loaded"]
    heavy = [m for m in out["new"] if m not in ALLOWED and not m.startswith("_")]
    assert not heavy, f"importing the pack imported {heavy}"
    assert {"CoherentVideo_BaseResidualNoise", "CoherentVideo_BaseResidualNoiseModel"} <= set(out["nodes"])
    unprefixed = [n for n in out["nodes"] if not n.startswith("CoherentVideo_")]
    assert not unprefixed, f"node ids without the pack prefix (they could clash with another pack's): {unprefixed}"
    assert len(out["nodes"]) == len(set(out["nodes"])), "duplicate node ids"
    assert not out["untipped"], f"inputs/outputs without a tooltip: {out['untipped']}"


def test_registry_metadata_is_filled():
    """[tool.comfy] as the Comfy registry reads it. (comfy-cli's `comfy node validate` runs offline but passed even
    with an empty Icon and no PublisherId, so the fields are checked here.)"""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    comfy = meta["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    repo = meta["project"]["urls"]["Repository"].replace("https://github.com/", "")
    prefix = f"https://raw.githubusercontent.com/{repo}/main/"
    assert comfy["Icon"].startswith(prefix) and (ROOT / comfy["Icon"][len(prefix):]).is_file(), comfy["Icon"]
    assert all((ROOT / d).is_dir() for d in comfy["includes"])
