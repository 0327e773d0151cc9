"""FlowTemporalUpsample: weight-free optical-flow frame interpolation (optional RIFE 4.x weights).

VideoGen's flow-based temporal super-resolution, done with a coarse-to-fine TV-L1 flow
(``model_patches/flow/``) or a user-supplied RIFE 4.x file (``model_patches/rife.py``) from
``models/frame_interpolation/``. Nothing is downloaded. The run: ``model_patches/hooks/flow.py``.
"""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ..model_patches import rife as rifelib
from ..model_patches.flow.tvl1 import PRESETS
from ..model_patches.hooks.flow import (UpsampleSettings, core_interp_model_type, is_core_interp_model, latent_frames,
                                       load_rife, rife_files, rife_from_core, run)
from ..model_patches.video import frame_axis
from ._common import (CATEGORY, check, check_finite, check_frames, check_same_device, node_errors, node_id,
                      search_aliases)

NODE = "FlowTemporalUpsample"
LOADER = "RIFELoader"
RIFE_TYPE = io.Custom("COHERENT_VIDEO_RIFE")
OCCLUSION = {
    "visibility-weighted backward warp": "visibility_warp",
    "softmax splatting": "softmax_splat",
    "off": "off",
}


def rife_input():
    """The optional ``rife_model`` input: our RIFE type, and also core's ``INTERP_MODEL`` where this ComfyUI has
    core's FrameInterpolationModelLoader (feature-detected), so one loaded RIFE file serves both nodes."""
    tip = ("Optional RIFE 4.x network from 'Load RIFE 4.x (CoherentVideo)', or (ComfyUI with core frame "
           "interpolation) core's 'Load Frame Interpolation Model' holding RIFE. Connected: RIFE interpolates the "
           "images (quality/occlusion are then unused). Unconnected: the weight-free flow.")
    ours = RIFE_TYPE.Input("rife_model", optional=True, tooltip=tip)
    core = core_interp_model_type()
    if core is None or not hasattr(io, "MultiType"):
        return ours
    return io.MultiType.Input(ours, types=[RIFE_TYPE, core], optional=True, tooltip=tip)


