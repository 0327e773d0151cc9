"""Unit tests: the pure math in ``model_patches/`` (the modules without a ``comfy`` import), with torch only.

The ``pack`` fixture (tests/conftest.py) imports this repository as ``coherent_video`` without ComfyUI (the pack's
``__init__`` imports ``comfy_api`` only when ComfyUI calls its entry point). When only unit tests ran
(``make test-unit``), the session fails if any ComfyUI module was imported: the unit suite must keep running
where ComfyUI is not installed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

UNIT_DIR = Path(__file__).resolve().parent
COMFY_MODULES = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "execution", "server")


def comfy_modules_loaded() -> list[str]:
    return sorted(m for m in sys.modules if m.split(".")[0] in COMFY_MODULES)


def pytest_sessionfinish(session, exitstatus):
    items = getattr(session, "items", None) or []
    if items and all(UNIT_DIR in Path(str(i.path)).parents for i in items):
        loaded = comfy_modules_loaded()
        if loaded:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            sys.stderr.write(f"\nunit suite imported ComfyUI modules: {loaded[:10]}\n")
