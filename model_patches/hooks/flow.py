"""Flow-based temporal upsampling, the ComfyUI side: RIFE files in the model folders, layouts, and the whole-video run.

- RIFE files are looked up read-only in the ``frame_interpolation`` folders ComfyUI knows (core registers
  them from 0.35 on, extra_model_paths.yaml may add some), else ``<models_dir>/frame_interpolation``; no
  ComfyUI global is changed, at import or later.
- :func:`run` upsamples IMAGE frames and/or a 4-D/5-D LATENT with the weight-free flow
  (:mod:`..flow`) or a RIFE network (:mod:`..rife`) on ComfyUI's device, with a progress bar and
  interrupt checks between chunks. Inputs are assumed valid (the node checks them).
"""
from __future__ import annotations

import os
import re
import weakref
from dataclasses import dataclass

import torch

import comfy.model_management as mm
import comfy.utils
import folder_paths

from .. import rife as rifelib
from ..errors import ParameterError
from ..flow.upsample import flow_interpolator, guide_from_channels, output_times, upsample_video
from ..video import frame_axis
from .state import require_memory

MODEL_FOLDER = "frame_interpolation"
RIFE_EXTENSIONS = {".pkl", ".pth", ".pt", ".ckpt", ".safetensors"}


def rife_folders() -> list[str]:
    """Folders searched for RIFE files, read-only (see the module docstring)."""
    if MODEL_FOLDER in folder_paths.folder_names_and_paths:
        return folder_paths.get_folder_paths(MODEL_FOLDER)
    return [os.path.join(folder_paths.models_dir, MODEL_FOLDER)]


def rife_files() -> list[str]:
    """Weights files (relative names) in :func:`rife_folders`, sorted; RIFE and FILM files alike (the
    loader tells them apart), as core's own loader lists them."""
    names = set()
    for folder in rife_folders():
        files, _ = folder_paths.recursive_search(folder, excluded_dir_names=[".git"])
        names.update(folder_paths.filter_files_extensions(files, RIFE_EXTENSIONS))
    return sorted(names)


def rife_path(name: str) -> str | None:
    for folder in rife_folders():
        path = os.path.abspath(os.path.join(folder, name))
        if os.path.commonpath([os.path.abspath(folder), path]) == os.path.abspath(folder) and os.path.isfile(path):
            return path
    return None


def load_rife(name) -> rifelib.IFNet:
    """The RIFE 4.x network in the file ``name`` of the model folders; :class:`ParameterError` on ``rife_name``."""
    path = rife_path(name) if isinstance(name, str) else None
    if path is None:
        raise ParameterError("rife_name", f"'{name}' not found in models/{MODEL_FOLDER}/")
    try:
        return rifelib.load_rife(path)
    except rifelib.RifeFormatError as e:
        raise ParameterError("rife_name", str(e)) from None


def core_interp_model_type():
    """Core ComfyUI's frame-interpolation model type (``INTERP_MODEL``, what ``FrameInterpolationModelLoader``
    returns; ComfyUI 0.33 and later), or None where this ComfyUI has no such loader (feature-detected)."""
    try:
        from comfy_extras.nodes_frame_interpolation import FrameInterpolationModel
    except Exception:  # noqa: BLE001 - an older ComfyUI: no core frame interpolation
        return None
    return FrameInterpolationModel


_CORE_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_from_core = weakref.WeakKeyDictionary()


def is_core_interp_model(model) -> bool:
    """A ModelPatcher from core's ``FrameInterpolationModelLoader`` (RIFE or FILM inside)."""
    return hasattr(model, "model") and hasattr(model, "load_device") and isinstance(getattr(model, "model"), torch.nn.Module)


def rife_from_core(model) -> rifelib.IFNet:
    """Our RIFE 4.x network with the weights of core's loaded RIFE (``INTERP_MODEL``), so one loaded file
    serves both core's FrameInterpolate and FlowTemporalUpsample. Core's IFNet names its blocks
    ``blocks.<i>.``; ours (and the released files) ``block<i>.``; the tensors are the same. FILM (or any
    model without that layout) is a :class:`ParameterError` on ``rife_model``. Built once per core model."""
    net = model.model
    if net in _from_core:
        return _from_core[net]
    sd = net.state_dict()
    if not any(_CORE_BLOCK.match(k) for k in sd):
        raise ParameterError("rife_model", f"the interpolation model ({type(net).__name__}) is not RIFE 4.x; this node "
                                           "runs RIFE 4.x only (use core's FrameInterpolate for FILM)")
    try:
        ours = rifelib.build_ifnet({_CORE_BLOCK.sub(r"block\1.", k): v for k, v in sd.items()})
    except rifelib.RifeFormatError as e:
        raise ParameterError("rife_model", f"core's RIFE model does not fit the RIFE 4.x layout: {e}") from None
    _from_core[net] = ours
    return ours


