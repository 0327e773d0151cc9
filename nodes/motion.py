"""DSDN content/motion streams: decompose, edit, recombine, and smooth motion inside the sampler.

Math in ``model_patches/motion.py``; the sampler hook in ``model_patches/hooks/motion.py``.
"""
from __future__ import annotations

import torch
from comfy_api.latest import io
from comfy_execution.graph_utils import ExecutionBlocker

from ..model_patches import motion as mm
from ..model_patches.video import frame_axis
from ..model_patches.hooks.comfy_compat import latent_streams
from ..model_patches.hooks.motion import MotionSmoothingSettings, patch
from ._common import (CATEGORY, NodeInputError, NodeReporter, check, check_finite, check_model, check_range, node_id,
                      search_aliases)

MotionType = io.Custom("COHERENT_MOTION")  # prefixed: "MOTION" is used by other packs

CAT = f"{CATEGORY}/motion"
CONTENT_MODES = {"first frame": ("anchor", "first"), "center frame": ("anchor", "center"),
                 "last frame": ("anchor", "last"), "temporal mean": ("mean", "first")}
_DROP_LATENT_KEYS = ("samples", "noise_mask", "batch_index")
AV_STREAMS = "coherent_video.av_streams"   # the audio stream(s) an audio-video LATENT carries past the motion nodes


def _latent_out(extras: dict, video: torch.Tensor) -> dict:
    """A LATENT of ``video`` with ``extras``; with the audio stream(s) of an audio-video LATENT put back unchanged."""
    extras = dict(extras)
    rest = extras.pop(AV_STREAMS, None)
    if rest:
        import comfy.nested_tensor

        return {**extras, "samples": comfy.nested_tensor.NestedTensor([video] + list(rest))}
    return {**extras, "samples": video}


def _video_input(tooltip: str, id: str = "video"):
    return io.MultiType.Input(id, types=[io.Latent, io.Image], tooltip=tooltip)


def _split_video(node: str, name: str, value):
    """-> (tensor, kind, frame_dim, extras) for a LATENT dict or an IMAGE tensor. An audio-video LATENT (a NestedTensor,
    ComfyUI 0.33: LTX-2, MiniMax H3) gives its video stream; ``extras[AV_STREAMS]`` keeps the other streams."""
    if isinstance(value, dict):
        x = value.get("samples")
        streams, _ = latent_streams(x) if getattr(x, "is_nested", False) else ([x], None)
        if len(streams) > 1:
            extras = {k: v for k, v in value.items() if k not in _DROP_LATENT_KEYS}
            extras[AV_STREAMS] = streams[1:]
            check(torch.is_tensor(streams[0]) and streams[0].ndim == 5, node, name,
                  "the video stream of an audio-video LATENT must be [B, C, T, H, W]")
            return streams[0], "latent", 2, extras
        check("samples" in value and torch.is_tensor(value["samples"]), node, name, "LATENT has no 'samples' tensor")
        x = value["samples"]
        check(x.ndim in (4, 5), node, name,
              f"LATENT samples must be [frames, C, H, W] or [B, C, T, H, W], got shape {tuple(x.shape)}")
        extras = {k: v for k, v in value.items() if k not in _DROP_LATENT_KEYS}
        return x, "latent", frame_axis(x), extras
    if torch.is_tensor(value):
        check(value.ndim == 4, node, name, f"IMAGE must be [frames, H, W, C], got shape {tuple(value.shape)}")
        return value, "image", 0, {}
    raise NodeInputError(node, name, f"expected a LATENT or an IMAGE, got {type(value).__name__}")


def _check_motion(node: str, motion) -> None:
    if not isinstance(motion, mm.Motion):
        what = f"a dict with keys {sorted(map(str, motion))[:8]}" if isinstance(motion, dict) else type(motion).__name__
        raise NodeInputError(node, "motion", f"expected a MOTION from MotionDecomposer, got {what}")
    check_finite(motion.diffs, node, "motion")


def _blocked(node: str, output: str, reason: str) -> ExecutionBlocker:
    return ExecutionBlocker(f"[{node}] output '{output}' is empty: {reason}")


def _frame_range_inputs() -> list:
    return [
        io.Int.Input("start_frame", default=0, min=0, max=100000,
                     tooltip="First video frame of the range the operation applies to (0-based)."),
        io.Int.Input("end_frame", default=-1, min=-1, max=100000,
                     tooltip="Last video frame of the range (inclusive); -1 means the last frame. "
                             "A change between frames i and i+1 is edited when both lie in the range."),
    ]


