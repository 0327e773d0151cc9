"""One adapter per model family: everything the techniques need to know about a model, in one place each.

``adapter_for(model)`` (a ModelPatcher or its diffusion model) returns the family's adapter (:mod:`.base`) or None.
Adding a family = one module here with a ``detect(diffusion_model)`` + its fixture in ``tests/support/families.py``.
The technique modules in ``hooks/`` ask the adapter and never name a family (tests/test_architecture_layers.py).
"""
from __future__ import annotations

from . import hunyuan_video, ltxv, minimax_h3, sd_unet, wan
from .base import Adapter, AttentionBlock, DitAdapter, UNetAdapter

__all__ = ["Adapter", "AttentionBlock", "DitAdapter", "UNetAdapter", "adapter_for", "diffusion_model_of"]

_DETECTORS = (sd_unet.detect, wan.detect, hunyuan_video.detect, ltxv.detect, minimax_h3.detect)


def diffusion_model_of(model_or_diffusion_model):
    get = getattr(model_or_diffusion_model, "get_model_object", None)
    return get("diffusion_model") if get is not None else model_or_diffusion_model


def adapter_for(model_or_diffusion_model) -> Adapter | None:
    dm = diffusion_model_of(model_or_diffusion_model)
    for detect in _DETECTORS:
        a = detect(dm)
        if a is not None:
            return a
    return None
