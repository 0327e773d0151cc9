"""Bad input, per node: every row of ``BAD`` is one wrong value as it can arrive through a link (links
skip ComfyUI's widget validation, so the node's own execute() is called) and must give a
``NodeInputError`` whose message starts with ``[Node] input 'name':``. Errors that can only be seen
once the shapes are known (a key frame beyond the batch, an anchor beyond the frames) are raised at
sampling time, through ComfyUI's real sampler.
"""
from __future__ import annotations

import math

import pytest
import torch

NAN, INF = math.nan, math.inf


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def lat(frames=3, c=4, h=8, w=8, seed=0, **kw):
    return {"samples": torch.randn(frames, c, h, w, generator=_g(seed)), **kw}


def img(frames=3, h=16, w=16, c=3):
    return torch.rand(frames, h, w, c, generator=_g(1))


def nan_lat(frames=3):
    x = lat(frames)
    x["samples"][-1, 0, 2, 2] = NAN
    return x


def nan_img(frames=3):
    x = img(frames)
    x[0, 1, 1, 0] = INF
    return x


def meta_lat(frames=3):
    return {"samples": torch.empty(frames, 4, 8, 8, device="meta")}


class Ctx:
    """What the rows need: the pack's node modules, a tiny real model and conditioning, a sampler."""

    def __init__(self, comfy, pack):
        from coherent_video.nodes import base_residual_noise, cross_stream, flow_upsample, iterative_reuse, motion, \
            reference_image
        from support import fixtures

        self.nodes = comfy
        self.brn, self.cs, self.flow = base_residual_noise, cross_stream, flow_upsample
        self.ir, self.mo, self.ref = iterative_reuse, motion, reference_image
        self.model = fixtures.tiny_model(seed=0)
        self.pos, self.neg = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)

    def sample(self, model, latent, steps=1):
        return self.nodes.common_ksampler(model, 3, steps, 2.0, "euler", "normal", self.pos, self.neg, latent)[0]

    def sample_noise(self, noise, latent):
        import comfy_extras.nodes_custom_sampler as cs

        guider = cs.CFGGuider.execute(self.model, self.pos, self.neg, 2.0).result[0]
        sampler = cs.KSamplerSelect.execute("euler").result[0]
        sigmas = cs.BasicScheduler.execute(self.model, "normal", 1, 1.0).result[0]
        return cs.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, latent).result[0]

    # node shortcuts with good defaults; each row changes one thing
    def brn_noise(self, **kw):
        a = dict(noise_seed=0, mode="shared", base_ratio=0.5, alpha=1.0, key_frame=-1, lambda_schedule="")
        a.update(kw)
        return self.brn.BaseResidualNoise.execute(**a).result[0]

    def brn_model(self, **kw):
        a = dict(model=self.model, mode="shared", base_ratio=0.5, alpha=1.0, key_frame=-1, initial_noise=True,
                 per_step_noise=False, lambda_schedule="")
        a.update(kw)
        return self.brn.BaseResidualNoiseModel.execute(**a).result[0]

    def cross(self, **kw):
        a = dict(model=self.model)
        a.update(kw)
        return self.cs.CrossStreamAttention.execute(**a).result[0]

    def reference(self, **kw):
        a = dict(model=self.model, reference=lat(1, seed=5), video_latent=lat(3))
        a.update(kw)
        return self.ref.ReferenceImageCondition.execute(**a).result

    def reuse(self, **kw):
        a = dict(model=self.model, positive=self.pos, negative=self.neg, latent_image=lat(3), total_frames=5,
                 overlap=1, noise_recycle=4.0, guidance_ratio=0.4, fnr=True, overlap_mode="forward", seed=0, steps=1,
                 cfg=2.0, sampler_name="euler", scheduler="normal", denoise=1.0)
        a.update(kw)
        return self.ir.IterativeReuseSampler.execute(**a).result[0]

    def per_clip(self, **kw):
        a = dict(conditioning=self.pos, clips=1)
        a.update(kw)
        return self.ir.PerClipConditioning.execute(**a).result[0]

    def motion(self, frames=4, video=None):
        v = lat(frames) if video is None else video
        return self.mo.MotionDecomposer.execute(v, "first frame").result[2]

    def nan_motion(self):
        m = self.motion()
        d = m.diffs.clone()
        d[0, 0, 0, 0] = NAN
        return m.with_diffs(d)

    def decompose(self, **kw):
        a = dict(video=lat(4), content="first frame")
        a.update(kw)
        return self.mo.MotionDecomposer.execute(**a).result

    def combine(self, **kw):
        a = dict(content=lat(1, seed=3), motion=self.motion())
        a.update(kw)
        return self.mo.MotionCombiner.execute(**a).result

    def edit(self, cls, **kw):
        a = dict(motion=self.motion())
        a.update(kw)
        return getattr(self.mo, cls).execute(**a).result[0]

    def smoothing(self, **kw):
        a = dict(model=self.model, strength=0.5, sigma_frames=1.0, start_percent=0.0, end_percent=1.0)
        a.update(kw)
        return self.mo.MotionSmoothingPatch.execute(**a).result[0]

    def upsample(self, **kw):
        a = dict(images=img(3), multiplier=2)
        a.update(kw)
        return self.flow.FlowTemporalUpsample.execute(**a).result


