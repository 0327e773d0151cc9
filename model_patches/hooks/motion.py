"""ComfyUI hook for in-sampler motion smoothing (DSDN-style), built on :mod:`.motion`.

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

import torch

from ..motion import apply_frame_operator, motion_smoothing_matrix


def frame_axis(x: torch.Tensor) -> int:
    """Frames are on dim 2 of a 5-D latent and on the batch axis otherwise."""
    return 2 if x.ndim == 5 else 0


class MotionSmoothingPostCFG:
    """The post-CFG callable. Small on purpose: its whole state is four numbers (and its matrices)."""

    def __init__(self, strength: float, sigma_frames: float, sigma_start: float, sigma_end: float,
                 start_percent: float | None = None, end_percent: float | None = None):
        self.strength = float(strength)
        self.sigma_frames = float(sigma_frames)
        self.sigma_start = float(sigma_start)
        self.sigma_end = float(sigma_end)
        self.start_percent, self.end_percent = start_percent, end_percent
        self._matrices: dict = {}  # num_frames -> matrix; lives with the patched model, no module-level cache

    def active(self, sigma: torch.Tensor, model_sampling=None) -> bool:
        """In range, with the percent range read from the model_sampling sampled with now (a later node
        such as AnimateDiff-Evolved's loader may have swapped the schedule after this node ran)."""
        s = float(sigma.reshape(-1)[0])
        sigma_start, sigma_end = self.sigma_start, self.sigma_end
        if model_sampling is not None and self.start_percent is not None and self.end_percent is not None:
            sigma_start = float(model_sampling.percent_to_sigma(self.start_percent))
            sigma_end = float(model_sampling.percent_to_sigma(self.end_percent))
        return sigma_end <= s <= sigma_start

    def __call__(self, args: dict) -> torch.Tensor:
        denoised = args["denoised"]
        if self.strength == 0.0 or self.sigma_frames <= 0.0:
            return denoised
        dim = frame_axis(denoised)
        num_frames = denoised.shape[dim]
        if num_frames < 3 or not self.active(args["sigma"], getattr(args.get("model"), "model_sampling", None)):
            return denoised
        matrix = self._matrices.get(num_frames)
        if matrix is None:
            matrix = self._matrices[num_frames] = motion_smoothing_matrix(num_frames, self.strength, self.sigma_frames)
        return apply_frame_operator(denoised, matrix, dim)

    def __repr__(self) -> str:
        return (f"MotionSmoothingPostCFG(strength={self.strength}, sigma_frames={self.sigma_frames}, "
                f"sigma=[{self.sigma_end:.4g}, {self.sigma_start:.4g}])")


def patch_motion_smoothing(model, strength: float, sigma_frames: float = 1.0,
                           start_percent: float = 0.0, end_percent: float = 1.0):
    """Clone ``model`` and attach :class:`MotionSmoothingPostCFG`; the input model is untouched."""
    m = model.clone()
    sampling = m.get_model_object("model_sampling")
    sigma_start = float(sampling.percent_to_sigma(start_percent))
    sigma_end = float(sampling.percent_to_sigma(end_percent))
    m.set_model_sampler_post_cfg_function(MotionSmoothingPostCFG(strength, sigma_frames, sigma_start, sigma_end,
                                                                 float(start_percent), float(end_percent)))
    return m
