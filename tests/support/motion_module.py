"""Deterministic random-weight AnimateDiff motion modules (SD1.5 key layout), for interop tests.

AnimateDiff's SD1.5 motion module is a set of temporal transformers, one after each U-Net stage:
``down_blocks.{0..3}.motion_modules.{0,1}``, ``up_blocks.{0..3}.motion_modules.{0,1,2}`` and, from
v2 on, ``mid_block.motion_modules.0``, at the SD1.5 widths 320/640/1280/1280 (mid 1280). Each holds
``temporal_transformer.{norm, proj_in, transformer_blocks.0.{attention_blocks.{0,1}, norms.{0,1}, ff,
ff_norm}, proj_out}``; the temporal attention's sinusoidal position table ``pos_encoder.pe`` has
24 rows in v1 and 32 in v2/v3. The layout is the public AnimateDiff checkpoint format; the loader
that reads it (AnimateDiff-Evolved) checks every key and shape.

Weights are seeded normal (fan-in scaled), so every run writes the same bytes. ``proj_out`` is
non-zero (real checkpoints are; a zero ``proj_out`` would make every module an identity).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

SD15_CHANNELS = (320, 640, 1280, 1280)
MID_CHANNELS = 1280
STANDARD_NAMES = {"v2": "mm_sd_v15_v2.ckpt", "v1": "mm_sd_v15.ckpt"}


def _sinusoidal(length: int, dim: int) -> torch.Tensor:
    """Transformer sinusoidal positions, ``[1, length, dim]`` (sin on even, cos on odd channels)."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim, dtype=torch.float64)
    pe[0, :, 0::2] = torch.sin(pos * freq)
    pe[0, :, 1::2] = torch.cos(pos * freq)
    return pe.float()


def _module_shapes(c: int, pe_len: int) -> list[tuple[str, tuple]]:
    """(key suffix, shape) of one ``temporal_transformer`` at width ``c``."""
    t = "temporal_transformer."
    shapes = [(t + "norm.weight", (c,)), (t + "norm.bias", (c,)),
              (t + "proj_in.weight", (c, c)), (t + "proj_in.bias", (c,))]
    b = t + "transformer_blocks.0."
    for a in range(2):
        at = f"{b}attention_blocks.{a}."
        shapes += [(at + "to_q.weight", (c, c)), (at + "to_k.weight", (c, c)), (at + "to_v.weight", (c, c)),
                   (at + "to_out.0.weight", (c, c)), (at + "to_out.0.bias", (c,)), (at + "pos_encoder.pe", (1, pe_len, c)),
                   (f"{b}norms.{a}.weight", (c,)), (f"{b}norms.{a}.bias", (c,))]
    shapes += [(b + "ff.net.0.proj.weight", (8 * c, c)), (b + "ff.net.0.proj.bias", (8 * c,)),
               (b + "ff.net.2.weight", (c, 4 * c)), (b + "ff.net.2.bias", (c,)),
               (b + "ff_norm.weight", (c,)), (b + "ff_norm.bias", (c,)),
               (t + "proj_out.weight", (c, c)), (t + "proj_out.bias", (c,))]
    return shapes


def motion_module_layout(version: str = "v2") -> list[tuple[str, tuple]]:
    """Every (key, shape) of an SD1.5 motion module: ``v2`` (mid block, 32 positions) or ``v1`` (24, no mid)."""
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
    pe_len = 32 if version == "v2" else 24
    keys = []
    for i, c in enumerate(SD15_CHANNELS):
        for j in range(2):
            keys += [(f"down_blocks.{i}.motion_modules.{j}.{k}", s) for k, s in _module_shapes(c, pe_len)]
    for i, c in enumerate(reversed(SD15_CHANNELS)):
        for j in range(3):
            keys += [(f"up_blocks.{i}.motion_modules.{j}.{k}", s) for k, s in _module_shapes(c, pe_len)]
    if version == "v2":
        keys += [(f"mid_block.motion_modules.0.{k}", s) for k, s in _module_shapes(MID_CHANNELS, pe_len)]
    return keys


@torch.no_grad()
def random_motion_module_state_dict(version: str = "v2", seed: int = 0, dtype: torch.dtype = torch.float16,
                                    out_gain: float = 0.5) -> dict[str, torch.Tensor]:
    """Seeded weights for :func:`motion_module_layout`: fan-in normal matrices (``proj_out`` scaled by
    ``out_gain``), zero biases, unit norm scales, sinusoidal position tables."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in motion_module_layout(version):
        if key.endswith("pos_encoder.pe"):
            w = _sinusoidal(shape[1], shape[2])
        elif len(shape) == 2:
            gain = out_gain if ".proj_out." in key else 1.0
            w = torch.randn(shape, generator=g, dtype=torch.float32) * (gain / shape[1] ** 0.5)
        elif key.endswith(".bias"):
            w = torch.zeros(shape)
        else:
            w = torch.ones(shape)
        sd[key] = w.to(dtype).contiguous()
    return sd


def write_random_motion_module(out_path: str | os.PathLike, version: str = "v2", seed: int = 0) -> Path:
    """Write :func:`random_motion_module_state_dict` as a safetensors file (atomically)."""
    from safetensors.torch import save_file

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sd = random_motion_module_state_dict(version, seed)
    tmp = out_path.with_name(out_path.name + f".{os.getpid()}.tmp")
    save_file(sd, str(tmp), metadata={"note": f"random-weight AnimateDiff {version} layout for tests; not a real model"})
    os.replace(tmp, out_path)
    return out_path


def random_motion_module(version: str = "v2") -> Path:
    """The cached random motion module (written on first use) in ``<cache>/models/animatediff_models``."""
    from .fixtures import cache_dir

    path = cache_dir() / "models" / "animatediff_models" / f"random_mm_sd15_{version}.safetensors"
    if not path.exists():
        write_random_motion_module(path, version)
    return path
