"""ComfyUI-CoherentVideo: temporal-coherence nodes for text-to-video in ComfyUI.

Registered through ComfyUI's V3 extension entry point. Importing this pack imports nothing from ComfyUI:
``comfy_api`` is imported when ComfyUI calls :func:`comfy_entrypoint`, so the pure math in ``model_patches/``
imports (and is unit-tested) without ComfyUI. Node modules are collected from ``nodes/``.

``WEB_DIRECTORY``: ComfyUI serves this folder at ``/extensions/<pack folder>/``; the frontend's node help panel
reads ``docs/<NodeId>.md`` there (written by ``python -m scripts.make_docs``).
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    from .nodes import all_nodes

    class CoherentVideoExtension(ComfyExtension):
        async def get_node_list(self) -> list:
            return all_nodes()

    return CoherentVideoExtension()
