"""IterativeReuseSampler (Reuse and Diffuse / VidRD, arXiv 2309.03549): long videos clip by clip.

- ``IterativeReuseSampler`` samples ``total_frames`` frames as clips of the latent's length N with
  frame-level noise reversion (FNR), past-dependent noise sampling (PNS) and denoising with staged
  guidance (DSG), through ComfyUI's own sampling.
- ``PerClipConditioning`` builds the optional per-clip list of positive conditionings (prompt travel).
"""
from __future__ import annotations

import comfy.samplers
import torch
from comfy_api.latest import io

from ..model_patches.hooks.core_windows import batch_problem
from ..model_patches.hooks.previous_frames import has_image_input
from ..model_patches.hooks.reuse import ReuseSettings, run
from ..model_patches.reuse import OVERLAP_MODES, clip_count
from ..model_patches.video import frame_axis, temporal_compression
from ._common import (CATEGORY, NodeInputError, NodeReporter, check, check_conditioning, check_frames, check_memory,
                      check_model, check_range, node_errors, node_id, search_aliases)

NODE = "IterativeReuseSampler"
ClipConditionings = io.Custom("COHERENT_CLIP_CONDITIONINGS")


class IterativeReuseSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id(NODE),
            display_name="Iterative Reuse Sampler (VidRD long video)",
            category=f"{CATEGORY}/sampling",
            **search_aliases("vidrd", "reuse and diffuse", "long video", "extend video", "video extension",
                             "clip by clip", "consistent", "temporal consistency"),
            description="Reuse and Diffuse (VidRD): samples a long video as clips of the latent's frame count N. "
                        "Each new clip starts from the previous clip's noise in reverse frame order (FNR), mixes it "
                        "into the fresh noise of the other frames (PNS) and replays the previous clip's denoising "
                        "trajectory on its first M frames for a staged number of steps (DSG). The default forward "
                        "mode re-traces in forward order and leaves the re-traced frames out, so the video keeps "
                        "moving forward at the seams. Every clip runs "
                        "through ComfyUI's own sampler, scheduler, model patches and wrappers.",
            inputs=[
                io.Model.Input("model", tooltip="The model (an image model, or one with a motion module such as "
                                                "AnimateDiff). It is cloned; the input model is not changed."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning for every clip (unless "
                                                          "clip_positives is connected)."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning for every clip."),
                io.Latent.Input("latent_image", tooltip="One clip: its frame count (batch size, or the time axis of "
                                                        "a video latent) sets the clip length N, and its size sets "
                                                        "the frame size. With denoise < 1 every clip starts from it."),
                io.Int.Input("total_frames", default=64, min=2, max=100000,
                             tooltip="Frames in the output latent (exactly this many, in every overlap mode)."),
                io.Int.Input("overlap", default=4, min=0, max=4096,
                             tooltip="M: frames of each new clip that re-trace the previous clip's last frames (FNR + "
                                     "DSG; forward order in forward mode, reverse order as in the paper otherwise). "
                                     "Must be smaller than N. Paper default 4."),
                io.Float.Input("noise_recycle", default=4.0, min=0.0, max=1000.0, step=0.1,
                               tooltip="sigma (PNS): with a = sigma/sqrt(1+sigma^2), the other frames start from "
                                       "a * reversed previous noise + sqrt(1-a^2) * fresh noise (paper; concat, "
                                       "reversed_drop), or, in forward mode, a^d * the last past frame's noise + "
                                       "sqrt(1-a^2d) * fresh noise at distance d from it. Unit variance. "
                                       "0 = fresh noise. Paper default 4."),
                io.Float.Input("guidance_ratio", default=0.4, min=0.0, max=1.0, step=0.01,
                               tooltip="g (DSG): overlap frame k follows the previous clip's trajectory while "
                                       "step < (M-k)*(steps/M)*g. 0 = no staged guidance. Paper default 0.4."),
                io.Boolean.Input("fnr", default=True,
                                 tooltip="Frame-level noise reversion: the first M frames start from the previous "
                                         "clip's last M noises (reverse order as in the paper; forward order in "
                                         "forward mode). Off: they get PNS noise like the "
                                         "rest (with guidance_ratio > 0, DSG still overwrites step 0 with the "
                                         "reversed noise, as in the official code)."),
                io.Combo.Input("overlap_mode", options=list(OVERLAP_MODES), default="forward",
                               tooltip="forward (beyond the paper): each new clip re-traces the previous clip's last "
                                       "M frames in forward order and leaves them out, and its new frames continue "
                                       "from the last past frame: every output frame follows the one before it. "
                                       "concat: the official VidRD output, all N frames of every clip; the seam "
                                       "replays the last M frames backwards (back and forth). reversed_drop: the "
                                       "paper's reversed overlap left out; each seam jumps back about M frames "
                                       "(kept for comparison; this pack's old 'drop')."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed; clip c uses seed + c. Ignored for the noise when a NOISE input "
                                     "is connected (its own seed is used)."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Sampling steps S per clip."),
                io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance scale."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, default="euler",
                               tooltip="ComfyUI sampler. DSG replays the trajectory exactly for deterministic "
                                       "samplers (euler, ddim, heun, dpmpp_2m, ...); ancestral/SDE samplers add "
                                       "fresh noise, so only the model input is replayed."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default="normal",
                               tooltip="ComfyUI scheduler (sigmas as BasicScheduler computes them)."),
                io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01,
                               tooltip="Denoise strength, as in KSampler."),
                io.Noise.Input("noise", optional=True,
                               tooltip="Optional NOISE (e.g. BaseResidualNoise): shapes clip 0's noise and the "
                                       "fresh noise of later clips (clip c uses a copy with seed + c)."),
                io.Boolean.Input("condition_on_previous", default=False, optional=True,
                                 tooltip="Image-to-video models only (Wan 2.1/2.2 I2V and FLF2V, HunyuanVideo 1.5): "
                                         "each clip after the first also gets the previous clip's last `overlap` "
                                         "latent frames as known frames of the model's image input (concat image "
                                         "+ mask, as WanImageToVideo sets from a start image). Beyond the paper."),
                ClipConditionings.Input("clip_positives", optional=True,
                                        tooltip="Optional per-clip positive conditionings (prompt travel) from "
                                                "PerClipConditioning; needs exactly one entry per clip."),
                io.Float.Input("colour_hold", default=0.0, min=0.0, max=1.0, step=0.05, optional=True,
                               tooltip="Against colour drift over long videos (beyond the paper; 0 = off). Each clip "
                                       "after the first gets the first clip's latent colour statistics: per channel, "
                                       "with mu_k, sigma_k the mean and std of clip k's latent over its frames and "
                                       "pixels, x' = (x - mu_k) / sigma_k * sigma_1 + mu_1, blended x + s (x' - x) "
                                       "with s = colour_hold, before the next clip is conditioned on it. A global "
                                       "statistic: it also pulls a clip whose content really changes (a new scene) "
                                       "towards the first clip's colours."),
                io.Model.Input("model_low_noise", optional=True,
                               tooltip="Two-expert models (Wan 2.2 A14B T2V/I2V): the low-noise expert. Every clip "
                                       "samples steps 0 .. low_noise_start_step - 1 with `model` (the high-noise "
                                       "expert) and the rest with this one, as the two KSamplerAdvanced of "
                                       "ComfyUI's Wan 2.2 templates do. Cloned; not changed."),
                io.Int.Input("low_noise_start_step", default=10, min=0, max=10000, optional=True,
                             tooltip="With model_low_noise: the first step sampled by the low-noise expert (ComfyUI's "
                                     "Wan 2.2 14B templates: 10 of 20). Ignored without model_low_noise."),
            ],
            outputs=[io.Latent.Output(tooltip="All total_frames frames.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, total_frames, overlap, noise_recycle, guidance_ratio,
                fnr, overlap_mode, seed, steps, cfg, sampler_name, scheduler, denoise, noise=None,
                clip_positives=None, condition_on_previous=False, colour_hold=0.0, model_low_noise=None,
                low_noise_start_step=10) -> io.NodeOutput:
        check_model(model, NODE)
        if model_low_noise is not None:
            check_model(model_low_noise, NODE, "model_low_noise")
        check(isinstance(low_noise_start_step, int) and low_noise_start_step >= 0, NODE, "low_noise_start_step",
              f"must be an integer >= 0, got {low_noise_start_step!r}")
        samples = latent_image.get("samples") if isinstance(latent_image, dict) else None
        check(not getattr(samples, "is_nested", False), NODE, "latent_image",
              "is an audio-video LATENT (video + audio streams, e.g. LTX-2 or MiniMax H3): clip-by-clip reuse "
              "of the audio stream is not implemented in this pack yet; sample the whole length in one pass "
              "(core context windows, LTXVContextWindows, work with these models) or use a video-only latent")
        check(torch.is_tensor(samples), NODE, "latent_image",
              f"expected a LATENT with a 'samples' tensor, got {type(latent_image).__name__}")
        check_frames(samples, NODE, "latent_image", ndims=(4, 5), layout="[frames, C, H, W] or [B, C, T, H, W]")
        n_frames = samples.shape[frame_axis(samples)]
        with node_errors(NODE, {"clip_frames": "latent_image"}):  # the clip plan checks N, overlap, total, mode
            clips = clip_count(total_frames, n_frames, overlap, overlap_mode)
        check(steps >= 1, NODE, "steps", f"must be >= 1, got {steps}")
        check_range(noise_recycle, 0.0, 1e6, NODE, "noise_recycle")
        check_range(guidance_ratio, 0.0, 1.0, NODE, "guidance_ratio")
        check_range(denoise, 1e-6, 1.0, NODE, "denoise")
        check_range(cfg, 0.0, 100.0, NODE, "cfg")
        check_range(colour_hold, 0.0, 1.0, NODE, "colour_hold")
        if noise is not None:
            check(hasattr(noise, "seed") and callable(getattr(noise, "generate_noise", None)), NODE, "noise",
                  "must be a NOISE object with a seed and generate_noise(latent)")
        if clip_positives is not None:
            if not isinstance(clip_positives, (list, tuple)):
                raise NodeInputError(NODE, "clip_positives", "must be a list of conditionings (use PerClipConditioning)")
            check(len(clip_positives) == clips, NODE, "clip_positives",
                  f"has {len(clip_positives)} entries but the plan has {clips} clips "
                  f"(total_frames={total_frames}, N={n_frames}, overlap={overlap}, overlap_mode={overlap_mode})")
            for c in clip_positives:
                check_conditioning(c, NODE, "clip_positives")
        experts = [("model", model)] + ([("model_low_noise", model_low_noise)] if model_low_noise is not None else [])
        for name, mdl in experts:
            problem = batch_problem(mdl.model_options, samples)  # ComfyUI 0.3.75's core windows (core_windows.py)
            check(problem is None, NODE, name, problem or "")
        if condition_on_previous:
            for name, mdl in experts:
                check(has_image_input(mdl, samples), NODE, "condition_on_previous",
                      "needs an image-to-video model (Wan 2.1/2.2 I2V or FLF2V, HunyuanVideo 1.5) with a 5-D latent; "
                      f"{'this model' if name == 'model' else 'model_low_noise'} has no image input; turn it off")
            check(overlap >= 1, NODE, "overlap", "must be >= 1 with condition_on_previous (the frames it passes on)")
        c = temporal_compression(getattr(model.model, "latent_format", None), samples)
        if clips > 1 and samples.ndim == 5 and c > 1 and (overlap == 0 or overlap_mode != "forward"):
            NodeReporter(NODE).warning(
                f"each clip's first latent frame is a causal one-image-frame latent; with overlap={overlap} and "
                f"overlap_mode={overlap_mode} it lands mid-video, where the VAE decodes it as {c} frames (a short "
                f"glitch). overlap >= 1 with overlap_mode 'forward' leaves it out")
        # the output, plus one clip's noise and trajectory records (steps + 1 latents of N frames)
        frame_bytes = samples.numel() // n_frames * samples.element_size()
        check_memory(frame_bytes * (total_frames + n_frames * (steps + 3)), NODE, "total_frames",
                     f"{total_frames} frames like the clip latent {tuple(samples.shape)}")
        settings = ReuseSettings(
            total_frames=int(total_frames), overlap=int(overlap), noise_recycle=float(noise_recycle),
            guidance_ratio=float(guidance_ratio), fnr=bool(fnr), overlap_mode=overlap_mode, seed=int(seed),
            steps=int(steps), cfg=float(cfg), sampler_name=sampler_name, scheduler=scheduler, denoise=float(denoise),
            reporter=NodeReporter(NODE), condition_on_previous=bool(condition_on_previous),
            colour_hold=float(colour_hold), low_noise_start_step=int(low_noise_start_step))
        return io.NodeOutput(run(model, positive, negative, latent_image, settings, noise=noise,
                                 clip_positives=list(clip_positives) if clip_positives is not None else None,
                                 model_low_noise=model_low_noise))


class PerClipConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("PerClipConditioning"),
            display_name="Per-Clip Conditioning (prompt travel)",
            category=f"{CATEGORY}/sampling",
            **search_aliases("prompt travel", "prompt schedule", "per clip prompt", "long video", "vidrd"),
            description="Appends a positive conditioning for the next `clips` clips of IterativeReuseSampler to a "
                        "list. Chain one node per prompt: A for 2 clips, then B for 3 clips, ...",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="Positive conditioning for these clips."),
                io.Int.Input("clips", default=1, min=1, max=10000,
                             tooltip="How many consecutive clips use this conditioning."),
                ClipConditionings.Input("previous", optional=True,
                                        tooltip="The list so far (from another PerClipConditioning)."),
            ],
            outputs=[ClipConditionings.Output(display_name="clip_positives",
                                              tooltip="The list, for IterativeReuseSampler's clip_positives.")],
        )

    @classmethod
    def execute(cls, conditioning, clips, previous=None) -> io.NodeOutput:
        node = "PerClipConditioning"
        check_conditioning(conditioning, node, "conditioning")
        check(isinstance(clips, int) and 1 <= clips <= 10000, node, "clips", f"must be an integer in [1, 10000], got {clips!r}")
        if previous is not None and not isinstance(previous, (list, tuple)):
            raise NodeInputError(node, "previous", "must be a list from PerClipConditioning")
        for c in previous or []:
            check_conditioning(c, node, "previous")
        return io.NodeOutput(list(previous or []) + [conditioning] * clips)


NODES = [IterativeReuseSampler, PerClipConditioning]
