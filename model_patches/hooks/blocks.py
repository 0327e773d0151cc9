"""Block discovery for the frame-batch (U-Net) techniques: the model's family adapter says where its self-attention
blocks and feature points are (:mod:`.adapters`); a technique's hooks ask this module for block keys and never
branch on the architecture themselves.
"""
from __future__ import annotations

from ..errors import ParameterError
from .adapters import AttentionBlock, UNetAdapter, adapter_for
from .adapters.sd_unet import attention_blocks

__all__ = ["AttentionBlock", "adain_points", "architecture", "attention_blocks", "model_adapter", "model_blocks",
           "select_blocks"]


def select_blocks(blocks: list[AttentionBlock], input_blocks: bool, middle_block: bool, output_blocks: bool,
                  min_level: int = 0) -> list[tuple]:
    """Keys of the blocks in the chosen sections at resolution level >= ``min_level``."""
    ok = {"input": input_blocks, "middle": middle_block, "output": output_blocks}
    return [b.key for b in blocks if ok[b.key[0]] and b.level >= min_level]


def model_adapter(model) -> UNetAdapter:
    """The frame-batch adapter of a MODEL; :class:`ParameterError` on ``model`` when its family has none."""
    a = adapter_for(model)
    if a is None or a.kind != "unet":
        raise ParameterError("model", "no U-Net self-attention blocks found; the frame-batch attention patches "
                                      "serve the image U-Nets of the README's model-support table")
    return a


def model_blocks(model):
    """``(diffusion_model, self-attention blocks)`` of a MODEL; :class:`ParameterError` on ``model`` when
    no supported architecture is found."""
    a = model_adapter(model)
    return model.get_model_object("diffusion_model"), list(a.blocks)


def adain_points(model, adain_weight: float) -> list[tuple]:
    """The AdaIN points of a MODEL for ``adain_weight`` (:meth:`.adapters.UNetAdapter.adain_points`)."""
    return model_adapter(model).adain_points(adain_weight)


def architecture(model) -> str:
    """``"dit"`` for a video transformer (its blocks: :mod:`.dit`), else ``"unet"``. The nodes ask this rather than
    looking at the model themselves."""
    a = adapter_for(model)
    return a.kind if a is not None else "unet"
