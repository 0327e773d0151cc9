"""HunyuanVideo / HunyuanVideo 1.5 (``comfy.ldm.hunyuan_video.model.HunyuanVideo`` with a 3-D patch).

- Latent: ``[B, C, T, H, W]`` (4x temporal compression after the causal first frame).
- Blocks: ``double_blocks[i]`` as ``("double_block", i)`` dit replaces (the single blocks are not patched); the
  block's one joint image+text attention (``[B, H, L, D]``, ``skip_reshape``) is its first ``optimized_attention``
  call. Token order: image tokens first up to ComfyUI 0.3.x (the blocks are built with ``flipped_img_txt=True``),
  text tokens first from 0.33 on (0.33 dropped the flag, ``comfy/ldm/flux/layers.py`` DoubleStreamBlock): read from
  the block, never assumed.
- Position of extra tokens: the model's own RoPE embedder (``pe_embedder``) at integer time ``(d, 0, 0)``; its own
  image reference (``ref_latent``) sits at time -1, where ours goes too.
- Context windows: core windows over latent time (``dim == 2``). No audio.
- Refused: the first-frame anchor (a noise mask): in ComfyUI 0.3.75 its concat conditioning takes the mask's
  channels, so any latent with a noise mask fails in the model itself.
"""
from __future__ import annotations

from .base import DitAdapter
from .wan import IntegerTimeRopeAdapter


class HunyuanVideoAdapter(IntegerTimeRopeAdapter):
    def unsupported(self, technique):
        if technique == "anchor_first_frame":
            return ("HunyuanVideo 1.5 in ComfyUI 0.3.75 fails on any latent with a noise mask (its concat conditioning "
                    "takes the mask's channels), and the anchor is one; turn it off for this model")
        return None


def detect(diffusion_model) -> DitAdapter | None:
    dm = diffusion_model
    doubles = getattr(dm, "double_blocks", None)
    if doubles is None or not hasattr(dm, "pe_embedder") or type(dm).__name__ != "HunyuanVideo":
        return None
    patch = tuple(int(p) for p in dm.patch_size)
    if len(patch) != 3:
        return None  # the image (2-D) variant
    image_first = bool(getattr(doubles[0], "flipped_img_txt", False)) if len(doubles) else True
    return HunyuanVideoAdapter("hunyuan_video", "HunyuanVideo 1.5", tuple(("double_block", i) for i in range(len(doubles))),
                               "bhld", patch, image_first, "pe_embedder")
