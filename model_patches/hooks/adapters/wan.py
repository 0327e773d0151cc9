"""Wan 2.1 / 2.2 (``comfy.ldm.wan.model.WanModel``: T2V, I2V / FLF2V with image channels, the 5B TI2V).

- Latent: ``[B, C, T, H, W]`` (``Wan21`` / ``Wan22`` formats, 4x temporal compression after the causal first frame).
- Blocks: ``blocks[i]`` as ``("double_block", i)`` dit replaces; the first ``optimized_attention`` call of a block is
  ``self_attn`` over the video tokens only (``[B, L, H*D]``), before ``cross_attn``.
- Tokens: latent frame ``t`` is the ``t``-th run of ``H*W / (ph*pw)`` tokens (time patched by 1).
- Position of extra tokens: the model's own 3-axis RoPE embedder (``rope_embedder``) at integer time ``(d, 0, 0)``,
  scaled like the model's own positions by ``rope_options["scale_t"]``; keys reaching the attention call are
  rotated already, so a recorded key moves by the rotation of its time offset.
- Context windows: core windows over latent time (``dim == 2``, ``WanContextWindowsManual``); positions restart at
  0 in every window. Nothing passes through untouched (no audio).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...dit_attention import rotate_time
from .base import DitAdapter


def _rope_fn():
    from comfy.ldm.flux.math import apply_rope1

    return apply_rope1


def rope_time_scale(options: dict) -> float:
    ro = options.get("rope_options") or {}
    return float(ro.get("scale_t", 1.0))


@dataclass(frozen=True)
class IntegerTimeRopeAdapter(DitAdapter):
    """A DiT whose RoPE takes integer (t, h, w) positions from one embedder module (``embedder`` attribute)."""

    embedder: str = ""

    def time_rotation(self, diffusion_model, p_from, p_to, options, extras, device):
        shift = float(p_to - p_from) * rope_time_scale(options)
        ids = torch.tensor([[[shift, 0.0, 0.0]]], device=device, dtype=torch.float32)
        return getattr(diffusion_model, self.embedder)(ids)          # [1, 1, 1, D/2, 2, 2]

    def rotate(self, k, layout, rotation):
        return rotate_time(k, layout, rotation, _rope_fn())


def detect(diffusion_model) -> DitAdapter | None:
    dm = diffusion_model
    blocks = getattr(dm, "blocks", None)
    if blocks is None or not hasattr(dm, "rope_embedder") or not hasattr(dm, "patch_embedding"):
        return None
    return IntegerTimeRopeAdapter("wan", "Wan 2.1/2.2", tuple(("double_block", i) for i in range(len(blocks))), "bld",
                                  tuple(int(p) for p in dm.patch_size), True, "rope_embedder")
