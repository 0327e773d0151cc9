"""Test harness: the real ComfyUI (no mocks), real ModelPatchers, real samplers.

Fixtures:
- ``comfy``        : ComfyUI bootstrapped on CPU (or CUDA when present), nodes initialised.
- ``pack``         : this repository imported as a package (``coherent_video``).
- ``tiny_model``   : a fresh tiny SD1.5-architecture ModelPatcher with seeded weights.
- ``tiny_cond``    : positive/negative CONDITIONING for the tiny model.
- ``sd15_ckpt``    : path of the cached random-weight full-size SD1.5 checkpoint.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import comfy_env, fixtures  # noqa: E402

comfy_env.bootstrap()
# Bind ComfyUI's nodes.py now: the repository root has an __init__.py, so pytest later puts it first on sys.path,
# where `import nodes` would find this pack's nodes/ package (single-file runs failed in the comfy fixture).
import nodes  # noqa: E402,F401


@pytest.fixture(scope="session")
def comfy():
    comfy_env.init_all_nodes()
    import nodes

    return nodes


@pytest.fixture(scope="session")
def pack():
    return comfy_env.load_pack_module()


@pytest.fixture()
def tiny_model():
    return fixtures.tiny_model(seed=0)


@pytest.fixture()
def tiny_cond():
    return fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)


@pytest.fixture(scope="session")
def sd15_ckpt():
    return fixtures.random_sd15_checkpoint()
