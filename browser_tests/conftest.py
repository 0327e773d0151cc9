"""ComfyUI first on sys.path before the browser tests import anything (the repository's own ``nodes/`` package
would hide ComfyUI's ``nodes.py``). pyproject.toml's pytest ``pythonpath`` puts the repository root and tests/
(the ``support`` package: the server helper, the fixtures) on the path."""
from runner import comfy_env

comfy_env.bootstrap()
