"""What a technique may ask about a model: the adapter interface every family's adapter implements.

A technique module (``hooks/reference.py``, ``hooks/dit_reference.py``, ...) asks :func:`.adapter_for` and then
only these methods and fields; it never looks at a model's classes or attributes itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..comfy_compat import window_frames


@dataclass(frozen=True)
class AttentionBlock:
    """One self-attention of a U-Net: its ``attn1`` replace key, resolution level and width."""

    key: tuple   # (section, block id, index inside the block) as attn1 replace keys it
    level: int   # 0 = latent resolution, 1 = half, ...
    dim: int     # channels of the attention input


@dataclass(frozen=True)
class Adapter:
    """The part every family answers."""

    name: str        # short id of the family (messages, tests)
    label: str       # how users call it (error messages, README rows)

    kind = "unet"    # "unet": attn1 replaces over a frame batch; "dit": one block replace per video block

    def unsupported(self, technique: str) -> str | None:
        """Why ``technique`` (e.g. ``"reference"``, ``"cross_window"``, ``"anchor_first_frame"``) cannot be used on
        this model, as a reason about the model; None when it can."""
        return None

    def temporal_ratio(self, latent_format) -> int:
        """Pixel frames per latent frame, from the latent format where it says so (ComfyUI 0.33+), else the pack's
        table (``model_patches.video.temporal_compression``)."""
        from ...video import temporal_compression

        return temporal_compression(latent_format)

    def stream_time_axes(self, latent_shapes) -> tuple[int, ...]:
        """The time axis of each stream of a packed multi-stream latent (``latent_shapes``: the sampler's, video
        first): where a context window over the video's latent frames cuts each stream."""
        return tuple(2 for _ in latent_shapes)

    def window(self, options: dict, dim: int) -> list[int] | None:
        """The absolute frames (or latent frames) a core context window over axis ``dim`` hands the model in this
        call, causal anchor frame included (:func:`..comfy_compat.window_frames`); None outside windows."""
        win = options.get("context_window")
        if win is not None and getattr(win, "dim", None) == dim:
            return window_frames(win)
        return None


@dataclass(frozen=True)
class UNetAdapter(Adapter):
    """Image U-Nets sampled as a frame batch: frames are the batch axis, attention is patched per ``attn1``."""

    blocks: tuple = ()         # AttentionBlock, in forward order
    n_input: int = 0           # input blocks (AdaIN points)
    n_output: int = 0          # output blocks

    kind = "unet"

    def adain_points(self, adain_weight: float) -> list[tuple]:
        """AdaIN points, gated like reference-only's ``gn_auto_machine_weight``: the middle block output
        (weight 0) and then outward; a point with depth weight ``g`` is used when ``0 < g <= adain_weight``
        (or always for the middle when ``adain_weight > 0``). Keys: ``("input", i)`` = output of input block
        ``i``; ``("output", i)`` = the input of output block ``i`` (``("output", 0)`` = the middle output)."""
        if adain_weight <= 0:
            return []
        n_in, n_out = self.n_input, self.n_output
        points = [(("output", 0), 0.0)]
        points += [(("input", i), (n_in - i) / max(n_in - 1, 1)) for i in range(1, n_in)]
        points += [(("output", i), i / max(n_out, 1)) for i in range(1, n_out)]
        return [k for k, g in points if g <= adain_weight]