def _check_frame_range(node: str, motion: mm.Motion, start: int, end: int) -> None:
    n = motion.num_frames
    check(0 <= start < n, node, "start_frame", f"must lie in [0, {n - 1}] for a {n}-frame video, got {start}")
    check(end == -1 or start <= end, node, "end_frame", f"must be -1 or >= start_frame ({start}), got {end}")
    check(end < n, node, "end_frame", f"must be -1 or a frame index below {n} for a {n}-frame video, got {end}")


class MotionDecomposer(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("MotionDecomposer"),
            display_name="Motion Decomposer (DSDN)",
            category=CAT,
            **search_aliases("dsdn", "motion", "content and motion", "motion transfer", "split motion",
                             "frame differences"),
            description="Split a video into CONTENT (one frame: an anchor frame or the temporal mean) and MOTION "
                        "(the F-1 adjacent-frame differences). MotionCombiner is the exact inverse. DSDN, arXiv 2308.08316.",
            inputs=[
                _video_input("A LATENT video (frames on the batch axis, or a 5-D [B, C, T, H, W] latent) or an IMAGE batch."),
                io.Combo.Input("content", options=list(CONTENT_MODES), default="first frame",
                               tooltip="What the content stream keeps: one anchor frame, or the temporal mean of all frames."),
            ],
            outputs=[
                io.Latent.Output("content_latent", display_name="content_latent",
                                 tooltip="The content as a one-frame LATENT (when the video is a LATENT)."),
                io.Image.Output("content_image", display_name="content_image",
                                tooltip="The content as a one-frame IMAGE (when the video is an IMAGE)."),
                MotionType.Output("motion", display_name="motion",
                                  tooltip="The motion stream: adjacent differences plus anchor, mode, dtype and shape."),
            ],
        )

    @classmethod
    def execute(cls, video, content="first frame") -> io.NodeOutput:
        node = "MotionDecomposer"
        x, kind, frame_dim, extras = _split_video(node, "video", video)
        check(content in CONTENT_MODES, node, "content", f"must be one of {list(CONTENT_MODES)}, got {content!r}")
        check(x.is_floating_point(), node, "video", f"must hold floating point values, got {x.dtype}")
        n = x.shape[frame_dim]
        check(n >= 2, node, "video", f"needs at least 2 frames to have motion, got {n} frame")
        check_finite(x, node, "video")
        mode, anchor = CONTENT_MODES[content]
        c, motion = mm.decompose_motion(x, anchor=anchor, mode=mode, frame_dim=frame_dim)
        motion.kind, motion.extras = kind, extras
        if kind == "latent":
            return io.NodeOutput(_latent_out(extras, c),
                                 _blocked(node, "content_image", "the video is a LATENT; use content_latent (VAE Decode it to view)"),
                                 motion)
        return io.NodeOutput(_blocked(node, "content_latent", "the video is an IMAGE; use content_image (VAE Encode it for a LATENT)"),
                             c, motion)


