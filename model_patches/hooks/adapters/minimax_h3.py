"""MiniMax H3 (``comfy.ldm.minimax.model.MiniMaxH3Model``, ComfyUI 0.33+): video + audio in one packed token sequence.

- Latent: video + audio (``MiniMaxH3`` format: 4x temporal, 16x spatial); the blocks see one packed sequence
  (``PackedLayout``: text, condition / reference rows, video, audio).
- Blocks: ``blocks[i]`` as ``("double_block", i)`` dit replaces; one joint self-attention per block
  (``skip_reshape``, ``[B, H, L, D]``) over text, video and audio tokens (rows of ``PackedLayout``: 3-axis (t, h, w)
  positions), RoPE fused into the qkv normalisation inside the attention module.
- Refused: see :meth:`MiniMaxH3Adapter.unsupported`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import DitAdapter


@dataclass(frozen=True)
class MiniMaxH3Adapter(DitAdapter):
    def unsupported(self, technique):
        if technique in ("reference", "cross_window"):
            return ("MiniMax H3 runs its text, video and audio tokens as one packed sequence through one joint "
                    "self-attention per block (RoPE applied inside the attention): the pack does not yet place "
                    "extra video keys in that sequence; H3's own packed layout has a reference-image input")
        return None


def detect(diffusion_model) -> DitAdapter | None:
    dm = diffusion_model
    if type(dm).__name__ != "MiniMaxH3Model" or getattr(dm, "blocks", None) is None:
        return None
    return MiniMaxH3Adapter("minimax_h3", "MiniMax H3", tuple(("double_block", i) for i in range(len(dm.blocks))),
                            "bhld", (1, 1, 1), True)
