"""The headless workflow runner: ``python -m runner WORKFLOW.json [...]`` from the repository root.

Public API (what tests, benchmarks and the workflow sources use; nothing here is imported by the pack):

- ComfyUI in-process: :func:`bootstrap` (ComfyUI on ``sys.path``, default CLI args), :func:`init_all_nodes`
  (core's extra nodes and the custom-node packs), :func:`comfyui_path`, :func:`prefer_comfyui_on_path`,
  ``ROOT`` (this repository) and ``PACK_NAME``;
- running: :func:`run` (validate and execute one workflow file, returns its outputs), :func:`main` (the CLI),
  :class:`RunError`, :func:`load_workflow` (a UI or API file to an API prompt), :func:`setup_comfy`,
  :func:`register_models_dir`;
- the UI-to-API converter: :func:`ui_to_api`, :func:`api_prompt_of`, :func:`is_ui_format`,
  :func:`ordered_inputs`, :func:`is_widget`, :func:`widget_layout`, :class:`WorkflowError`.

Importing this package imports no ComfyUI module; :func:`bootstrap` does, when called.
"""
from .comfy_env import PACK_NAME, ROOT, bootstrap, comfyui_path, init_all_nodes, prefer_comfyui_on_path
from .headless import CACHE_ARGS, RunError, load_workflow, main, register_models_dir, run, setup_comfy
from .workflow_format import WorkflowError, api_prompt_of, is_ui_format, is_widget, ordered_inputs, ui_to_api, widget_layout

__all__ = ["PACK_NAME", "ROOT", "bootstrap", "comfyui_path", "init_all_nodes", "prefer_comfyui_on_path", "CACHE_ARGS",
           "RunError", "load_workflow", "main", "register_models_dir", "run", "setup_comfy", "WorkflowError", "api_prompt_of", "is_ui_format",
           "is_widget", "ordered_inputs", "ui_to_api", "widget_layout"]
