"""Thin ComfyUI nodes: schema, tooltips, input checks and wiring. One module per technique.

Each module lists its node classes in ``NODES``; :func:`all_nodes` collects them.
"""
import importlib
import pkgutil


def all_nodes() -> list:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "NODES", []))
    return found
