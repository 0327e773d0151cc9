"""ReferenceImageCondition (VideoGen, arXiv 2309.00398): frames follow a reference image.

Training-free stand-in for VideoGen's reference-image conditioning: reference-only attention
(frames attend to their own tokens and the reference's), AdaIN, and an optional frame-0 anchor.
The math is in ``model_patches/attention.py``; the hooks in ``model_patches/hooks/reference.py``.
"""
from __future__ import annotations

from comfy_api.latest import io

from ..model_patches.hooks.blocks import architecture
from ..model_patches.hooks.reference import ReferenceSettings, patch
from ._dit import reference_on_dit
from ._common import (CATEGORY, NodeInputError, check, check_frames, check_latent_channels, check_model, check_range,
                      check_same_device, node_errors, node_id, search_aliases)

NODE = "ReferenceImageCondition"


def _samples(latent, name: str):
    s = latent.get("samples") if isinstance(latent, dict) else None
    check(s is not None and hasattr(s, "ndim") and not getattr(s, "is_nested", False), NODE, name,
          "must be a LATENT with a plain 'samples' tensor")
    check(s.ndim == 4, NODE, name, f"must be an image latent [batch, channels, height, width], got shape {tuple(s.shape)}")
    return s


def reference_video_latent(video: dict, reference, anchor: bool) -> dict:
    """The video LATENT to sample: with the anchor, frame 0 holds the reference and a noise_mask
    (all ones; the model's denoise_mask_function zeroes frame 0 over the step range)."""
    if not anchor:
        return video
    samples = video["samples"].clone()
    samples[0] = reference[0].to(samples.dtype)
    out = dict(video)
    out["samples"] = samples
    if video.get("noise_mask") is None:
        out["noise_mask"] = samples.new_ones((samples.shape[0], 1, *samples.shape[2:]))
    return out


class ReferenceImageCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Reference Image Condition (VideoGen)",
            category=f"{CATEGORY}/attention",
            **search_aliases("videogen", "reference", "reference only", "reference image", "image to video", "i2v",
                             "style reference", "consistent character", "consistent", "adain"),
            description="VideoGen-style reference-image conditioning without training: every frame's self-attention "
                        "also attends to the reference image's tokens (reference-only attention, one extra batch-1 "
                        "forward per step), optional AdaIN to the reference's feature statistics, and an optional "
                        "anchor that keeps frame 0 on the reference.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.x/SD2/SDXL U-Net, or a Wan 2.1/2.2, HunyuanVideo 1.5, LTX-Video or LTX-2 model "
                                                "(reference tokens at the latent frame in front of the video). It is "
                                                "cloned; the input model is not changed."),
                io.Latent.Input("reference", tooltip="The reference image LATENT (from a text-to-image KSampler or "
                                                     "VAEEncode). Only its first image is used. Same channels and size "
                                                     "as the video frames."),
                io.Latent.Input("video_latent", tooltip="The video frames' LATENT (frames on the batch axis), e.g. "
                                                        "EmptyLatentImage with batch_size = frames; on a video DiT "
                                                        "its video latent (LTX-2: the video latent or the AV latent "
                                                        "of LTXVConcatAVLatent)."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Blend of the reference-extended attention (and AdaIN) with the plain one. "
                                       "0 = the model and the video latent unchanged (the anchor is off too)."),
                io.Float.Input("style_fidelity", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="reference-only's style fidelity: the unconditional CFG branch keeps this share "
                                       "of its plain attention, so CFG pushes towards the reference."),
                io.Float.Input("attention_weight", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Share of the self-attention blocks that read the reference, widest (deepest) "
                                       "first, as reference-only's attention_auto_machine_weight. 1 = all, 0 = none."),
                io.Float.Input("adain_weight", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="AdaIN depth: block outputs from the middle outward whose per-channel mean/std "
                                       "are matched to the reference's. 0 = no AdaIN, 1 = all blocks."),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Start of the active part of sampling (0 = first step)."),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.001,
                               tooltip="End of the active part of sampling (1 = last step)."),
                io.Boolean.Input("anchor_first_frame", default=True,
                                 tooltip="VideoGen's 'reference = first frame': frame 0 of the output latent is the "
                                         "reference and is held there (inpainting mask) over start..end percent."),
                io.Boolean.Input("concat_reference", default=False,
                                 tooltip="Also feed the reference latent as c_concat, for models trained with image-concat "
                                         "conditioning (input channels = 2 x latent channels). Off for SD1.5/SDXL."),
                io.Int.Input("noise_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF,
                             tooltip="Seed of the fixed noise that noises the reference to each step's sigma in the write pass."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="A patched clone of the model."),
                io.Latent.Output(display_name="video_latent",
                                 tooltip="The video latent to sample (frame 0 = reference with a noise mask when anchoring)."),
            ],
        )

    @classmethod
    def execute(cls, model, reference, video_latent, strength=1.0, style_fidelity=0.5, attention_weight=1.0,
                adain_weight=0.0, start_percent=0.0, end_percent=1.0, anchor_first_frame=True,
                concat_reference=False, noise_seed=0) -> io.NodeOutput:
        check_model(model, NODE)
        for name, value in (("strength", strength), ("style_fidelity", style_fidelity),
                            ("attention_weight", attention_weight), ("adain_weight", adain_weight),
                            ("start_percent", start_percent), ("end_percent", end_percent)):
            check_range(value, 0.0, 1.0, NODE, name)
        check(start_percent <= end_percent, NODE, "start_percent",
              f"must not be after end_percent ({start_percent} > {end_percent})")
        if architecture(model) == "dit":  # video DiTs: reference tokens in the DiT's self-attention
            return io.NodeOutput(*reference_on_dit(NODE, model, reference, video_latent, strength, style_fidelity,
                                                   attention_weight, adain_weight, start_percent, end_percent,
                                                   anchor_first_frame, concat_reference, noise_seed))
        ref = _samples(reference, "reference")
        vid = _samples(video_latent, "video_latent")
        check_same_device(ref, vid, NODE, "reference", "video_latent")
        check_frames(ref, NODE, "reference")
        check_frames(vid, NODE, "video_latent")
        check_latent_channels(model, ref.shape[1], vid.shape[1], NODE)
        if tuple(ref.shape[2:]) != tuple(vid.shape[2:]):
            raise NodeInputError(NODE, "reference", f"is {ref.shape[3] * 8}x{ref.shape[2] * 8} px (latent "
                                                    f"{tuple(ref.shape[2:])}) but the video frames are latent "
                                                    f"{tuple(vid.shape[2:])}; make both the same size")
        if strength == 0:  # every part off, the first-frame anchor included: the model and latent unchanged
            return io.NodeOutput(model.clone(), video_latent)
        settings = ReferenceSettings(
            strength=float(strength), style_fidelity=float(style_fidelity), attention_weight=float(attention_weight),
            adain_weight=float(adain_weight), start_percent=float(start_percent), end_percent=float(end_percent),
            anchor_first_frame=bool(anchor_first_frame), concat_reference=bool(concat_reference), seed=int(noise_seed))
        with node_errors(NODE, {"seed": "noise_seed"}):
            m = patch(model, ref[:1], settings)
        return io.NodeOutput(m, reference_video_latent(video_latent, ref, bool(anchor_first_frame)))


NODES = [ReferenceImageCondition]
