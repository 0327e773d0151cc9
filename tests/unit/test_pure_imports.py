"""The pure modules of ``model_patches/`` import with ComfyUI made unimportable (a fresh interpreter whose import
system refuses ``comfy``, ``comfy_api``, ...): the layer rule "pure math has no comfy import", checked."""
from __future__ import annotations

import json
import subprocess
import sys

from runner import ROOT

BLOCKED = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "node_helpers", "nodes")

PROBE = r"""
import importlib, importlib.abc, json, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the pure math must not import ComfyUI")
        return None

sys.meta_path.insert(0, Refuse())
from tests.support.fixtures import load_pack_module
load_pack_module()
import coherent_video.model_patches as mp
PREFIX = "coherent_video.model_patches."
pure = [m.name[len(PREFIX):] for m in pkgutil.iter_modules(mp.__path__, PREFIX) if m.name != PREFIX + "hooks"]
for name in list(pure):  # subpackages of the math (flow/): their modules too
    mod = importlib.import_module(PREFIX + name)
    pure += [name + "." + m.name for m in pkgutil.iter_modules(getattr(mod, "__path__", []))]
for name in pure:  # hooks/ is the ComfyUI layer: everything else is pure math
    importlib.import_module(PREFIX + name)
print(json.dumps(pure))
"""


def test_pure_modules_import_without_comfyui():
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(BLOCKED)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pure = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"noise", "reuse", "motion", "attention", "flow", "rife", "video"} <= set(pure), pure