FOREIGN_MOTION = {"motion": torch.zeros(3, 4, 8, 8), "fps": 8, "trajectories": []}  # another pack's "MOTION"
HUGE = 100_000  # frames: far beyond any machine's memory at these sizes

# (node class, input the error must name, what is wrong, the call)
BAD = [
    # --- BaseResidualNoise (NOISE node; shape errors surface when the sampler asks for the noise)
    ("BaseResidualNoise", "mode", "unknown mode", lambda c: c.brn_noise(mode="bogus")),
    ("BaseResidualNoise", "base_ratio", "beyond max (1.5)", lambda c: c.brn_noise(base_ratio=1.5)),
    ("BaseResidualNoise", "base_ratio", "NaN", lambda c: c.brn_noise(base_ratio=NAN)),
    ("BaseResidualNoise", "alpha", "negative", lambda c: c.brn_noise(alpha=-1.0)),
    ("BaseResidualNoise", "alpha", "Inf", lambda c: c.brn_noise(alpha=INF)),
    ("BaseResidualNoise", "key_frame", "below min (-2)", lambda c: c.brn_noise(key_frame=-2)),
    ("BaseResidualNoise", "lambda_schedule", "not numbers", lambda c: c.brn_noise(lambda_schedule="a, b")),
    ("BaseResidualNoise", "lambda_schedule", "value beyond 1", lambda c: c.brn_noise(lambda_schedule="1.5, 0.5, 1")),
    ("BaseResidualNoise", "key_frame", "beyond the batch (at sampling)",
     lambda c: c.sample_noise(c.brn_noise(key_frame=7), lat(3))),
    ("BaseResidualNoise", "lambda_schedule", "length != frames (at sampling)",
     lambda c: c.sample_noise(c.brn_noise(lambda_schedule="1, 0.5"), lat(3))),
    ("BaseResidualNoise", "latent_image", "NaN latent (at sampling)", lambda c: c.brn_noise().generate_noise(nan_lat())),
    ("BaseResidualNoise", "latent_image", "wrong rank (2-D)",
     lambda c: c.brn_noise().generate_noise({"samples": torch.zeros(8, 8)})),
    ("BaseResidualNoise", "latent_image", "empty batch", lambda c: c.brn_noise().generate_noise(lat(0))),
    # --- BaseResidualNoiseModel
    ("BaseResidualNoiseModel", "model", "not a MODEL", lambda c: c.brn_model(model=lat())),
    ("BaseResidualNoiseModel", "mode", "unknown mode", lambda c: c.brn_model(mode="pyoco")),
    ("BaseResidualNoiseModel", "base_ratio", "below min", lambda c: c.brn_model(base_ratio=-0.1)),
    ("BaseResidualNoiseModel", "alpha", "NaN", lambda c: c.brn_model(alpha=NAN)),
    ("BaseResidualNoiseModel", "key_frame", "below min", lambda c: c.brn_model(key_frame=-5)),
    ("BaseResidualNoiseModel", "lambda_schedule", "not numbers", lambda c: c.brn_model(lambda_schedule="x")),
    ("BaseResidualNoiseModel", "lambda_schedule", "value beyond 1", lambda c: c.brn_model(lambda_schedule="2")),
    ("BaseResidualNoiseModel", "key_frame", "beyond the batch (at sampling)",
     lambda c: c.sample(c.brn_model(key_frame=9), lat(3))),
    ("BaseResidualNoiseModel", "initial_noise", "both noises off", lambda c: c.brn_model(initial_noise=False)),
    # --- CrossStreamAttention
    ("CrossStreamAttention", "model", "not a MODEL", lambda c: c.cross(model="model")),
    ("CrossStreamAttention", "mode", "unknown mode", lambda c: c.cross(mode="global")),
    ("CrossStreamAttention", "anchor", "unknown anchor", lambda c: c.cross(anchor="middle")),
    ("CrossStreamAttention", "anchor_index", "negative", lambda c: c.cross(anchor="index", anchor_index=-1)),
    ("CrossStreamAttention", "strength", "beyond max", lambda c: c.cross(strength=1.5)),
    ("CrossStreamAttention", "strength", "NaN", lambda c: c.cross(strength=NAN)),
    ("CrossStreamAttention", "end_percent", "beyond max", lambda c: c.cross(end_percent=1.01)),
    ("CrossStreamAttention", "start_percent", "after end_percent",
     lambda c: c.cross(start_percent=0.8, end_percent=0.2)),
    ("CrossStreamAttention", "input_blocks", "no block selected",
     lambda c: c.cross(input_blocks=False, middle_block=False, output_blocks=False)),
    ("CrossStreamAttention", "min_level", "deeper than the model", lambda c: c.cross(min_level=8)),
    ("CrossStreamAttention", "anchor_index", "beyond the frames (at sampling)",
     lambda c: c.sample(c.cross(anchor="index", anchor_index=10), lat(3))),
    # --- ReferenceImageCondition
    ("ReferenceImageCondition", "model", "not a MODEL", lambda c: c.reference(model=None)),
    ("ReferenceImageCondition", "reference", "an IMAGE, not a LATENT", lambda c: c.reference(reference=img(1))),
    ("ReferenceImageCondition", "reference", "wrong rank (5-D)",
     lambda c: c.reference(reference={"samples": torch.zeros(1, 4, 1, 8, 8)})),
    ("ReferenceImageCondition", "reference", "empty batch", lambda c: c.reference(reference=lat(0))),
    ("ReferenceImageCondition", "reference", "NaN", lambda c: c.reference(reference=nan_lat(1))),
    ("ReferenceImageCondition", "reference", "3 channels, model has 4", lambda c: c.reference(reference=lat(1, c=3))),
    ("ReferenceImageCondition", "reference", "size differs from the video", lambda c: c.reference(reference=lat(1, h=4))),
    ("ReferenceImageCondition", "reference", "integer dtype",
     lambda c: c.reference(reference={"samples": torch.zeros(1, 4, 8, 8, dtype=torch.int64)})),
    ("ReferenceImageCondition", "reference", "on another device than the video",
     lambda c: c.reference(reference=meta_lat(1))),
    ("ReferenceImageCondition", "video_latent", "NaN", lambda c: c.reference(video_latent=nan_lat())),
    ("ReferenceImageCondition", "video_latent", "empty batch", lambda c: c.reference(video_latent=lat(0))),
    ("ReferenceImageCondition", "strength", "beyond max", lambda c: c.reference(strength=2.0)),
    ("ReferenceImageCondition", "start_percent", "after end_percent",
     lambda c: c.reference(start_percent=0.9, end_percent=0.1)),
    # --- IterativeReuseSampler
    ("IterativeReuseSampler", "model", "not a MODEL", lambda c: c.reuse(model=[1, 2])),
    ("IterativeReuseSampler", "latent_image", "an IMAGE, not a LATENT", lambda c: c.reuse(latent_image=img(3))),
    ("IterativeReuseSampler", "latent_image", "wrong rank (3-D)",
     lambda c: c.reuse(latent_image={"samples": torch.zeros(3, 8, 8)})),
    ("IterativeReuseSampler", "latent_image", "one frame, a clip needs two", lambda c: c.reuse(latent_image=lat(1), overlap=0)),
    ("IterativeReuseSampler", "latent_image", "empty batch", lambda c: c.reuse(latent_image=lat(0), overlap=0)),
    ("IterativeReuseSampler", "latent_image", "NaN", lambda c: c.reuse(latent_image=nan_lat())),
    ("IterativeReuseSampler", "overlap", "not smaller than the clip", lambda c: c.reuse(overlap=3)),
    ("IterativeReuseSampler", "total_frames", "shorter than one clip", lambda c: c.reuse(total_frames=2)),
    ("IterativeReuseSampler", "guidance_ratio", "beyond max", lambda c: c.reuse(guidance_ratio=1.5)),
    ("IterativeReuseSampler", "denoise", "zero (below min)", lambda c: c.reuse(denoise=0.0)),
    ("IterativeReuseSampler", "cfg", "NaN", lambda c: c.reuse(cfg=NAN)),
    ("IterativeReuseSampler", "steps", "zero", lambda c: c.reuse(steps=0)),
    ("IterativeReuseSampler", "clip_positives", "wrong count", lambda c: c.reuse(clip_positives=[c.pos] * 5)),
    ("IterativeReuseSampler", "clip_positives", "an entry is not a conditioning",
     lambda c: c.reuse(clip_positives=[c.pos, {"text": "a boat", "extra": 1}])),
    ("IterativeReuseSampler", "total_frames", "more frames than memory holds (estimate)",
     lambda c: c.reuse(latent_image=lat(2, h=256, w=256), total_frames=HUGE, overlap=0)),
    # --- PerClipConditioning
    ("PerClipConditioning", "conditioning", "None", lambda c: c.per_clip(conditioning=None)),
    ("PerClipConditioning", "conditioning", "a bare tensor", lambda c: c.per_clip(conditioning=torch.zeros(1, 8, 32))),
    ("PerClipConditioning", "conditioning", "pair without options", lambda c: c.per_clip(conditioning=[[torch.zeros(1, 8, 32)]])),
    ("PerClipConditioning", "conditioning", "extra entry in a pair",
     lambda c: c.per_clip(conditioning=[[torch.zeros(1, 8, 32), {}, "extra"]])),
    ("PerClipConditioning", "conditioning", "NaN", lambda c: c.per_clip(conditioning=[[torch.full((1, 8, 32), NAN), {}]])),
    ("PerClipConditioning", "clips", "zero", lambda c: c.per_clip(clips=0)),
    ("PerClipConditioning", "clips", "beyond max", lambda c: c.per_clip(clips=10_001)),
    ("PerClipConditioning", "clips", "not an integer", lambda c: c.per_clip(clips=1.5)),
    ("PerClipConditioning", "previous", "not a list", lambda c: c.per_clip(previous="abc")),
    ("PerClipConditioning", "previous", "unknown entries", lambda c: c.per_clip(previous=[{"clip": 1}])),
    # --- MotionDecomposer
    ("MotionDecomposer", "video", "neither LATENT nor IMAGE", lambda c: c.decompose(video="frames.mp4")),
    ("MotionDecomposer", "video", "LATENT without samples", lambda c: c.decompose(video={"latent": torch.zeros(3)})),
    ("MotionDecomposer", "video", "wrong rank LATENT (3-D)", lambda c: c.decompose(video={"samples": torch.zeros(3, 8, 8)})),
    ("MotionDecomposer", "video", "wrong rank IMAGE (3-D)", lambda c: c.decompose(video=torch.zeros(16, 16, 3))),
    ("MotionDecomposer", "video", "one frame, motion needs two", lambda c: c.decompose(video=lat(1))),
    ("MotionDecomposer", "video", "empty batch", lambda c: c.decompose(video=img(0))),
    ("MotionDecomposer", "video", "NaN", lambda c: c.decompose(video=nan_lat())),
    ("MotionDecomposer", "video", "Inf in an IMAGE", lambda c: c.decompose(video=nan_img())),
    ("MotionDecomposer", "video", "integer dtype", lambda c: c.decompose(video=torch.zeros(3, 8, 8, 3, dtype=torch.uint8))),
    ("MotionDecomposer", "content", "unknown content mode", lambda c: c.decompose(content="median")),
    # --- MotionCombiner
    ("MotionCombiner", "motion", "another pack's MOTION (unknown keys)", lambda c: c.combine(motion=FOREIGN_MOTION)),
    ("MotionCombiner", "motion", "None", lambda c: c.combine(motion=None)),
    ("MotionCombiner", "motion", "NaN in the motion", lambda c: c.combine(motion=c.nan_motion())),
    ("MotionCombiner", "content", "IMAGE for a LATENT motion", lambda c: c.combine(content=img(1))),
    ("MotionCombiner", "content", "channels differ", lambda c: c.combine(content=lat(1, c=3))),
    ("MotionCombiner", "content", "several frames", lambda c: c.combine(content=lat(3))),
    ("MotionCombiner", "content", "NaN", lambda c: c.combine(content=nan_lat(1))),
    ("MotionCombiner", "content", "dtype differs (float16)",
     lambda c: c.combine(content={"samples": torch.zeros(1, 4, 8, 8, dtype=torch.float16)})),
    ("MotionCombiner", "content", "on another device", lambda c: c.combine(content=meta_lat(1))),
    ("MotionCombiner", "content", "integer dtype",
     lambda c: c.combine(content={"samples": torch.zeros(1, 4, 8, 8, dtype=torch.int32)})),
]

