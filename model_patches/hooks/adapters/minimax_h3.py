"""MiniMax H3 (``comfy.ldm.minimax.model.MiniMaxH3Model``, ComfyUI 0.33+): video + audio in one packed token sequence.

- Latent: video ``[1, 24, T, H, W]`` + audio ``[1, 32, 2, T_a]`` (``MiniMaxH3`` format: 4x temporal, 16x spatial;
  the VAE restarts its causal chunk every 5 latent frames, which hold (1, 4, 4, 4, 4) pixel frames). The sampler
  packs it flat (``latent_shapes``: video first); batch 1 only (CFG branches are separate calls).
- Blocks: ``blocks[i]`` as ``("double_block", i)`` dit replaces; ``args["img"]`` is the packed sequence
  ``[S, hidden]`` (no batch axis), rows in the order of ``PackedLayout``: text | keyframe cond / reference rows |
  target audio | target video. The target video is always the last segment (the model's own comment: "target
  audio then target video, always the last two segments"), so the video tokens of a call are the last
  ``b - a`` rows of the last entry of ``args["mod_segments"]``. One joint self-attention per block through
  ``optimized_attention(q, k, v, heads, skip_reshape=True)`` (``[1, H, S, D]``), RoPE fused into the per-head
  RMSNorm before the call, so the keys that reach it carry RoPE.
- Extra keys (reference / anchor) are attended by the video queries only (``video_queries_only``): text and audio
  queries see the model's own keys; the audio part of the prediction is taken from a pass without our patches
  (``other_parts_untouched``, :class:`..dit.UntouchedParts`), bit for bit the unpatched model's.
- Position of extra tokens: 3-axis RoPE over positions ``(t, h, w)`` (``rope_freqs``: ``pos * inv_freq`` per axis,
  partial split-half rotary over the first 3/4 of the head). The time axis is the model's own video time grid
  (``_video_t_spans``: ``5/3`` per pixel frame, so latent frame ``k`` spans ``5/3 * (1, 4, 4, 4, 4)[k % 5]``);
  latent frame ``p`` of a call sits at ``origin + sum(spans of frames 0..p-1)``, and a frame in front of frame 0
  (``p < 0``) ``-p`` four-pixel-frame latent frames earlier (``p * 20/3``). A key recorded at ``a`` moves to ``b`` by
  the model's own rotation table (``rope_rotation_table(rope_freqs([(T(b) - T(a), 0, 0)]))``) applied with the
  split-half RoPE the model uses (``comfy.quant_ops.ck.apply_rope_split_half1`` over the rotated head prefix).
- Reference write pass: the one-frame reference latent packed with an empty audio part (``write_inputs``), the
  call's text and H3 payload (same origin of the video time grid), without the denoise masks.
- Context windows: ComfyUI 0.33's core windows cannot window the packed latent (``MiniMaxH3`` has no
  ``map_context_window_to_modalities``; core raises ``NotImplementedError`` on the unpatched model, and they would
  cut the audio on the video's dim 2, where it has 2 rows): :meth:`MiniMaxH3Adapter.core_windows_unsupported` names
  that where our nodes meet core windows. The pack's multi-stream handler (``hooks/stream_windows.py``) windows it,
  the audio on its last axis (:meth:`MiniMaxH3Adapter.stream_time_axes`).
- Refused: the first-frame anchor (see :meth:`MiniMaxH3Adapter.unsupported`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import DitAdapter

FRAME_PER_TOKEN = (1, 4, 4, 4, 4)   # comfy.ldm.minimax.model.FRAME_PER_TOKEN (read from the model where it has it)
FRAME_RESCALE = 5.0 / 3.0


def _model_module():
    import comfy.ldm.minimax.model as M

    return M


def video_time(p: int) -> float:
    """Time coordinate of local latent frame ``p`` relative to the call's frame 0, on the model's video grid."""
    M = _model_module()
    per, rescale = getattr(M, "FRAME_PER_TOKEN", FRAME_PER_TOKEN), getattr(M, "FRAME_RESCALE", FRAME_RESCALE)
    if p >= 0:
        return float(sum(rescale * per[k % len(per)] for k in range(p)))
    return float(p * rescale * max(per))


@dataclass(frozen=True)
class MiniMaxH3Adapter(DitAdapter):
    other_parts_untouched = True
    video_queries_only = True

    def unsupported(self, technique):
        if technique == "anchor_first_frame":
            return ("MiniMax H3 samples video and audio as one packed latent and conditions on a start image through "
                    "its own keyframe rows (ComfyUI's MiniMax H3 image-to-video conditioning); hold frame 0 there and "
                    "leave anchor_first_frame off")
        return None

    def stream_time_axes(self, latent_shapes):
        # video [1, 24, T, H, W]: dim 2; audio [1, 32, 2, T_a]: its last axis
        return (2,) + tuple(len(s) - 1 for s in latent_shapes[1:])

    def core_windows_unsupported(self, base_model, handler=None):
        if getattr(handler, "cuts_each_stream_on_its_time_axis", False) or hasattr(base_model, "map_context_window_to_modalities"):
            return None
        return (f"core context windows of this ComfyUI cannot window MiniMax H3's packed video + audio latent: "
                f"its {type(base_model).__name__} model has no map_context_window_to_modalities (the map from a "
                "video window to its audio span that core windows need for a multimodal latent; they fail on this "
                "model without our nodes too), and its audio latent [1, 32, 2, T_a] has time on its last axis, not "
                "the video's dim 2. Use the pack's Context Windows (audio + video) node, which cuts each stream on its "
                "own time axis, or sample H3 without context windows (it attends across all its frames)")

    def video_channels(self, model) -> int:
        dm = model.get_model_object("diffusion_model")
        return int(getattr(dm, "latents_dim", 24))

    def video_tokens(self, args: dict) -> int:
        a, b = args["mod_segments"][-1][:2]   # the target video: the packed sequence's last segment
        return int(b) - int(a)

    def write_inputs(self, x_ref, kwargs: dict):
        """(x, kwargs) of the reference write pass: the one-frame video latent packed with an empty audio part, the
        model's own packed form; the denoise masks belong to the sampled latent, not the reference."""
        import comfy.utils

        shapes = kwargs.get("latent_shapes")
        audio = shapes[1] if shapes and len(shapes) > 1 else (1, 32, 2, 0)
        empty = x_ref.new_zeros((x_ref.shape[0], *tuple(audio[1:-1]), 0))
        x, new_shapes = comfy.utils.pack_latents([x_ref, empty])
        kw = {k: v for k, v in kwargs.items() if k not in ("denoise_mask", "audio_denoise_mask")}
        kw["latent_shapes"] = new_shapes
        return x, kw

    def time_rotation(self, diffusion_model, p_from, p_to, options, extras, device):
        M = _model_module()
        dt = video_time(p_to) - video_time(p_from)
        pos = torch.tensor([[dt, 0.0, 0.0]], dtype=torch.float64)
        return M.rope_rotation_table(diffusion_model.rope_freqs(pos, device), torch.float32)  # [1, 1, 1, r/2, 2, 2]

    def rotate(self, k, layout, rotation):
        import comfy.quant_ops

        rot = rotation.shape[-3] * 2
        x = k.float()
        if layout != "bhld":
            raise ValueError(f"MiniMax H3's self-attention keys are [B, H, L, D] (bhld), not {layout}")
        head = comfy.quant_ops.ck.apply_rope_split_half1(x[..., :rot].contiguous(), rotation)
        return torch.cat((head, x[..., rot:]), dim=-1).to(k.dtype)


def detect(diffusion_model) -> DitAdapter | None:
    dm = diffusion_model
    if type(dm).__name__ != "MiniMaxH3Model" or getattr(dm, "blocks", None) is None:
        return None
    return MiniMaxH3Adapter("minimax_h3", "MiniMax H3", tuple(("double_block", i) for i in range(len(dm.blocks))),
                            "bhld", tuple(int(p) for p in getattr(dm, "patch_size", (1, 2, 2))), False)