class MotionCombiner(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("MotionCombiner"),
            display_name="Motion Combiner (DSDN)",
            category=CAT,
            **search_aliases("dsdn", "motion transfer", "combine motion", "merge motion"),
            description="Rebuild a video from CONTENT and MOTION (exact inverse of MotionDecomposer). Content from "
                        "another video of the same size gives motion transfer.",
            inputs=[
                io.MultiType.Input("content", types=[io.Latent, io.Image],
                                   tooltip="One-frame content (LATENT or IMAGE, matching the motion's kind and per-frame size)."),
                MotionType.Input("motion", tooltip="MOTION from MotionDecomposer (optionally edited)."),
            ],
            outputs=[
                io.Latent.Output("latent", display_name="latent", tooltip="The video when the motion came from a LATENT."),
                io.Image.Output("image", display_name="image", tooltip="The video when the motion came from an IMAGE."),
            ],
        )

    @classmethod
    def execute(cls, content, motion) -> io.NodeOutput:
        node = "MotionCombiner"
        _check_motion(node, motion)
        c, kind, _, content_extras = _split_video(node, "content", content)
        if motion.kind in ("latent", "image"):
            check(kind == motion.kind, node, "content",
                  f"is a {kind.upper()} but the motion was taken from a {motion.kind.upper()}; "
                  f"VAE Encode/Decode one side so both are the same kind")
        check(c.is_floating_point(), node, "content", f"must hold floating point values, got {c.dtype}")
        want = motion.content_shape
        if tuple(c.shape) != want:
            frames = c.shape[motion.frame_dim] if c.ndim == len(want) else None
            hint = (f" (it has {frames} frames; content must be a single frame, e.g. MotionDecomposer's content output)"
                    if frames not in (None, 1) else "; the content and the motion's video must have the same size")
            raise NodeInputError(node, "content",
                                 f"shape {tuple(c.shape)} does not match the motion's per-frame shape {want}{hint}")
        check(c.device == motion.device, node, "content",
              f"is on {c.device} but the motion is on {motion.device}; keep both on one device")
        check(c.dtype == motion.dtype, node, "content",
              f"has dtype {c.dtype} but the motion was taken from a {motion.dtype} video; convert one so they match")
        check_finite(c, node, "content")
        video = mm.combine_motion(c, motion)
        if kind == "latent":
            # an audio-video latent's audio comes with the content, else with the motion (the decomposed video's own)
            extras = dict(motion.extras)
            if AV_STREAMS in content_extras:
                extras[AV_STREAMS] = content_extras[AV_STREAMS]
            return io.NodeOutput(_latent_out(extras, video),
                                 _blocked(node, "image", "the motion is a LATENT motion; use the latent output"))
        return io.NodeOutput(_blocked(node, "latent", "the motion is an IMAGE motion; use the image output"), video)


class MotionScale(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("MotionScale"),
            display_name="Motion Scale",
            category=CAT,
            **search_aliases("motion strength", "amplify motion", "damp motion", "freeze motion", "reverse motion"),
            description="Amplify (>1) or damp (<1) motion inside a frame range; 0 freezes it, negative reverses it.",
            inputs=[
                MotionType.Input("motion", tooltip="MOTION to edit."),
                io.Float.Input("factor", default=1.0, min=-4.0, max=8.0, step=0.05,
                               tooltip="Multiplier for every frame-to-frame change in the range. 1 = unchanged."),
                *_frame_range_inputs(),
            ],
            outputs=[MotionType.Output("edited_motion", display_name="motion", tooltip="The edited MOTION.")],
        )

    @classmethod
    def execute(cls, motion, factor=1.0, start_frame=0, end_frame=-1) -> io.NodeOutput:
        node = "MotionScale"
        _check_motion(node, motion)
        check_range(factor, -4.0, 8.0, node, "factor")
        _check_frame_range(node, motion, start_frame, end_frame)
        d = motion.diffs
        return io.NodeOutput(motion.with_diffs(mm.apply_in_frame_range(d, mm.scale_motion(d, factor), start_frame, end_frame)))