for _cls, _extra in (("MotionScale", [("factor", "beyond max", dict(factor=9.0)),
                                      ("factor", "NaN", dict(factor=NAN)),
                                      ("factor", "-Inf", dict(factor=-INF))]),
                     ("MotionSmooth", [("method", "unknown method", dict(method="median")),
                                       ("sigma_frames", "beyond max", dict(sigma_frames=33.0)),
                                       ("range_sigma", "below min", dict(range_sigma=0.0)),
                                       ("strength", "NaN", dict(strength=NAN))]),
                     ("MotionClamp", [("threshold", "negative", dict(threshold=-1.0)),
                                      ("threshold", "NaN", dict(threshold=NAN)),
                                      ("threshold", "beyond max", dict(threshold=101.0))])):
    BAD += [(_cls, name, what, (lambda kw, k=_cls: lambda c: c.edit(k, **kw))(kw)) for name, what, kw in _extra]
    BAD += [
        (_cls, "motion", "another pack's MOTION (unknown keys)", (lambda k: lambda c: c.edit(k, motion=FOREIGN_MOTION))(_cls)),
        (_cls, "motion", "an IMAGE, not a MOTION", (lambda k: lambda c: c.edit(k, motion=img(3)))(_cls)),
        (_cls, "motion", "NaN in the motion", (lambda k: lambda c: c.edit(k, motion=c.nan_motion()))(_cls)),
        (_cls, "start_frame", "beyond the frames", (lambda k: lambda c: c.edit(k, start_frame=4))(_cls)),
        (_cls, "end_frame", "before start_frame", (lambda k: lambda c: c.edit(k, start_frame=2, end_frame=1))(_cls)),
        (_cls, "end_frame", "beyond the frames", (lambda k: lambda c: c.edit(k, end_frame=9))(_cls)),
        (_cls, "end_frame", "below min (-2)", (lambda k: lambda c: c.edit(k, end_frame=-2))(_cls)),
    ]

