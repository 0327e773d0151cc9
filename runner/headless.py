#!/usr/bin/env python3
"""Run a ComfyUI workflow JSON headless, in-process, with ComfyUI's own validation and executor.

    python -m runner WORKFLOW.json [--output-dir D] [--models-dir D] [--input-dir D]
                     [--custom-nodes-dir D] [--set NODE_ID.INPUT=VALUE ...] [--cpu] [--quiet]

WORKFLOW.json may be the UI format the frontend saves (nodes/links) or the API prompt format.
``--models-dir`` adds a folder laid out like ComfyUI's ``models/`` (checkpoints/, loras/, ...) to the
search paths, for every model folder including those node packs register while loading
(``animatediff_models/``...); ``--custom-nodes-dir`` loads the node packs in another folder; ``--set`` overrides an input after conversion (VALUE is parsed as JSON when it can be,
else taken as a string). Seeds are used as saved ("randomize" is not applied headless).
Exit code 0 on success, 1 on a validation or execution error, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

from . import comfy_env
from .workflow_format import WorkflowError, api_prompt_of, is_ui_format, ui_to_api


class RunError(Exception):
    pass


# Every key ComfyUI's PromptExecutor reads from ``cache_args`` (0.3.75 reads "lru"/"ram" per cache type;
# 0.35.1's execute_async reads cache_args["ram"] and cache_args["ram_inactive"] on every run). Zero:
# no LRU and no RAM-pressure headroom, as main.py's defaults for the classic cache.
CACHE_ARGS = {"lru": 0, "ram": 0, "ram_inactive": 0}


def parse_set(items: list[str]) -> list[tuple[str, str, object]]:
    out = []
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise RunError(f"--set {item!r}: expected NODE_ID.INPUT=VALUE")
        key, raw = item.split("=", 1)
        node_id, name = key.split(".", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.append((node_id, name, value))
    return out


class HeadlessServer:
    """What ComfyUI's PromptExecutor talks to instead of the web server: prints progress."""

    def __init__(self, prompt: dict, quiet: bool = False):
        self.prompt = prompt
        self.quiet = quiet
        self.client_id = "headless"
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}
        self._t0 = {}
        self._last_step = None

    def _say(self, msg: str):
        if not self.quiet:
            print(msg, flush=True)

    def send_sync(self, event, data, sid=None):
        if event == "executing" and isinstance(data, dict):
            node = data.get("node")
            if node is not None:
                self.last_node_id = node
                cls = self.prompt.get(str(node), {}).get("class_type", "?")
                self._t0[node] = time.perf_counter()
                self._say(f"[run] node {node} ({cls}) ...")
        elif event == "progress" and isinstance(data, dict):
            v, m = data.get("value"), data.get("max")
            if not self.quiet and (v == m or v == 1 or (m and v % max(1, m // 10) == 0)):
                self._say(f"[run]   node {data.get('node')}: step {v}/{m}")
        elif event == "execution_cached" and isinstance(data, dict) and data.get("nodes"):
            self._say(f"[run] cached: {data['nodes']}")


def _input_types_of(class_type: str):
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
    return None if cls is None else cls.INPUT_TYPES()


def _model_folder_hint(class_type: str, input_name: str) -> str | None:
    """For a file-list input (ckpt_name, lora_name...), the model folder it lists and where it searched."""
    import folder_paths

    spec = None
    it = _input_types_of(class_type) or {}
    for section in ("required", "optional"):
        if input_name in (it.get(section) or {}):
            spec = it[section][input_name]
    if not spec:
        return None
    options = spec[0] if isinstance(spec[0], (list, tuple)) else (spec[1] or {}).get("options") if len(spec) > 1 else None
    if not options:
        return None
    options = set(options)
    for folder, (paths, _exts) in folder_paths.folder_names_and_paths.items():
        try:
            names = set(folder_paths.get_filename_list(folder))
        except Exception:
            continue
        if options <= names:
            return f"model folder '{folder}', searched: {paths}"
    return None


def format_validation_errors(prompt: dict, error: dict, node_errors: dict) -> str:
    lines = []
    if error:
        lines.append(f"{error.get('message', error)}: {error.get('details', '')}".strip())
    for node_id, info in (node_errors or {}).items():
        cls = info.get("class_type") or prompt.get(node_id, {}).get("class_type", "?")
        for e in info.get("errors", []):
            inp = (e.get("extra_info") or {}).get("input_name")
            where = f"node {node_id} ({cls})" + (f" input '{inp}'" if inp else "")
            msg = f"{where}: {e.get('message')}: {e.get('details', '')}"
            if e.get("type") == "value_not_in_list" and inp:
                hint = _model_folder_hint(cls, inp)
                if hint:
                    msg += f" -- missing file; {hint}"
            lines.append(msg)
    return "\n".join(lines)


def load_workflow(path: str) -> tuple[dict, str]:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise WorkflowError(f"not valid JSON ({e})") from None
    if is_ui_format(data):
        return ui_to_api(data, _input_types_of), "ui"
    return api_prompt_of(data), "api"


def apply_node_replacements(prompt: dict) -> None:
    """As the server does for every posted prompt (ComfyUI 0.33's /prompt): replace node classes that are gone
    (renamed or merged, e.g. ``T2IAdapterLoader`` -> ``ControlNetLoader``) by their registered replacements.
    Feature-detected: a ComfyUI without ``PromptServer.node_replace_manager`` (0.3.75) leaves the prompt as is."""
    manager = getattr(comfy_env.prompt_server(), "node_replace_manager", None)
    if manager is not None and hasattr(manager, "apply_replacements"):
        manager.apply_replacements(prompt)


def apply_sets(prompt: dict, sets) -> None:
    for node_id, name, value in sets:
        if node_id not in prompt:
            raise RunError(f"--set {node_id}.{name}: no node {node_id} in the workflow (nodes: {sorted(prompt)})")
        cls = prompt[node_id]["class_type"]
        it = _input_types_of(cls) or {}
        known = set((it.get("required") or {})) | set((it.get("optional") or {}))
        if name not in known:
            raise RunError(f"--set {node_id}.{name}: node {node_id} ({cls}) has no input '{name}' "
                           f"(inputs: {sorted(known)})")
        prompt[node_id]["inputs"][name] = value


def register_models_dir(md: str) -> None:
    """Add ``md/<folder>`` for every model folder ComfyUI knows now (core's and those packs registered while
    loading, e.g. AnimateDiff-Evolved's ``animatediff_models``), and the legacy names unet/ and clip/."""
    import folder_paths

    for folder in list(folder_paths.folder_names_and_paths):
        sub = os.path.join(md, folder)
        if folder != "custom_nodes" and os.path.isdir(sub):
            folder_paths.add_model_folder_path(folder, os.path.abspath(sub))
    # legacy folder names map onto their current keys (unet -> diffusion_models, clip -> text_encoders)
    for legacy, current in (("unet", "diffusion_models"), ("clip", "text_encoders")):
        sub = os.path.join(md, legacy)
        if os.path.isdir(sub) and current in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(current, os.path.abspath(sub))


def setup_comfy(output_dir: str | None, input_dir: str | None, models_dirs: list[str], cpu: bool | None,
                custom_nodes_dirs: list[str] | None = None):
    comfy_env.bootstrap(cpu=cpu)
    import folder_paths

    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        folder_paths.set_output_directory(os.path.abspath(output_dir))
    if input_dir:
        if not os.path.isdir(input_dir):
            raise RunError(f"--input-dir {input_dir}: not a folder")
        folder_paths.set_input_directory(os.path.abspath(input_dir))
    for md in models_dirs or []:
        if not os.path.isdir(md):
            raise RunError(f"--models-dir {md}: not a folder")
    for cd in custom_nodes_dirs or []:  # as extra_model_paths.yaml's custom_nodes: every pack in it loads
        if not os.path.isdir(cd):
            raise RunError(f"--custom-nodes-dir {cd}: not a folder")
        folder_paths.add_model_folder_path("custom_nodes", os.path.abspath(cd))
    comfy_env.init_all_nodes()
    for md in models_dirs or []:  # after the packs loaded: their own model folders are known now
        register_models_dir(md)
    import comfy.utils

    def hook(value, total, preview_image, prompt_id=None, node_id=None):
        import comfy.model_management

        comfy.model_management.throw_exception_if_processing_interrupted()
        if _SERVER is not None:
            _SERVER.send_sync("progress", {"value": value, "max": total,
                                           "node": node_id or _SERVER.last_node_id}, _SERVER.client_id)

    comfy.utils.set_progress_bar_global_hook(hook)


_SERVER: HeadlessServer | None = None


def run(workflow: str, output_dir: str | None = None, models_dirs: list[str] | None = None,
        input_dir: str | None = None, sets: list[str] | None = None, cpu: bool | None = None,
        quiet: bool = False, custom_nodes_dirs: list[str] | None = None) -> dict:
    """Run a workflow in-process. Returns {"prompt", "outputs", "files"}; raises RunError on failure."""
    global _SERVER
    import asyncio

    setup_comfy(output_dir, input_dir, models_dirs or [], cpu, custom_nodes_dirs)
    import execution
    import folder_paths

    try:
        prompt, fmt = load_workflow(workflow)
    except WorkflowError as e:
        raise RunError(f"{workflow}: {e}") from None
    apply_node_replacements(prompt)
    apply_sets(prompt, parse_set(sets or []))
    prompt_id = str(uuid.uuid4())
    valid, error, good_outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
    if not valid:
        raise RunError("validation failed:\n" + format_validation_errors(prompt, error, node_errors))
    _SERVER = HeadlessServer(prompt, quiet=quiet)
    executor = execution.PromptExecutor(_SERVER, cache_type=execution.CacheType.CLASSIC,
                                        cache_args=dict(CACHE_ARGS))
    t0 = time.perf_counter()
    if not quiet:
        print(f"[run] {workflow} ({fmt} format, {len(prompt)} nodes), outputs: {good_outputs}", flush=True)
    executor.execute(prompt, prompt_id, {"client_id": "headless"}, good_outputs)
    if not executor.success:
        for event, data in executor.status_messages:
            if event == "execution_error":
                raise RunError(f"node {data['node_id']} ({data['node_type']}): {data['exception_type']}: "
                               f"{data['exception_message']}")
            if event == "execution_interrupted":
                raise RunError(f"interrupted at node {data['node_id']} ({data['node_type']})")
        raise RunError("execution failed")
    out_root = folder_paths.get_output_directory()
    files = []
    for node_id, result in executor.history_result.get("outputs", {}).items():
        for key in ("images", "gifs", "videos", "animated", "audio"):
            for item in result.get(key, []) or []:
                if isinstance(item, dict) and item.get("filename") and item.get("type", "output") == "output":
                    files.append(os.path.join(out_root, item.get("subfolder", ""), item["filename"]))
    if not quiet:
        print(f"[run] done in {time.perf_counter() - t0:.1f}s; {len(files)} file(s) in {out_root}", flush=True)
        for f in files:
            print(f"[run]   {f}", flush=True)
    return {"prompt": prompt, "outputs": executor.history_result.get("outputs", {}), "files": files}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runner", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("workflow")
    ap.add_argument("--output-dir", default=None, help="where outputs go (default: ComfyUI's output/)")
    ap.add_argument("--models-dir", action="append", default=[], help="a folder laid out like ComfyUI's models/")
    ap.add_argument("--input-dir", default=None, help="ComfyUI's input folder for Load* nodes")
    ap.add_argument("--custom-nodes-dir", action="append", default=[],
                    help="an extra folder of node packs to load (as extra_model_paths.yaml's custom_nodes)")
    ap.add_argument("--set", action="append", default=[], metavar="NODE_ID.INPUT=VALUE")
    ap.add_argument("--cpu", action="store_true", default=None, help="force CPU even when CUDA is present")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.workflow):
        print(f"error: {a.workflow}: no such file", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    try:
        run(a.workflow, a.output_dir, a.models_dir, a.input_dir, a.set, a.cpu, a.quiet, a.custom_nodes_dir)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0

