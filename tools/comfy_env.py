"""Locate a ComfyUI install and import it in-process (tests, benchmarks, the headless runner).

Resolution order: $COMFYUI_PATH, then the path `make setup` recorded in .venv/comfyui_path,
then .comfyui/ComfyUI. Call :func:`bootstrap` before importing anything from ``comfy``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK_NAME = "ComfyUI-CoherentVideo"


def comfyui_path() -> Path:
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return Path(env).resolve()
    recorded = ROOT / ".venv" / "comfyui_path"
    if recorded.is_file():
        return Path(recorded.read_text().strip())
    return ROOT / ".comfyui" / "ComfyUI"


_BOOTED = False


def bootstrap(cpu: bool | None = None) -> Path:
    """Put ComfyUI on sys.path with default CLI args (CPU when no CUDA). Idempotent."""
    global _BOOTED
    path = comfyui_path()
    if _BOOTED:
        return path
    if not (path / "main.py").is_file():
        raise RuntimeError(f"ComfyUI not found at {path}: run `make setup` or set COMFYUI_PATH")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    import torch
    import utils.extra_config  # noqa: F401  (as main.py: bind ComfyUI's `utils` package before nodes.py puts comfy/ on sys.path)
    import utils.install_util  # noqa: F401
    from comfy.cli_args import args  # default args: parsing is off unless main.py enables it

    if cpu is None:
        cpu = not torch.cuda.is_available()
    args.cpu = bool(cpu)
    if os.environ.get("COHERENT_VIDEO_DETERMINISTIC", "1") == "1":
        args.deterministic = True
    _BOOTED = True
    return path


def load_pack_module():
    """Import this repository as a package named ``coherent_video`` (the way ComfyUI imports a node pack)."""
    import importlib.util

    if "coherent_video" in sys.modules:
        return sys.modules["coherent_video"]
    spec = importlib.util.spec_from_file_location(
        "coherent_video", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["coherent_video"] = mod
    spec.loader.exec_module(mod)
    return mod


async def _init_nodes():
    import nodes

    await nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False)


def init_all_nodes() -> None:
    """Load ComfyUI's extra nodes and custom nodes (this pack is linked into custom_nodes/)."""
    import asyncio
    import nodes

    if getattr(init_all_nodes, "_done", False):
        return
    asyncio.run(_init_nodes())
    init_all_nodes._done = True
