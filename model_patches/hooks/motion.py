"""ComfyUI hook for in-sampler motion smoothing (DSDN-style), built on :mod:`..motion`.

One post-CFG function (``ModelPatcher.set_model_sampler_post_cfg_function``): at every model
call whose sigma lies in ``[sigma_end, sigma_start]`` the CFG-combined denoised estimate is split
into its temporal mean (content) and adjacent-frame differences (motion), the motion is Gaussian
low-passed over the frame axis and the video is recombined around the unchanged mean.

Layout. After CFG the branches are already combined, so ``denoised`` holds only the frames:
``[F, C, H, W]`` for image models running a video on the batch axis (AnimateDiff-style) or
``[B, C, T, H, W]`` for 5-D video latents (frames on dim 2). AnimateDiff-Evolved's context windows
act inside ``calc_cond_batch``; the post-CFG function sees the merged full-length estimate, so
``ad_params["sub_idxs"]`` needs no handling here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import Reporter
from ..motion import apply_frame_operator, motion_smoothing_matrix
from ..video import frame_axis
from .comfy_compat import latent_streams, sampling_latent_shapes
from .core_windows import add_batch_guard
from .state import SigmaRange


@dataclass(frozen=True)
class MotionSmoothingSettings:
    strength: float = 0.5        # blend of the smoothed estimate per step (0 = unpatched)
    sigma_frames: float = 1.0    # temporal Gaussian width in frames
    start_percent: float = 0.0
    end_percent: float = 1.0
    reporter: Reporter = Reporter()  # names the node when core context windows cannot sample (core_windows.py)


class MotionSmoothingPostCFG:
    """The post-CFG callable. Small on purpose: its whole state is its settings, its sigma range (and its
    matrices)."""

    def __init__(self, settings: MotionSmoothingSettings, sigmas: SigmaRange):
        self.s, self.sigmas = settings, sigmas
        self._matrices: dict = {}  # num_frames -> matrix; lives with the patched model, no module-level cache

    def active(self, sigma: torch.Tensor, model_sampling=None) -> bool:
        """In range, with the percent range read from the model_sampling sampled with now (a later node
        such as AnimateDiff-Evolved's loader may have swapped the schedule after this node ran)."""
        return self.sigmas.contains(float(sigma.reshape(-1)[0]), model_sampling)

    def __call__(self, args: dict) -> torch.Tensor:
        denoised = args["denoised"]
        if self.s.strength == 0.0 or self.s.sigma_frames <= 0.0:
            return denoised
        streams, join = latent_streams(denoised, sampling_latent_shapes(args.get("model")))
        if len(streams) > 1:  # packed audio-video latent: smooth the video stream, the audio passes untouched
            return join([self._smooth(streams[0], args)] + streams[1:])
        return self._smooth(denoised, args)

    def _smooth(self, denoised: torch.Tensor, args: dict) -> torch.Tensor:
        dim = frame_axis(denoised)
        num_frames = denoised.shape[dim]
        if num_frames < 3 or not self.active(args["sigma"], getattr(args.get("model"), "model_sampling", None)):
            return denoised
        matrix = self._matrices.get(num_frames)
        if matrix is None:
            matrix = self._matrices[num_frames] = motion_smoothing_matrix(num_frames, self.s.strength,
                                                                          self.s.sigma_frames)
        return apply_frame_operator(denoised, matrix, dim)

    def __repr__(self) -> str:
        lo, hi = self.sigmas.fallback[1], self.sigmas.fallback[0]
        return (f"MotionSmoothingPostCFG(strength={self.s.strength}, sigma_frames={self.s.sigma_frames}, "
                f"sigma=[{lo:.4g}, {hi:.4g}])")


def patch(model, settings: MotionSmoothingSettings):
    """Clone ``model`` and attach :class:`MotionSmoothingPostCFG` (strength 0: a plain clone); the input
    model is untouched."""
    m = model.clone()
    if settings.strength == 0:
        return m
    sigmas = SigmaRange.of(m, settings.start_percent, settings.end_percent)
    m.set_model_sampler_post_cfg_function(MotionSmoothingPostCFG(settings, sigmas))
    add_batch_guard(m, settings.reporter)
    return m