BAD += [
    # --- MotionSmoothingPatch
    ("MotionSmoothingPatch", "model", "not a MODEL", lambda c: c.smoothing(model=None)),
    ("MotionSmoothingPatch", "strength", "beyond max", lambda c: c.smoothing(strength=2.0)),
    ("MotionSmoothingPatch", "strength", "NaN", lambda c: c.smoothing(strength=NAN)),
    ("MotionSmoothingPatch", "sigma_frames", "beyond max", lambda c: c.smoothing(sigma_frames=17.0)),
    ("MotionSmoothingPatch", "sigma_frames", "negative", lambda c: c.smoothing(sigma_frames=-1.0)),
    ("MotionSmoothingPatch", "start_percent", "beyond max", lambda c: c.smoothing(start_percent=1.5)),
    ("MotionSmoothingPatch", "end_percent", "below min", lambda c: c.smoothing(end_percent=-0.1)),
    ("MotionSmoothingPatch", "end_percent", "before start_percent", lambda c: c.smoothing(start_percent=0.7, end_percent=0.3)),
    ("MotionSmoothingPatch", "start_percent", "NaN", lambda c: c.smoothing(start_percent=NAN)),
    # --- FlowTemporalUpsample
    ("FlowTemporalUpsample", "images", "neither images nor latent", lambda c: c.upsample(images=None)),
    ("FlowTemporalUpsample", "images", "wrong rank (3-D)", lambda c: c.upsample(images=torch.rand(16, 16, 3))),
    ("FlowTemporalUpsample", "images", "empty batch", lambda c: c.upsample(images=img(0))),
    ("FlowTemporalUpsample", "images", "one frame, two needed", lambda c: c.upsample(images=img(1))),
    ("FlowTemporalUpsample", "images", "NaN/Inf", lambda c: c.upsample(images=nan_img())),
    ("FlowTemporalUpsample", "images", "integer dtype", lambda c: c.upsample(images=torch.zeros(3, 8, 8, 3, dtype=torch.uint8))),
    ("FlowTemporalUpsample", "latent", "one frame", lambda c: c.upsample(images=None, latent=lat(1))),
    ("FlowTemporalUpsample", "latent", "NaN", lambda c: c.upsample(images=None, latent=nan_lat())),
    ("FlowTemporalUpsample", "latent", "frame count differs from images", lambda c: c.upsample(latent=lat(4, h=2, w=2))),
    ("FlowTemporalUpsample", "latent", "on another device than images", lambda c: c.upsample(latent=meta_lat(3))),
    ("FlowTemporalUpsample", "multiplier", "beyond max", lambda c: c.upsample(multiplier=9)),
    ("FlowTemporalUpsample", "target_fps", "not above source_fps", lambda c: c.upsample(target_fps=10.0, source_fps=24.0)),
    ("FlowTemporalUpsample", "target_fps", "more frames than memory holds (estimate)",
     lambda c: c.upsample(images=torch.rand(2, 512, 512, 3), target_fps=480.0, source_fps=0.01)),
]