class MotionSmooth(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("MotionSmooth"),
            display_name="Motion Smooth",
            category=CAT,
            **search_aliases("deflicker", "anti flicker", "smooth motion", "temporal smoothing", "jitter",
                             "stabilize", "temporal consistency"),
            description="Low-pass motion over time (Gaussian, or edge-preserving bilateral) to remove jitter.",
            inputs=[
                MotionType.Input("motion", tooltip="MOTION to edit."),
                io.Combo.Input("method", options=["gaussian", "bilateral"], default="gaussian",
                               tooltip="gaussian: plain temporal blur of the motion. bilateral: keeps large changes "
                                       "(real motion onsets), averages small jitter."),
                io.Float.Input("sigma_frames", default=1.5, min=0.0, max=32.0, step=0.1,
                               tooltip="Temporal Gaussian width in frames (kernel radius 3 sigma). 0 = off."),
                io.Float.Input("range_sigma", default=1.0, min=0.01, max=100.0, step=0.05,
                               tooltip="Bilateral only: range width in units of the motion's standard deviation."),
                io.Float.Input("strength", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Blend between the original (0) and the smoothed motion (1)."),
                *_frame_range_inputs(),
            ],
            outputs=[MotionType.Output("edited_motion", display_name="motion", tooltip="The edited MOTION.")],
        )

    @classmethod
    def execute(cls, motion, method="gaussian", sigma_frames=1.5, range_sigma=1.0, strength=1.0,
                start_frame=0, end_frame=-1) -> io.NodeOutput:
        node = "MotionSmooth"
        _check_motion(node, motion)
        check(method in ("gaussian", "bilateral"), node, "method", f"must be gaussian or bilateral, got {method!r}")
        check_range(sigma_frames, 0.0, 32.0, node, "sigma_frames")
        check_range(range_sigma, 0.01, 100.0, node, "range_sigma")
        check_range(strength, 0.0, 1.0, node, "strength")
        _check_frame_range(node, motion, start_frame, end_frame)
        d = motion.diffs
        if method == "gaussian":
            s = mm.gaussian_smooth_frames(d, sigma_frames)
        else:
            s = mm.bilateral_smooth_frames(d, sigma_frames, range_sigma)
        edited = d + strength * (s - d)
        return io.NodeOutput(motion.with_diffs(mm.apply_in_frame_range(d, edited, start_frame, end_frame)))


class MotionClamp(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("MotionClamp"),
            display_name="Motion Clamp (anti-flicker)",
            category=CAT,
            **search_aliases("deflicker", "anti flicker", "flicker", "clamp motion", "spikes", "outliers"),
            description="Clamp outlier motion (flicker spikes): each change is limited to the temporal median "
                        "+- threshold robust standard deviations (1.4826 x MAD over time, per element).",
            inputs=[
                MotionType.Input("motion", tooltip="MOTION to edit."),
                io.Float.Input("threshold", default=3.0, min=0.0, max=100.0, step=0.1,
                               tooltip="How many robust standard deviations a change may be before it is clamped."),
                *_frame_range_inputs(),
            ],
            outputs=[MotionType.Output("edited_motion", display_name="motion", tooltip="The edited MOTION.")],
        )

    @classmethod
    def execute(cls, motion, threshold=3.0, start_frame=0, end_frame=-1) -> io.NodeOutput:
        node = "MotionClamp"
        _check_motion(node, motion)
        check_range(threshold, 0.0, 100.0, node, "threshold")
        _check_frame_range(node, motion, start_frame, end_frame)
        d = motion.diffs
        return io.NodeOutput(motion.with_diffs(
            mm.apply_in_frame_range(d, mm.clamp_motion_outliers(d, threshold), start_frame, end_frame)))


class MotionSmoothingPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("MotionSmoothingPatch"),
            display_name="Motion Smoothing (in sampler)",
            category=CAT,
            **search_aliases("deflicker", "anti flicker", "temporal smoothing", "smooth motion", "consistent",
                             "temporal consistency", "dsdn"),
            description="At each step inside the sigma range, split the denoised video into temporal mean and motion, "
                        "low-pass the motion over frames and recombine: less flicker. Strength 0 = unpatched.",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned; the input stays unchanged)."),
                io.Float.Input("strength", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Blend of the smoothed estimate per step; 0 = bit-identical to unpatched."),
                io.Float.Input("sigma_frames", default=1.0, min=0.0, max=16.0, step=0.1,
                               tooltip="Temporal Gaussian width (frames) applied to the motion."),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Start of the active range as a fraction of the sampling schedule."),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="End of the active range as a fraction of the sampling schedule."),
            ],
            outputs=[io.Model.Output(tooltip="A patched clone of the model (the input model is not changed).")],
        )

    @classmethod
    def execute(cls, model, strength=0.5, sigma_frames=1.0, start_percent=0.0, end_percent=1.0) -> io.NodeOutput:
        node = "MotionSmoothingPatch"
        check_model(model, node)
        check_range(strength, 0.0, 1.0, node, "strength")
        check_range(sigma_frames, 0.0, 16.0, node, "sigma_frames")
        check_range(start_percent, 0.0, 1.0, node, "start_percent")
        check_range(end_percent, 0.0, 1.0, node, "end_percent")
        check(start_percent <= end_percent, node, "end_percent",
              f"must be >= start_percent ({start_percent}), got {end_percent}")
        settings = MotionSmoothingSettings(float(strength), float(sigma_frames), float(start_percent), float(end_percent),
                                           reporter=NodeReporter(node))
        return io.NodeOutput(patch(model, settings))  # strength 0: a plain clone, nothing installed


NODES = [MotionDecomposer, MotionCombiner, MotionScale, MotionSmooth, MotionClamp, MotionSmoothingPatch]
