"""LTX-Video (``comfy.ldm.lightricks.model.LTXVModel``) and LTX-2 (``av_model.LTXAVModel``, video + audio).

- Latent: ``[B, 128, T, H, W]`` (``LTXV`` format, 8x temporal after the causal first frame, 32x spatial).
  LTX-2's latent is a (video, audio) pair; only the video part is described here.
- Blocks: ``transformer_blocks[i]`` as ``("double_block", i)`` dit replaces (both ComfyUI 0.3.75 and 0.33). The
  first ``optimized_attention`` call of a block with as many keys as queries is ``attn1``, the video
  self-attention (``[B, L, H*D]``); ``attn2`` (text) and, on LTX-2, the audio and audio/video attentions pass through.
  With 0.33's Spatio-Temporal Guidance the self-attention makes no call at all (then nothing is added).
- Tokens: patch (1, 1, 1); latent frame ``t`` is the ``t``-th run of ``H*W`` tokens; keyframe guides
  (``LTXVAddGuide``) append their tokens after the video's.
- Position of extra tokens: LTX's RoPE takes pixel coordinates, time in seconds: latent frame ``t`` sits at pixel
  frame ``max(0, 8 t + 1 - 8)`` (causal positioning) / ``frame_rate``. A key recorded at latent frame ``a`` moves
  to ``b`` by the model's own coordinate-to-frequency path at ``(time(b), 0, 0)`` composed with the inverse of the
  one at ``(time(a), 0, 0)`` (angles are affine in the coordinate, so the spatial part cancels). Frames in front
  of frame 0 are 8 pixel frames apart, as the model's frames after the first are.
- Context windows: core windows over latent time (``LTXVContextWindows``, ``dim == 2``); positions restart at 0.
- LTX-2's reference write pass: see :class:`LtxAvAdapter`.

Version difference (feature-detected): ComfyUI 0.33 builds RoPE in the model (``_prepare_positional_embeddings``,
(matrix, split) pairs applied by ``apply_rotary_emb``); 0.3.75 has the module function ``precompute_freqs_cis``
(one matrix over the whole inner dim, applied by flux's ``apply_rope1``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import DitAdapter


def _pixel_time(p: int, scale: int, causal: bool) -> float:
    """Pixel time of latent frame ``p`` as the model places it (``latent_to_pixel_coords``); in front of frame 0
    (which sits at 0), one latent frame is ``scale`` pixel frames."""
    if p >= 0 and causal:
        return float(max(0, p * scale + 1 - scale))
    return float(p * scale)


@dataclass(frozen=True)
class LtxvAdapter(DitAdapter):
    def call_extras(self, kwargs):
        fr = kwargs.get("frame_rate", 25)
        try:
            fr = float(fr)
        except (TypeError, ValueError):
            fr = 25.0
        return (("frame_rate", fr),)

    # keyframe guides' coordinates and attention entries belong to the video's appended guide tokens
    write_drops = ("keyframe_idxs", "guide_attention_entries", "generated_keyframes")

    def write_kwargs(self, kwargs, ref_shape):
        return {k: v for k, v in kwargs.items() if k not in self.write_drops}

    def _video_positions(self, dm, coords, frame_rate):
        return dm._prepare_positional_embeddings(coords, frame_rate, torch.float32)

    def _matrix(self, dm, pixel_t: float, frame_rate: float, device):
        import comfy.ldm.lightricks.model as L

        if hasattr(dm, "_prepare_positional_embeddings"):   # ComfyUI 0.33+: the model's own method
            shape = (1, 3, 1, 2) if getattr(dm, "use_middle_indices_grid", False) else (1, 3, 1)
            coords = torch.zeros(shape, device=device, dtype=torch.float32)
            coords[:, 0] = pixel_t
            return self._video_positions(dm, coords, frame_rate)
        coords = torch.zeros((1, 3, 1), device=device, dtype=torch.float32)   # 0.3.75: the module's function
        coords[:, 0] = pixel_t / frame_rate
        return L.precompute_freqs_cis(coords, dim=dm.inner_dim, out_dtype=torch.float32)

    def time_rotation(self, diffusion_model, p_from, p_to, options, extras, device):
        dm = diffusion_model
        fr = dict(extras).get("frame_rate", 25.0)
        scale = int(dm.vae_scale_factors[0])
        causal = bool(getattr(dm, "causal_temporal_positioning", False))
        a = self._matrix(dm, _pixel_time(p_to, scale, causal), fr, device)
        b = self._matrix(dm, _pixel_time(p_from, scale, causal), fr, device)
        if isinstance(a, tuple):
            return (a[0] @ b[0].transpose(-1, -2),) + tuple(a[1:])
        return a @ b.transpose(-1, -2)

    def rotate(self, k, layout, rotation):
        import comfy.ldm.lightricks.model as L

        dtype = k.dtype
        x = k.float()
        if isinstance(rotation, tuple):   # 0.33: (matrix [1, 1, H, D', 2, 2], split)
            out = L.apply_rotary_emb(x, rotation)
        else:
            from comfy.ldm.flux.math import apply_rope1

            out = apply_rope1(x.unsqueeze(1), rotation).squeeze(1)
        return out.to(dtype)


class LtxAvAdapter(LtxvAdapter):
    """LTX-2: the video stream as LTX-Video's (its own RoPE method's video part); the audio stream attends to the
    video in every block, so the audio part of each patched call is taken from a pass without our patches
    (``other_parts_untouched``, :class:`..dit.UntouchedParts`).

    The reference write pass is a video-only call: ``latent_shapes`` is the one-frame video shape alone, so ComfyUI
    unpacks it as a one-part latent (``comfy.utils.unpack_latents``), ``LTXAVModel.separate_audio_and_video_latents``
    gives an empty audio stream and every block skips its audio and audio/video attentions
    (``run_ax``/``run_a2v`` need audio tokens); the audio-only inputs of the video call (its audio mask, reference
    audio) are dropped, and so is the video's denoise mask (its frame count is the video's, not the reference's)."""

    other_parts_untouched = True
    write_drops = LtxvAdapter.write_drops + ("denoise_mask", "audio_denoise_mask", "ref_audio", "audio_length")

    def _video_positions(self, dm, coords, frame_rate):
        # LTX-2's own method takes (video, audio) coordinates; its video part is the LTX-Video method it extends
        return super(type(dm), dm)._prepare_positional_embeddings(coords, frame_rate, torch.float32)

    def video_tokens(self, args):
        img = args["img"]
        return int((img[0] if isinstance(img, (tuple, list)) else img).shape[1])

    def write_kwargs(self, kwargs, ref_shape):
        kw = super().write_kwargs(kwargs, ref_shape)
        kw["latent_shapes"] = [tuple(int(d) for d in ref_shape)]
        return kw

    def hold_first_frame(self, denoise_mask, keep, base_model):
        # the sampler packs the (video, audio) masks flat as it packs the latent ([B, 1, N], video first, each
        # expanded to its part's full shape); the shapes are on the model while it samples (BaseModel.latent_shapes)
        shapes = getattr(base_model, "latent_shapes", None)
        if denoise_mask.ndim == 5 or not shapes or len(shapes) < 2 or len(shapes[0]) != 5:
            return super().hold_first_frame(denoise_mask, keep, base_model)
        vs = [int(d) for d in shapes[0]]
        n = math.prod(vs[1:])
        video = denoise_mask[..., :n].reshape(denoise_mask.shape[0], *vs[1:]).clone()
        video[:, :, 0] = video[:, :, 0] * (1 - keep)
        return torch.cat((video.reshape(denoise_mask.shape[0], 1, n).to(denoise_mask.dtype),
                          denoise_mask[..., n:]), dim=-1)


def detect(diffusion_model) -> DitAdapter | None:
    dm = diffusion_model
    blocks = getattr(dm, "transformer_blocks", None)
    names = {c.__name__ for c in type(dm).__mro__}
    if blocks is None or not ({"LTXVModel", "LTXAVModel"} & names):
        return None
    keys = tuple(("double_block", i) for i in range(len(blocks)))
    if "LTXAVModel" in names:
        return LtxAvAdapter("ltxav", "LTX-2", keys, "bld", (1, 1, 1), True)
    return LtxvAdapter("ltxv", "LTX-Video", keys, "bld", (1, 1, 1), True)