MODEL_NODES = {"BaseResidualNoiseModel", "CrossStreamAttention", "ReferenceImageCondition", "IterativeReuseSampler",
               "MotionSmoothingPatch", "StreamContextWindows"}


def _clip(name):
    from coherent_video.nodes.bundled_clip import LoadBundledClip

    return LoadBundledClip.execute(name)


def _rife(name):
    from coherent_video.nodes.flow_upsample import RIFELoader

    return RIFELoader.execute(name)


# the two loaders take one file name, which a link (a primitive, another pack's string node) can set to anything
_NAMES = [("None", None), ("a number", 3), ("empty string", ""), ("a list", ["bbb_emerge.mp4"]),
          ("path traversal", "../README.md"), ("absolute path", "/etc/passwd"), ("missing file", "missing.mp4"),
          ("wrong case", "BBB_EMERGE.MP4"), ("trailing space", "bbb_emerge.mp4 ")]
BAD += [("LoadBundledClip", "clip", what, lambda c, v=v: _clip(v)) for what, v in _NAMES]
BAD += [("LoadBundledClip", "clip", "a licence file beside the clips", lambda c: _clip("bbb_emerge.LICENSE.txt"))]
BAD += [("RIFELoader", "rife_name", what, lambda c, v=v: _rife(v)) for what, v in _NAMES]
BAD += [("RIFELoader", "rife_name", "a missing .pkl", lambda c: _rife("flownet_missing.pkl"))]


