"""IterativeReuseSampler beyond VidRD: condition each clip on the previous clip's last latent frames through
the image-to-video input of models that have one.

Wan 2.1/2.2 I2V and FLF2V (``model_base.WAN21`` with image channels) and HunyuanVideo 1.5 (its T2V and I2V
share one 65-channel input) take known frames as CONDITIONING options: ``concat_latent_image`` (a latent of
the clip's length with the known frames in place) and ``concat_mask`` (``[B, 1, T, H, W]``: 0 = known,
1 = generate), which ``WanImageToVideo`` / ``HunyuanVideo15ImageToVideo`` set from a start image. For clip
c > 0 the first M latent frames become the previous clip's sampled latent frames that the clip re-traces
(N-M..N-1 in forward mode), with mask 0; the other frames keep what the conditioning had (a start-image
conditioning's frames), or, without one, what ComfyUI's models use without a start image: a zero image in the
model's latent space (``fill``, the VAE-space latent that ``process_latent_in`` maps to 0) and mask 1.

Approximation: in training, latent frame 0 of an I2V clip is the causal VAE latent of ONE image frame; here it
is a later latent frame of the previous clip, which encodes 4 pixel frames. Decoding the previous clip and
re-encoding its last pixel frame would be exact, but the sampler has no VAE.
"""
from __future__ import annotations

import torch


def has_image_input(model_patcher, latent: torch.Tensor) -> bool:
    """Whether the model takes a concat image for this latent (its ``concat_cond`` builds one)."""
    fn = getattr(model_patcher.model, "concat_cond", None)
    if fn is None or latent.ndim != 5:
        return False
    try:
        return fn(noise=torch.zeros_like(latent), device=latent.device) is not None
    except Exception:  # noqa: BLE001  (a concat that needs inputs we cannot give is not one we can use)
        return False


def with_previous_frames(conditioning: list, known: torch.Tensor, clip_frames: int,
                         fill: torch.Tensor | None = None) -> list:
    """A copy of ``conditioning`` whose ``concat_latent_image`` holds ``known`` (``[B, C, M, H, W]``) as its
    first M latent frames with ``concat_mask`` 0 there; the input list and its tensors are not changed.
    ``fill`` (broadcast to one frame, default 0) fills the other frames when the conditioning has no image."""
    b, c, m, h, w = known.shape
    out = []
    for emb, opts in conditioning:
        opts = dict(opts)
        image, mask = opts.get("concat_latent_image"), opts.get("concat_mask")
        if torch.is_tensor(image) and image.ndim == 5 and image.shape[1:] == (c, clip_frames, h, w):
            image = image.to(known).expand(b, -1, -1, -1, -1).clone() if image.shape[0] in (1, b) else None
        else:
            image = None
        if image is None:
            image = known.new_zeros(b, c, clip_frames, h, w)
            if fill is not None:
                image += fill.to(known)
        image[:, :, :m] = known
        if torch.is_tensor(mask) and mask.ndim == 5 and mask.shape[2] == clip_frames and mask.shape[1] == 1:
            mask = mask.to(known).clone()
        else:
            mask = known.new_ones(1, 1, clip_frames, h, w)
        mask[:, :, :m] = 0.0
        opts["concat_latent_image"], opts["concat_mask"] = image, mask
        out.append([emb, opts])
    return out
