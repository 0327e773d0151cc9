"""SD1.x / SD2 / SDXL-style U-Nets (``comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel``): input, middle and
output blocks with SpatialTransformers; video = a batch of frames (frames are the batch axis, one image latent each);
attention patched per ``BasicTransformerBlock.attn1`` (``set_model_attn1_replace``); AdaIN points at the block
boundaries (``input_block_patch`` / ``output_block_patch``); context windows: AnimateDiff-Evolved's ``sub_idxs`` or
core windows over the batch axis (``dim == 0``). Nothing in the latent passes through untouched."""
from __future__ import annotations

from .base import AttentionBlock, UNetAdapter


def _has_class(module, name: str) -> bool:
    return any(type(m).__name__ == name for m in module.modules())


def attention_blocks(diffusion_model) -> list[AttentionBlock]:
    """Every ``BasicTransformerBlock.attn1`` of an SD1.x/SD2/SDXL-style U-Net, in forward order."""
    blocks, level = [], 0
    sections = []
    for i, mod in enumerate(getattr(diffusion_model, "input_blocks", [])):
        sections.append(("input", i, mod, level))
        if _has_class(mod, "Downsample"):
            level += 1
    middle = getattr(diffusion_model, "middle_block", None)
    if middle is not None:
        sections.append(("middle", 0, middle, level))
    for i, mod in enumerate(getattr(diffusion_model, "output_blocks", [])):
        sections.append(("output", i, mod, level))
        if _has_class(mod, "Upsample"):
            level -= 1
    for name, i, mod, lvl in sections:
        for sub in mod.children() if hasattr(mod, "children") else []:
            tblocks = getattr(sub, "transformer_blocks", None)
            if tblocks is None:
                continue
            for j, tb in enumerate(tblocks):
                attn1 = getattr(tb, "attn1", None)
                if attn1 is None:
                    continue
                blocks.append(AttentionBlock((name, i, j), lvl, int(attn1.to_q.in_features)))
    return blocks


def detect(diffusion_model) -> UNetAdapter | None:
    if getattr(diffusion_model, "input_blocks", None) is None:
        return None
    blocks = attention_blocks(diffusion_model)
    if not blocks:
        return None
    return UNetAdapter("sd_unet", "SD1.x/SD2/SDXL U-Net", tuple(blocks),
                       len(getattr(diffusion_model, "input_blocks", [])),
                       len(getattr(diffusion_model, "output_blocks", [])))