def latent_frames(samples: torch.Tensor) -> tuple[torch.Tensor, callable]:
    """Latent as frames ``(N, C, h, w)`` plus the inverse: 4-D = frames on the batch axis;
    5-D ``(B, C, T, h, w)`` = B videos of T frames (frames of all videos are stacked)."""
    if samples.ndim == 4:
        return samples, lambda x, n_out: x
    b, c, t, h, w = samples.shape
    frames = samples.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)

    def back(x, n_out):
        return x.reshape(b, n_out, c, h, w).permute(0, 2, 1, 3, 4)

    return frames, back


@dataclass(frozen=True)
class UpsampleSettings:
    multiplier: int = 2
    target_fps: float = 0.0                     # > 0: resample to this rate instead of the multiplier
    source_fps: float = 24.0
    quality: str = "balanced"                   # flow.tvl1.PRESETS
    occlusion: str = "visibility_warp"          # flow.warp.OCCLUSION_MODES
    scene_cut_threshold: float | None = 0.35    # None: no scene-cut detection
    chunk_size: int = 4                         # frame pairs at once


def run(images: torch.Tensor | None, latent: dict | None, settings: UpsampleSettings, rife_model=None):
    """``(images, latent, fps)`` upsampled: input frame k is output frame k * multiplier, bit-identical.

    With images the flow is computed on the images (the latent, when given too, follows it, resized);
    a latent alone is upsampled video by video on its first principal component.
    """
    s = settings
    use_fps = bool(s.target_fps) and s.target_fps > 0
    device = mm.get_torch_device()
    lat_frames = back = None
    if latent is not None:
        lat_frames, back = latent_frames(latent["samples"])

    # one or more videos (5-D latent with B > 1): each is upsampled on its own
    if images is not None:
        videos = [[images.movedim(-1, 1)]]
        if latent is not None:
            videos[0].append(lat_frames)
        guides = [images.movedim(-1, 1)]
        clamp = [True, False]
    else:
        samples = latent["samples"]
        vids = lat_frames.split(samples.shape[frame_axis(samples)])
        videos = [[v] for v in vids]
        guides = [guide_from_channels(v) for v in vids]
        clamp = [False]
    nf = videos[0][0].shape[0]
    if use_fps:
        k, t = output_times(nf, source_fps=s.source_fps, target_fps=s.target_fps)
        fps_out = float(s.target_fps)
    else:
        k, t = output_times(nf, multiplier=s.multiplier)
        fps_out = float(s.source_fps) * s.multiplier
    frame_bytes = sum(x[0].numel() * x.element_size() for v in videos for x in v)  # one frame of every stream
    require_memory(k.numel() * frame_bytes, "target_fps" if use_fps else "multiplier",
                   f"the output of {k.numel()} frames", videos[0][0].device)

    if rife_model is None:
        fn = flow_interpolator(s.quality, s.occlusion, s.scene_cut_threshold, device, clamp=clamp)
    else:
        fn = rifelib.rife_interpolator(rife_model.to(device), s.scene_cut_threshold)

    pbar = comfy.utils.ProgressBar((nf - 1) * len(videos))

    def on_chunk(pairs: int) -> None:
        pbar.update(pairs)
        mm.throw_exception_if_processing_interrupted()

    mm.throw_exception_if_processing_interrupted()
    results = [upsample_video([g, *v], k, t, fn, s.chunk_size, on_chunk) for g, v in zip(guides, videos)]

    out_images = out_latent = None
    if images is not None:
        out_images = results[0][0].movedim(1, -1)
        lat = results[0][1] if latent is not None else None
    else:
        lat = torch.cat([r[0] for r in results])
    if latent is not None:
        out_latent = {kk: vv for kk, vv in latent.items() if kk not in ("noise_mask", "batch_index")}
        out_latent["samples"] = back(lat, k.numel())
    return out_images, out_latent, fps_out