@dataclass(frozen=True)
class DitAdapter(Adapter):
    """Video transformers whose blocks ComfyUI runs through ``patches_replace["dit"][("double_block", i)]``.

    What the DiT techniques need: the block keys in forward order; that the block's first ``optimized_attention``
    call with as many keys as queries is its self-attention over the video tokens; the layout of that call; where
    the video tokens are among its tokens and how many there are (``video_tokens``, ``image_first``); how a recorded
    key moves in time (``time_rotation`` + ``rotate``, through the model's own RoPE path); what the model call
    carries that RoPE needs (``call_extras``); and what the reference write pass must not pass on
    (``write_kwargs``)."""

    block_keys: tuple = ()     # ("double_block", i) in forward order
    layout: str = "bld"        # of the self-attention call: "bld" ([B, L, H*D]) or "bhld"
    patch: tuple = (1, 1, 1)   # (pt, ph, pw)
    image_first: bool = True   # video tokens before the other tokens (text) of the self-attention call

    kind = "dit"
    # the latent packs more than the video (ComfyUI 0.33 ``latent_shapes``: video first) and the other parts (audio)
    # must come out as the unpatched model gives them while our patches act on the video
    other_parts_untouched = False
    # the self-attention runs over more than the video (text, audio) and extra keys (reference, anchor) are for the
    # video queries only: the other queries attend to the model's own keys (one more attention call per block)
    video_queries_only = False

    def video_part(self, x):
        """The video latent of a sampled latent: the first tensor of a NestedTensor (video + audio families; the
        others pass through untouched), else the latent itself."""
        tensors = getattr(x, "tensors", None) if getattr(x, "is_nested", False) else None
        return tensors[0] if tensors else x

    def video_tokens(self, args: dict) -> int:
        """Video tokens of one block call (from the block replace's ``args``)."""
        return int(args["img"].shape[1])

    def image_tokens(self, x, layout: str, n_img: int):
        """The video tokens of the self-attention's ``x`` (keys or values)."""
        d = 1 if layout == "bld" else 2
        start = 0 if self.image_first else x.shape[d] - n_img
        return x.narrow(d, start, n_img)

    def call_extras(self, kwargs: dict) -> tuple:
        """What of a model call's keyword inputs the RoPE of this family needs (hashable; default none)."""
        return ()

    def write_kwargs(self, kwargs: dict, ref_shape: tuple) -> dict:
        """The keyword inputs of the reference write pass (one still latent frame of shape ``ref_shape``) from the
        video call's."""
        return kwargs

    def with_video_part(self, samples, video):
        """``samples`` (a sampled latent, as :meth:`video_part` reads it) with its video part replaced by ``video``
        (the other parts kept)."""
        tensors = getattr(samples, "tensors", None) if getattr(samples, "is_nested", False) else None
        if tensors:
            return type(samples)((video,) + tuple(tensors[1:]))
        return video

    def hold_first_frame(self, denoise_mask, keep, base_model):
        """``denoise_mask`` (as the sampler hands it to a ``denoise_mask_function``) with latent frame 0 of the video
        scaled by ``1 - keep``; a new tensor. A 5-D mask is the video's; any other is left as it is."""
        if denoise_mask.ndim != 5:
            return denoise_mask
        denoise_mask = denoise_mask.clone()
        denoise_mask[:, :, 0] = denoise_mask[:, :, 0] * (1 - keep)
        return denoise_mask

    def write_inputs(self, x_ref, kwargs: dict):
        """``(x, kwargs)`` the reference write pass hands the model call: the noised one-frame video latent
        ``x_ref`` in the form the model takes (a packed video + audio latent packs it with an empty audio part)."""
        return x_ref, kwargs

    def core_windows_unsupported(self, base_model, handler=None) -> str | None:
        """Why this ComfyUI's core context windows (``handler``: the ``model_options["context_handler"]``) cannot
        window this model (``base_model``: the ``comfy.model_base`` object), as a reason about the model and the
        ComfyUI; None when they can."""
        return None

    def video_channels(self, model) -> int:
        """Channels of the video latent (an audio-video latent format may state the wider of its streams)."""
        return int(model.get_model_object("latent_format").latent_channels)

    def time_rotation(self, diffusion_model, p_from: int, p_to: int, options: dict, extras: tuple, device):
        """The rotation that moves a key recorded at latent frame ``p_from`` of a call to latent frame ``p_to``,
        from the model's own RoPE path (positions relative to the call's first latent frame)."""
        raise NotImplementedError

    def rotate(self, k, layout: str, rotation):
        raise NotImplementedError