class RIFELoader(io.ComfyNode):
    """Loads a RIFE 4.x file from models/frame_interpolation for FlowTemporalUpsample."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id(LOADER),
            display_name="Load RIFE 4.x (CoherentVideo)",
            category=f"{CATEGORY}/interpolation",
            **search_aliases("rife", "load rife", "frame interpolation", "vfi", "interpolation model"),
            description=(
                "Loads a RIFE 4.x weights file (flownet.pkl, rife4*.pth, .safetensors ...) from "
                "models/frame_interpolation for FlowTemporalUpsample's optional rife_model input. Nothing is "
                "downloaded. FILM files in the same folder are refused with a clear error (use core's "
                "frame-interpolation nodes for FILM)."),
            inputs=[
                io.Combo.Input("rife_name", options=rife_files(),
                               tooltip="A RIFE 4.x file in models/frame_interpolation/ (.pkl/.pth/.pt/.ckpt/"
                                       ".safetensors)."),
            ],
            outputs=[RIFE_TYPE.Output(display_name="rife_model",
                                      tooltip="The RIFE 4.x network; connect to FlowTemporalUpsample's rife_model.")],
        )

    @classmethod
    def execute(cls, rife_name) -> io.NodeOutput:
        with node_errors(LOADER):
            return io.NodeOutput(load_rife(rife_name))


class FlowTemporalUpsample(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Flow Temporal Upsample",
            category=f"{CATEGORY}/interpolation",
            **search_aliases("interpolate", "frame interpolation", "interpolate frames", "rife", "vfi",
                             "slow motion", "optical flow", "frame rate", "fps", "videogen"),
            description=(
                "Raises the frame rate: inserts frames between every pair by optical flow "
                "(weight-free coarse-to-fine TV-L1 with block matching for fast small objects, "
                "forward-backward occlusion, softmax splatting) "
                "or by a RIFE 4.x network (optional rife_model input). Input frame k is output "
                "frame k*multiplier, bit-identical. Never interpolates across a detected scene cut."),
            inputs=[
                io.Image.Input("images", optional=True,
                               tooltip="Frames to upsample (IMAGE batch, frames on the batch axis). Also the flow "
                                       "guide for the latent when both are given."),
                rife_input(),
                io.Latent.Input("latent", optional=True,
                                tooltip="Optional video latent to upsample in latent space: 4-D (frames on the batch "
                                        "axis) or 5-D (B, C, T, h, w). With images, the flow is computed on the "
                                        "images and resized; alone, on the latent's first principal component."),
                io.Int.Input("multiplier", default=2, min=2, max=8,
                             tooltip="Output frames per input interval: N frames become (N-1)*multiplier+1."),
                io.Float.Input("target_fps", default=0.0, min=0.0, max=480.0, step=0.01,
                               tooltip="0 = use the multiplier. Otherwise resample to this frame rate "
                                       "(needs source_fps); frames at integer source times are copied exactly."),
                io.Float.Input("source_fps", default=24.0, min=0.01, max=480.0, step=0.01,
                               tooltip="Frame rate of the input; the fps output is source_fps*multiplier "
                                       "or target_fps."),
                io.Combo.Input("quality", options=list(PRESETS), default="balanced",
                               tooltip="Weight-free flow preset (warps x iterations per pyramid level, block-match "
                                       "radius at 1/4 size): fast (3 x 5, 2 warps at full size, radius 8), "
                                       "balanced (5 x 10, one warp of 10 iterations at full size, radius 12), "
                                       "quality (8 x 20, radius 16, slowest)."),
                io.Combo.Input("occlusion", options=list(OCCLUSION), default="visibility-weighted backward warp",
                               tooltip="Occlusion handling from forward-backward flow consistency: splat flows to t "
                                       "and blend the backward-warped frames by visibility, or softmax-splat the "
                                       "frames themselves, or off (linear flow, plain blend)."),
                io.Boolean.Input("scene_cut_detection", default=True,
                                 tooltip="Never interpolate across a cut (colour-histogram change): frames there "
                                         "repeat the nearest original frame."),
                io.Float.Input("scene_cut_threshold", default=0.35, min=0.01, max=1.0, step=0.01,
                               tooltip="Histogram difference (0..1) above which a pair is treated as a cut."),
                io.Int.Input("chunk_size", default=4, min=1, max=256,
                             tooltip="Frame pairs processed at once; memory grows with it, not with the video length."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="Upsampled frames (None when no images were given)."),
                io.Latent.Output(display_name="latent", tooltip="Upsampled latent (None when no latent was given)."),
                io.Float.Output(display_name="fps", tooltip="Frame rate of the output."),
            ],
        )

    @classmethod
    def execute(cls, images=None, latent=None, multiplier=2, target_fps=0.0, source_fps=24.0,
                rife_model=None, quality="balanced", occlusion="visibility-weighted backward warp",
                scene_cut_detection=True, scene_cut_threshold=0.35, chunk_size=4) -> io.NodeOutput:
        check(images is not None or latent is not None, NODE, "images", "connect images, a latent, or both")
        check(isinstance(multiplier, int) and 2 <= multiplier <= 8, NODE, "multiplier",
              f"must be an integer in [2, 8], got {multiplier!r}")
        check(quality in PRESETS, NODE, "quality", f"unknown preset {quality!r}")
        check(occlusion in OCCLUSION, NODE, "occlusion", f"unknown mode {occlusion!r}")
        check(isinstance(chunk_size, int) and chunk_size >= 1, NODE, "chunk_size", "must be >= 1")
        use_fps = bool(target_fps) and target_fps > 0
        if use_fps:
            check(source_fps is not None and source_fps > 0, NODE, "source_fps", "must be > 0 with target_fps")
            check(target_fps > source_fps, NODE, "target_fps",
                  f"must exceed source_fps ({source_fps}) to upsample, got {target_fps}")

        n = None
        if images is not None:
            check(torch.is_tensor(images) and images.ndim == 4, NODE, "images",
                  "expected an IMAGE batch (frames, height, width, channels)")
            check(images.shape[0] > 0, NODE, "images", "empty batch")
            check_frames(images, NODE, "images", min_frames=2)
            n = images.shape[0]
        if latent is not None:
            samples = latent.get("samples") if isinstance(latent, dict) else None
            check(torch.is_tensor(samples) and samples.ndim in (4, 5), NODE, "latent",
                  "expected a LATENT with 4-D or 5-D 'samples'")
            check(samples.numel() > 0 and samples.shape[0] > 0, NODE, "latent", "empty batch")
            if images is not None:
                check_same_device(samples, images, NODE, "latent", "images")
            check_finite(samples, NODE, "latent")
            per_video = samples.shape[frame_axis(samples)]
            check(per_video >= 2, NODE, "latent", f"needs at least 2 frames to interpolate, got {per_video}")
            if images is not None:
                check(samples.ndim == 4 or samples.shape[0] == 1, NODE, "latent",
                      "with images, a 5-D latent must hold one video (batch 1)")
                check(per_video == n, NODE, "latent",
                      f"has {per_video} frames but images has {n}; they must match frame for frame "
                      "(for temporally compressed video latents give the latent alone)")
                ih, iw = images.shape[1:3]
                lh, lw = latent_frames(samples)[0].shape[-2:]
                check(abs(ih / lh - iw / lw) <= 0.05 * max(ih / lh, iw / lw), NODE, "latent",
                      f"frame size {lw}x{lh} does not match the images' aspect ({iw}x{ih})")
        if rife_model is not None:
            if not isinstance(rife_model, rifelib.IFNet) and core_interp_model_type() and is_core_interp_model(rife_model):
                with node_errors(NODE):
                    rife_model = rife_from_core(rife_model)
            check(isinstance(rife_model, rifelib.IFNet), NODE, "rife_model",
                  f"expected a RIFE 4.x network from {LOADER} or core's FrameInterpolationModelLoader, "
                  f"got {type(rife_model).__name__}")
            check(images is not None, NODE, "rife_model", "RIFE interpolates RGB images: connect images")
            check(latent is None, NODE, "latent", "RIFE cannot interpolate latents; disconnect rife_model "
                                                 "for the weight-free flow")
            check(images.shape[-1] == 3, NODE, "images", "RIFE needs 3-channel RGB images")

        settings = UpsampleSettings(
            multiplier=int(multiplier), target_fps=float(target_fps or 0.0), source_fps=float(source_fps),
            quality=quality, occlusion=OCCLUSION[occlusion],
            scene_cut_threshold=float(scene_cut_threshold) if scene_cut_detection else None, chunk_size=int(chunk_size))
        with node_errors(NODE):
            return io.NodeOutput(*run(images, latent, settings, rife_model))


NODES = [FlowTemporalUpsample, RIFELoader]
