"""ComfyUI-CoherentVideo: temporal-coherence nodes for text-to-video in ComfyUI.

Registered through ComfyUI's V3 extension entry point. Importing this pack imports
torch and comfy only; node modules are collected from ``nodes/``.
"""
from comfy_api.latest import ComfyExtension, io


class CoherentVideoExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .nodes import all_nodes

        return all_nodes()


async def comfy_entrypoint() -> CoherentVideoExtension:
    return CoherentVideoExtension()
