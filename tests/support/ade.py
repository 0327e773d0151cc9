"""AnimateDiff-Evolved (ADE) for the interop tests: the unmodified copy in ``<repo parent>/shared/interop/``
(see its README there), loaded into the test ComfyUI with ComfyUI's own custom-node loader."""
from __future__ import annotations

import asyncio

from runner.comfy_env import ROOT

ADE_DIR = ROOT.parent / "shared" / "interop" / "ComfyUI-AnimateDiff-Evolved"
MISSING = f"AnimateDiff-Evolved not found at {ADE_DIR} (see shared/interop/README.md)"


def available() -> bool:
    return (ADE_DIR / "__init__.py").is_file()


def load_ade() -> dict:
    """ADE's nodes in ComfyUI's NODE_CLASS_MAPPINGS (loaded once); needs ComfyUI's nodes initialised."""
    import nodes

    if "ADE_AnimateDiffLoaderGen1" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.load_custom_node(str(ADE_DIR)))
    assert "ADE_AnimateDiffLoaderGen1" in nodes.NODE_CLASS_MAPPINGS, "ADE failed to load"
    return nodes.NODE_CLASS_MAPPINGS
