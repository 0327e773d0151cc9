"""Locate a ComfyUI install and import it in-process (the runner, tests, benchmarks, workflow sources).

Resolution order: $COMFYUI_PATH, then the path `make setup` recorded in the running venv's ``comfyui_path``
(``.venv/`` for ComfyUI 0.3.75, ``.venv-0.33/`` for ``make setup COMFY=0.33``), then .venv/comfyui_path,
then .comfyui/ComfyUI. Call :func:`bootstrap` before importing anything from ``comfy``.

This is the repository's one place that changes ``sys.path``: ComfyUI is not an installed package, so its
folder goes first on the path (before the repository root, whose ``nodes/`` package would otherwise hide
ComfyUI's ``nodes.py``). Everything else is imported from the repository root (``python -m ...``, or
pytest's ``pythonpath`` in pyproject.toml).
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
    for recorded in (Path(sys.prefix) / "comfyui_path", ROOT / ".venv" / "comfyui_path"):
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
    try:  # optional: nothing here needs it, only app/frontend_management.py (the server's frontend checks) does
        import utils.install_util  # noqa: F401
    except ImportError:
        # utils/install_util.py holds the requirements helpers of the frontend-package checks and changes with them
        # upstream: 0.3.75's frontend_management imports requirements_path from it, 0.33's (the checks generalized to
        # every comfy* package, Comfy-Org/ComfyUI#13875) get_required_packages_versions. A ComfyUI that moves or
        # drops it still boots here.
        pass
    from comfy.cli_args import args  # default args: parsing is off unless main.py enables it

    if cpu is None:
        cpu = not torch.cuda.is_available()
    args.cpu = bool(cpu)
    if os.environ.get("COHERENT_VIDEO_DETERMINISTIC", "1") == "1":
        args.deterministic = True
    _BOOTED = True
    return path


def prefer_comfyui_on_path() -> None:
    """Keep ComfyUI's folder first on ``sys.path``: its top-level ``nodes``/``utils`` must win over
    this repository's ``nodes/`` package when a runner (``python -m pytest`` from the repository root,
    pytest 9's rootdir handling) puts the repository in front of it after :func:`bootstrap`."""
    path = str(comfyui_path())
    if sys.path and sys.path[0] == path:
        return
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    mod = sys.modules.get("nodes")
    if mod is not None and Path(getattr(mod, "__file__", "") or "").resolve().parent == ROOT / "nodes":
        del sys.modules["nodes"]


async def _init_nodes():
    import nodes

    await nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False)


_LOOP = None  # the event loop the PromptServer holds (never run: nothing listens; kept open, see prompt_server)


def prompt_server():
    """ComfyUI's ``server.PromptServer``, created once as main.py creates it before loading the extra nodes, but
    never started (no port, no routes added, no prompt worker). Returns ``PromptServer.instance``.

    Nodes and extensions expect it while loading and running: ComfyUI 0.33's ``comfy_extras/nodes_replacements.py``
    registers its node replacements through ``ComfyAPI.node_replacement.register`` ->
    ``PromptServer.instance.node_replace_manager`` in ``on_load`` (without an instance: "'PromptServer' has no
    attribute 'instance'", IMPORT FAILED); node packs add routes at import (``PromptServer.instance.routes``) and
    core nodes send progress text (``send_progress_text``) while running. Its event loop stays open and idle, so
    ``send_sync`` from such nodes queues the message instead of raising."""
    global _LOOP
    import asyncio

    import server

    instance = getattr(server.PromptServer, "instance", None)
    if instance is None:
        _LOOP = asyncio.new_event_loop()
        instance = server.PromptServer(_LOOP)
    return instance


def init_all_nodes() -> None:
    """Load ComfyUI's extra nodes and custom nodes (this pack is linked into custom_nodes/), with a PromptServer
    instance in place first (:func:`prompt_server`), as main.py does."""
    import asyncio

    if getattr(init_all_nodes, "_done", False):
        return
    prefer_comfyui_on_path()
    prompt_server()
    asyncio.run(_init_nodes())
    init_all_nodes._done = True
