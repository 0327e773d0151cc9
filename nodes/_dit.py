"""The DiT video-model paths (Wan 2.1/2.2, HunyuanVideo 1.5, LTX-Video, LTX-2, MiniMax H3) of ReferenceImageCondition and
CrossStreamAttention.

The nodes call these when their MODEL is a DiT video model; the hooks are in
``model_patches/hooks/dit_reference.py`` and ``dit_cross_window.py``, on ``hooks/dit.py`` and the family's adapter
(``hooks/adapters/``), which also gives the reason when a family cannot take a technique.
"""
from __future__ import annotations

from ..model_patches.hooks.core_windows import add_concat_guard
from ..model_patches.hooks.dit import require_dit
from ..model_patches.hooks.dit_cross_window import apply_cross_window
from ..model_patches.hooks.dit_reference import apply_reference_dit, as_video_reference, reference_video_latent_5d
from ._common import (NodeInputError, NodeReporter, check, check_frames, check_latent_channels, check_same_device,
                      node_errors)

__all__ = ["reference_on_dit", "cross_stream_on_dit"]


def _samples(latent, node: str, name: str, ndims: tuple, layout: str, adapter=None):
    """The LATENT's samples; of a video + audio NestedTensor latent (with the family's adapter), the
    video part."""
    s = latent.get("samples") if isinstance(latent, dict) else None
    if s is not None and getattr(s, "is_nested", False) and adapter is not None:
        s = adapter.video_part(s)
    check(s is not None and hasattr(s, "ndim") and not getattr(s, "is_nested", False), node, name,
          "must be a LATENT with a plain 'samples' tensor")
    check_frames(s, node, name, ndims=ndims, layout=layout)
    return s


def _video_samples(latent, adapter, node: str, name: str):
    """The video part of a video LATENT: a plain 5-D tensor, or the video part of a latent that packs more (LTX-2's
    video + audio, after LTXVConcatAVLatent), :meth:`DitAdapter.video_part`."""
    s = latent.get("samples") if isinstance(latent, dict) else None
    if s is not None and getattr(s, "is_nested", False):
        v = adapter.video_part(s)
        check(v is not s and hasattr(v, "ndim") and not getattr(v, "is_nested", False), node, name,
              f"packs several parts, but {adapter.label} samples one video latent; give it the video latent")
        check_frames(v, node, name, ndims=(5,), layout="a video latent [B, C, T, H, W]")
        return v
    return _samples(latent, node, name, (5,), "a video latent [B, C, T, H, W] (e.g. EmptyHunyuanLatentVideo)")


def reference_on_dit(node: str, model, reference, video_latent, strength, style_fidelity, attention_weight, adain_weight,
                     start_percent, end_percent, anchor_first_frame, concat_reference, noise_seed):
    """(patched model, video LATENT) for a DiT video model; inputs already range-checked by the node."""
    with node_errors(node):
        adapter = require_dit(model, "reference")
    ref = _samples(reference, node, "reference", (4, 5), "an image latent [1, C, H, W] or a video latent [B, C, T, H, W]",
                   adapter)
    vid = _video_samples(video_latent, adapter, node, "video_latent")
    check_same_device(ref, vid, node, "reference", "video_latent")
    ref5 = as_video_reference(ref)
    check_latent_channels(model, ref5.shape[1], vid.shape[1], node, adapter.video_channels(model))
    if tuple(ref5.shape[3:]) != tuple(vid.shape[3:]):
        raise NodeInputError(node, "reference", f"is latent {tuple(ref5.shape[3:])} but the video frames are latent "
                                                f"{tuple(vid.shape[3:])}; make both the same size")
    check(adain_weight == 0, node, "adain_weight", "AdaIN points are U-Net blocks; on DiT video models set it to 0 "
                                                   "(the reference acts through attention only)")
    check(not concat_reference, node, "concat_reference", "image-concat conditioning is for U-Nets trained with it; "
                                                          "turn it off for DiT video models")
    if strength == 0:
        return model.clone(), video_latent
    with node_errors(node, {"seed": "noise_seed"}):
        m = apply_reference_dit(model, ref5, strength, style_fidelity, attention_weight, start_percent, end_percent,
                                bool(anchor_first_frame), int(noise_seed), NodeReporter(node))
    add_concat_guard(m, NodeReporter(node))   # core windows that cannot cut c_concat (hooks/core_windows.py)
    return m, reference_video_latent_5d(video_latent, ref5, bool(anchor_first_frame), adapter)


def cross_stream_on_dit(node: str, model, mode, anchor, anchor_index, strength, input_blocks, middle_block,
                        output_blocks, start_percent, end_percent, min_level=0):
    """The patched model for a DiT video model: cross-window anchor attention under core context windows.
    input/middle/output_blocks choose the first/middle/last third of the DiT's blocks."""
    with node_errors(node):
        require_dit(model, "cross_window")
    check(min_level == 0, node, "min_level", "a DiT's blocks all work at one resolution; leave min_level at 0 "
                                             "(input/middle/output_blocks choose the first/middle/last third of them)")
    if strength == 0:
        return model.clone()
    with node_errors(node):
        m = apply_cross_window(model, mode, anchor, int(anchor_index), strength, bool(input_blocks),
                               bool(middle_block), bool(output_blocks), start_percent, end_percent, NodeReporter(node))
    add_concat_guard(m, NodeReporter(node))   # core windows that cannot cut c_concat (hooks/core_windows.py)
    return m
