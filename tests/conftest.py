"""Test harness: the real ComfyUI (no mocks), real ModelPatchers, real samplers.

Two suites share this folder:
- ``tests/unit/``: the pure math (``model_patches/``' modules without a ``comfy`` import). It needs torch only;
  ``make test-unit`` runs it alone, without ComfyUI on the path.
- everything else (``tests/test_*.py``): integration tests inside the real ComfyUI. ComfyUI is booted (put on
  ``sys.path``, default CLI args) just before the first integration test module is imported, so a run of
  ``tests/unit`` alone never imports it.

Fixtures (integration):
- ``comfy``        : ComfyUI bootstrapped on CPU (or CUDA when present), nodes initialised.
- ``pack``         : this repository imported as a package (``coherent_video``).
- ``tiny_model``   : a fresh tiny SD1.5-architecture ModelPatcher with seeded weights.
- ``tiny_cond``    : positive/negative CONDITIONING for the tiny model.
- ``sd15_ckpt``    : path of the cached random-weight full-size SD1.5 checkpoint.

pyproject.toml's ``pythonpath`` puts the repository root (``runner``, ``workflow_sources``) and this folder
(``support``: fixtures and helpers) on ``sys.path``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from runner import comfy_env
from support import fixtures

UNIT_DIR = Path(__file__).resolve().parent / "unit"


def boot_comfyui() -> None:
    """Put ComfyUI on ``sys.path`` and bind its ``nodes.py`` (the repository root has an ``__init__.py`` and a
    ``nodes/`` package, and pytest puts the root on ``sys.path``: without this, ``import nodes`` found ours)."""
    comfy_env.bootstrap()
    comfy_env.prefer_comfyui_on_path()
    import nodes  # noqa: F401 (binds ComfyUI's nodes.py)


def pytest_collectstart(collector):
    """Boot ComfyUI before pytest imports the first integration test module (they import comfy at the top)."""
    if isinstance(collector, pytest.Module) and UNIT_DIR not in Path(str(collector.path)).parents:
        boot_comfyui()


@pytest.fixture(autouse=True)
def _comfyui_first_on_path(request):
    if UNIT_DIR not in Path(str(request.node.path)).parents:
        comfy_env.prefer_comfyui_on_path()


@pytest.fixture(scope="session")
def comfy():
    boot_comfyui()
    comfy_env.init_all_nodes()
    import nodes

    return nodes


@pytest.fixture(scope="session")
def pack():
    return fixtures.load_pack_module()


@pytest.fixture()
def tiny_model():
    return fixtures.tiny_model(seed=0)


@pytest.fixture()
def tiny_cond():
    return fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)


@pytest.fixture(scope="session")
def sd15_ckpt():
    return fixtures.random_sd15_checkpoint()


@pytest.fixture(scope="module")
def one_thread(comfy, pack):
    """Torch on one thread for a module of tiny-model tests (fastest, and steadiest on a shared machine); the
    thread count is restored after the module."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield comfy
    torch.set_num_threads(threads)
