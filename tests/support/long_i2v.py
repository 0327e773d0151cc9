"""Long image-to-video on a Wan I2V model (``WAN21_I2V``, the class of Wan 2.2 A14B I2V), three ways, through ComfyUI's
own nodes, decoded by a tiny random Wan VAE: what the long-I2V tests and ``bench/iterative.py --only long_i2v`` run.

- ``reuse``: IterativeReuseSampler with ``condition_on_previous`` on the ``WanImageToVideo`` conditioning of the
  start image (optionally ``colour_hold``, and ReferenceImageCondition on the start image upstream of the model);
- ``chain``: what users do today: KSampler one I2V clip (``WanImageToVideo`` with a start image), VAEDecode it, take
  its last frame as the next clip's start image, ``WanImageToVideo`` re-encodes it, and so on (each later clip's
  first frame repeats the previous clip's last one and is left out);
- ``independent``: every clip from the start image alone, seed + clip index.

Every way gives the same clips in pixel frames: the first clip ``1 + 4 (N - 1)`` frames, each later one ``4 (N - M)``
(N latent frames per clip, M = the overlap; the chain with M = 1), so the drift figures compare like with like.
"""
from __future__ import annotations

import torch

from . import families as F

LATENT_CHANNELS = 16


def tiny_wan_vae(seed: int = 0):
    """A ``comfy.sd.VAE`` around a random Wan 2.1 VAE of base width 8 (as ``dit_files.write_tiny_wan_vae`` writes):
    16 latent channels, 4x time / 8x space compression, causal like the real one."""
    F._env()
    import comfy.ldm.wan.vae
    import comfy.sd

    vae = comfy.ldm.wan.vae.WanVAE(dim=8, z_dim=LATENT_CHANNELS, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                   attn_scales=[], temperal_downsample=[False, True, True], dropout=0.0)
    F.deterministic_init_(vae, seed=seed, gain=0.5)
    return comfy.sd.VAE(sd={k: v.detach().clone() for k, v in vae.state_dict().items()})


def start_image(size: int = 32, seed: int = 0) -> torch.Tensor:
    """``[1, size, size, 3]``: a warm disc (the subject) left of centre on a cool vertical gradient."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    bg = torch.stack([0.2 + 0.2 * y, 0.35 + 0.3 * y, 0.7 - 0.2 * y], -1)
    disc = (((x - 0.35) ** 2 + (y - 0.5) ** 2) < 0.04).float()[..., None]
    subject = torch.tensor([0.9, 0.55, 0.2]) + 0.02 * torch.randn(3, generator=g)
    return (bg * (1 - disc) + subject * disc).clamp(0, 1)[None]


def _unwrap(out):
    return tuple(out.result) if hasattr(out, "result") else tuple(out)


def i2v_conditioning(pos, neg, vae, image, size: int, length: int):
    """``WanImageToVideo`` (ComfyUI's node): (positive, negative, latent) of one clip from a start image."""
    import comfy_extras.nodes_wan as nw

    return _unwrap(nw.WanImageToVideo.execute(pos, neg, vae, size, size, length, 1, start_image=image))


def pixel_frames(latent_frames: int) -> int:
    return 1 + 4 * (latent_frames - 1)


def clip_lengths(n: int, m: int, clips: int) -> list[int]:
    """Pixel frames of each clip: the first ``1 + 4 (n - 1)``, the others ``4 (n - m)``."""
    return [pixel_frames(n)] + [4 * (n - m)] * (clips - 1)


def split(video: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    assert video.shape[0] == sum(lengths), (video.shape, lengths)
    return list(torch.split(video, lengths))


def decode(vae, samples: torch.Tensor) -> torch.Tensor:
    """VAEDecode (ComfyUI's node) of a 5-D Wan latent: ``[frames, H, W, 3]``."""
    import nodes

    with torch.no_grad():
        images = nodes.VAEDecode().decode(vae, {"samples": samples})[0]
    return images.reshape(-1, *images.shape[-3:]).detach()


def run_reuse(model, pos, neg, vae, image, n: int, m: int, clips: int, size: int, steps: int, seed: int,
              colour_hold: float = 0.0, reference: bool = False, calls: list | None = None) -> list[torch.Tensor]:
    """IterativeReuseSampler with ``condition_on_previous`` (forward mode, overlap m), decoded, cut into clips.
    ``reference``: ReferenceImageCondition (strength 1) with the VAE-encoded start image, upstream of the model.
    ``calls``: when given, every APPLY_MODEL input shape is appended (to count the reference write passes)."""
    ipos, ineg, lat = i2v_conditioning(pos, neg, vae, image, size, pixel_frames(n))
    if reference:
        ref = {"samples": vae.encode(image[:, :, :, :3])}
        model, lat = F.run_node("ReferenceImageCondition", model, ref, lat, 1.0)
    if calls is not None:
        model, seen = F.count_model_calls(model, key="support.long_i2v")
    total = n + (clips - 1) * (n - m)
    out = F.run_node("IterativeReuseSampler", model, ipos, ineg, lat, total_frames=total, overlap=m,
                     noise_recycle=4.0, guidance_ratio=0.4, fnr=True, overlap_mode="forward", seed=seed, steps=steps,
                     cfg=2.0, sampler_name="euler", scheduler="simple", denoise=1.0, condition_on_previous=True,
                     colour_hold=colour_hold)[0]["samples"]
    assert out.shape[2] == total, out.shape
    if calls is not None:
        calls.extend(seen)
    return split(decode(vae, out), clip_lengths(n, m, clips))


def _ksample(model, pos, neg, lat, seed: int, steps: int) -> torch.Tensor:
    return F.sample_ksampler(model, pos, neg, lat, seed=seed, steps=steps, cfg=2.0, sampler_name="euler",
                             scheduler="simple")


def run_chain(model, pos, neg, vae, image, n: int, clips: int, size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Last-frame chaining: decode each clip, re-encode its last frame as the next clip's start image."""
    out, start = [], image
    for c in range(clips):
        ipos, ineg, lat = i2v_conditioning(pos, neg, vae, start, size, pixel_frames(n))
        frames = decode(vae, _ksample(model, ipos, ineg, lat, seed + c, steps))
        assert frames.shape[0] == pixel_frames(n), frames.shape
        out.append(frames if c == 0 else frames[1:])  # a later clip's frame 0 repeats the previous last frame
        start = frames[-1:]
    return out


def run_independent(model, pos, neg, vae, image, n: int, m: int, clips: int, size: int, steps: int,
                    seed: int) -> list[torch.Tensor]:
    """Every clip from the start image alone (seed + c); later clips keep their last ``4 (n - m)`` frames."""
    ipos, ineg, lat = i2v_conditioning(pos, neg, vae, image, size, pixel_frames(n))
    lengths = clip_lengths(n, m, clips)
    return [decode(vae, _ksample(model, ipos, ineg, lat, seed + c, steps))[-lengths[c]:] for c in range(clips)]


def build(seed: int = 0):
    """(model, positive, negative) of the tiny random Wan I2V (``WAN21_I2V``, in_dim 36)."""
    fx = F.build("wan21_i2v", frames=3, seed=seed)
    return fx.model, fx.positive, fx.negative
