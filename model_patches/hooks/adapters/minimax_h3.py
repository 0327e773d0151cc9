"""MiniMax H3 (``comfy.ldm.minimax.model.MiniMaxH3Model``, ComfyUI 0.33+): video + audio in one packed token sequence.

- Latent: video + audio (``MiniMaxH3`` format: 4x temporal, 16x spatial); the blocks see one packed sequence
  (``PackedLayout``: video segment, audio segment) with 1-D position ids.
- Blocks: ``blocks[i]`` as ``("double_block", i)`` dit replaces; one joint self-attention per block
  (``skip_reshape``, ``[B, H, L, D]``) over video AND audio tokens, RoPE fused into the qkv projection.
- Refused: see :meth:`MiniMaxH3Adapter.unsupported`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import DitAdapter


@dataclass(frozen=True)
class MiniMaxH3Adapter(DitAdapter):
    def unsupported(self, technique):
        if technique in ("reference", "cross_window"):
            return ("MiniMax H3 attends over its video and audio tokens in one joint self-attention, with 1-D "
                    "positions over its packed video+audio sequence and RoPE fused into the projection: keys added "
                    "for the video would be attended by the audio tokens too, and there is no per-frame time "
                    "position to give them. Not supported on this model")
        return None


def detect(diffusion_model) -> DitAdapter | None:
    dm = diffusion_model
    if type(dm).__name__ != "MiniMaxH3Model" or getattr(dm, "blocks", None) is None:
        return None
    return MiniMaxH3Adapter("minimax_h3", "MiniMax H3", tuple(("double_block", i) for i in range(len(dm.blocks))),
                            "bhld", (1, 1, 1), True)