def _pad(conditioning="ok", width=4096):
    import torch

    from coherent_video.nodes.pad_conditioning import PadConditioningWidth

    cond = [[torch.zeros(1, 77, 768), {}]] if conditioning == "ok" else conditioning
    return PadConditioningWidth.execute(cond, width)


def _nan_cond():
    import torch

    return [[torch.full((1, 77, 768), float("nan")), {}]]


def _tensor():
    import torch

    return torch.zeros(1, 77, 768)


BAD += [("PadConditioningWidth", "conditioning", what, lambda c, f=f: _pad(conditioning=f())) for what, f in [
    ("None", lambda: None), ("empty list", lambda: []), ("a bare tensor", _tensor),
    ("pairs without options", lambda: [[_tensor()]]), ("NaN", _nan_cond)]]
BAD += [("PadConditioningWidth", "width", what, lambda c, v=v: _pad(width=v))
        for what, v in [("zero", 0), ("negative", -3), ("a float", 1.5), ("a string", "4096"), ("a bool", True)]]


def _windows(c, model="ok", **kw):
    from coherent_video.nodes.stream_windows import StreamContextWindows

    args = dict(context_length=4, context_overlap=1, context_schedule="standard_static", fuse_method="pyramid",
                causal_window_fix=True)
    args.update(kw)
    return StreamContextWindows.execute(c.model if model == "ok" else model, **args)


