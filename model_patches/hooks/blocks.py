"""Block discovery: where a model's self-attention blocks and feature points are.

U-Net (SD1.x/SD2/SDXL-style: input/middle/output blocks with SpatialTransformers) now. A technique's hooks
ask this module for block keys and never branch on the architecture themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParameterError


@dataclass(frozen=True)
class AttentionBlock:
    """One self-attention (attn1) of the U-Net: its replace key, resolution level and width."""

    key: tuple   # (section, block id, index inside the SpatialTransformer) as attn1 replace keys it
    level: int   # 0 = latent resolution, 1 = half, ...
    dim: int     # channels of the attention input


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


def adain_points(diffusion_model, adain_weight: float) -> list[tuple]:
    """AdaIN points, gated like reference-only's ``gn_auto_machine_weight``: the middle block output
    (weight 0) and then outward; a point with depth weight ``g`` is used when ``0 < g <= adain_weight``
    (or always for the middle when ``adain_weight > 0``). Keys: ``("input", i)`` = output of input block
    ``i``; ``("output", i)`` = the input of output block ``i`` (``("output", 0)`` = the middle output)."""
    if adain_weight <= 0:
        return []
    n_in = len(getattr(diffusion_model, "input_blocks", []))
    n_out = len(getattr(diffusion_model, "output_blocks", []))
    points = [(("output", 0), 0.0)]
    points += [(("input", i), (n_in - i) / max(n_in - 1, 1)) for i in range(1, n_in)]
    points += [(("output", i), i / max(n_out, 1)) for i in range(1, n_out)]
    return [k for k, g in points if g <= adain_weight]


def select_blocks(blocks: list[AttentionBlock], input_blocks: bool, middle_block: bool, output_blocks: bool,
                  min_level: int = 0) -> list[tuple]:
    """Keys of the blocks in the chosen sections at resolution level >= ``min_level``."""
    ok = {"input": input_blocks, "middle": middle_block, "output": output_blocks}
    return [b.key for b in blocks if ok[b.key[0]] and b.level >= min_level]


def model_blocks(model):
    """``(diffusion_model, self-attention blocks)`` of a MODEL; :class:`ParameterError` on ``model`` when
    no supported architecture is found."""
    dm = model.get_model_object("diffusion_model")
    blocks = attention_blocks(dm)
    if not blocks:
        raise ParameterError("model", "no U-Net self-attention blocks found; only SD1.x/SD2/SDXL-style "
                                      "U-Nets (input/middle/output blocks with SpatialTransformers) are supported")
    return dm, blocks


def architecture(model) -> str:
    """``"dit"`` for a DiT video model (Wan, HunyuanVideo, LTX-Video; their blocks: :mod:`.dit`), else ``"unet"``.
    The nodes ask this rather than looking at the model themselves."""
    from .dit import is_video_dit

    return "dit" if is_video_dit(model) else "unet"