# the image model itself is refused (frames on the batch axis; on 0.3.75 first because core has no multi-stream
# windows); the other inputs are checked before the model
BAD += [("StreamContextWindows", "model", what, lambda c, v=v: _windows(c, model=v))
        for what, v in [("None", None), ("a string", "model")]]
BAD += [("StreamContextWindows", "model", "an image model (SD1.5)", lambda c: _windows(c))]
BAD += [("StreamContextWindows", "context_length", what, lambda c, v=v: _windows(c, context_length=v))
        for what, v in [("zero", 0), ("negative", -2), ("a float", 4.0), ("a bool", True)]]
BAD += [("StreamContextWindows", "context_overlap", what, lambda c, v=v: _windows(c, context_overlap=v))
        for what, v in [("negative", -1), ("equal to the length", 4), ("a string", "1")]]
BAD += [("StreamContextWindows", "context_schedule", "unknown", lambda c: _windows(c, context_schedule="median"))]
BAD += [("StreamContextWindows", "fuse_method", "unknown", lambda c: _windows(c, fuse_method="mean"))]
BAD += [("StreamContextWindows", "causal_window_fix", "a string", lambda c: _windows(c, causal_window_fix="yes"))]


@pytest.fixture(scope="module")
def ctx(comfy, pack):
    return Ctx(comfy, pack)


def _node_names(ctx, cls_name: str) -> set:
    from coherent_video.nodes import all_nodes

    cls = next(c for c in all_nodes() if c.__name__ == cls_name)
    schema = cls.GET_SCHEMA()
    return {cls_name, schema.node_id, schema.display_name}


@pytest.mark.parametrize("cls_name,input_name,what,call", BAD,
                         ids=[f"{n}-{i}-{w}" for n, i, w, _ in BAD])
def test_bad_input_names_node_and_input(ctx, cls_name, input_name, what, call):
    from coherent_video.nodes._common import NodeInputError
    from support import fixtures

    takes_model = cls_name in MODEL_NODES
    before = fixtures.model_fingerprint(ctx.model) if takes_model else None
    with pytest.raises(NodeInputError) as err:
        call(ctx)
    msg = str(err.value)
    assert err.value.node in _node_names(ctx, cls_name), msg
    assert err.value.input_name == input_name, msg
    assert msg.startswith(f"[{err.value.node}] input '{input_name}': ") and len(msg) > len(err.value.node) + 20, msg
    if takes_model:
        fixtures.assert_same_fingerprint(before, fixtures.model_fingerprint(ctx.model))


def test_every_node_has_at_least_eight_bad_inputs(pack):
    from coherent_video.nodes import all_nodes

    counts = {c.__name__: 0 for c in all_nodes()}
    for cls_name, *_ in BAD:
        counts[cls_name] += 1
    assert all(n >= 8 for n in counts.values()), counts


def test_memory_refusal_gives_an_estimate_before_allocating(ctx):
    """The refusal comes before any large allocation: the process RSS stays flat."""
    import psutil

    from coherent_video.nodes._common import NodeInputError

    rss = psutil.Process().memory_info().rss
    with pytest.raises(NodeInputError, match=r"needs about [0-9.]+ GiB but only [0-9.]+ GiB is free"):
        ctx.reuse(latent_image=lat(2, h=256, w=256), total_frames=HUGE, overlap=0)
    with pytest.raises(NodeInputError, match=r"needs about [0-9.]+ GiB but only [0-9.]+ GiB is free"):
        ctx.upsample(images=torch.rand(2, 512, 512, 3), target_fps=480.0, source_fps=0.01)
    assert psutil.Process().memory_info().rss - rss < 512 * 2**20
