"""Deterministic random-weight models built from real ComfyUI classes.

- :func:`tiny_model` : an SD1.5-architecture U-Net (``comfy.model_base.BaseModel`` with a
  ``comfy.supported_models.SD15`` config) at small widths, wrapped in a real ``ModelPatcher``.
- :func:`write_random_sd15` : a full-size SD1.5 checkpoint (U-Net, CLIP-L, VAE) with random
  weights, in the original LDM key layout so ``CheckpointLoaderSimple`` loads it unchanged.

ComfyUI skips weight init (``disable_weight_init`` ops), so weights are set here from a seeded
generator: every run builds bit-identical models.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch

from runner.comfy_env import ROOT, bootstrap

TINY_CONTEXT_DIM = 32


def load_pack_module():
    """Import this repository as a package named ``coherent_video`` (the way ComfyUI imports a node pack, by
    path). Needs no ComfyUI: the pack's ``__init__.py`` imports ``comfy_api`` only when ComfyUI calls its entry
    point, so the pure math (``coherent_video.model_patches.noise``...) imports without ComfyUI."""
    if "coherent_video" in sys.modules:
        return sys.modules["coherent_video"]
    spec = importlib.util.spec_from_file_location(
        "coherent_video", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["coherent_video"] = mod
    spec.loader.exec_module(mod)
    return mod


def cache_dir() -> Path:
    d = Path(os.environ.get("COHERENT_VIDEO_CACHE", Path.home() / ".cache" / "comfyui-coherentvideo"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@torch.no_grad()
def deterministic_init_(module: torch.nn.Module, seed: int = 0, gain: float = 1.0) -> torch.nn.Module:
    """Fan-in scaled normal weights, zero biases, unit norm scales; same result for the same seed."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        if p.ndim >= 2:
            fan_in = p[0].numel()
            w = torch.randn(p.shape, generator=g, dtype=torch.float32) * (gain / fan_in**0.5)
            p.copy_(w.to(p.dtype))
        elif name.endswith("bias") or "bias" in name.rsplit(".", 1)[-1]:
            p.zero_()
        else:
            p.fill_(1.0)
    return module


def tiny_unet_config(context_dim: int = TINY_CONTEXT_DIM, model_channels: int = 32) -> dict:
    return {
        "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
        "legacy": False, "adm_in_channels": None, "dtype": torch.float32, "in_channels": 4,
        "model_channels": model_channels, "num_res_blocks": [1, 1], "transformer_depth": [1, 1],
        "channel_mult": [1, 2], "transformer_depth_middle": 1, "use_linear_in_transformer": False,
        "context_dim": context_dim, "num_heads": 8, "transformer_depth_output": [1, 1, 1, 1],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }


def sd15_unet_config() -> dict:
    return {
        "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
        "legacy": False, "adm_in_channels": None, "dtype": torch.float32, "in_channels": 4,
        "model_channels": 320, "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
        "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1, "use_linear_in_transformer": False,
        "context_dim": 768, "num_heads": 8, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }


def _build_base_model(unet_config: dict, seed: int):
    bootstrap()
    import comfy.model_base
    import comfy.supported_models

    model_config = comfy.supported_models.SD15(unet_config)
    model_config.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.BaseModel(model_config, device=torch.device("cpu"))
    deterministic_init_(model.diffusion_model, seed=seed)
    return model


def tiny_model(seed: int = 0, context_dim: int = TINY_CONTEXT_DIM, model_channels: int = 32):
    """A real ``ModelPatcher`` around a tiny SD1.5-architecture U-Net with seeded weights."""
    bootstrap()
    import comfy.model_management as mm
    import comfy.model_patcher

    model = _build_base_model(tiny_unet_config(context_dim, model_channels), seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def sd15_model(seed: int = 0):
    """A real ``ModelPatcher`` around a full-size SD1.5 U-Net with seeded weights (no CLIP/VAE)."""
    bootstrap()
    import comfy.model_management as mm
    import comfy.model_patcher

    model = _build_base_model(sd15_unet_config(), seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def tiny_cond(batch: int = 1, tokens: int = 8, context_dim: int = TINY_CONTEXT_DIM, seed: int = 1):
    """CONDITIONING in ComfyUI's format: a list of [tensor, options]."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(batch, tokens, context_dim, generator=g), {}]]


def model_fingerprint(patcher) -> dict:
    """Everything that must stay unchanged on an input MODEL: weights, patches and options."""
    import copy

    sd = patcher.model.diffusion_model.state_dict()
    return {
        "weights": {k: v.detach().clone() for k, v in sd.items()},
        "patches": {k: len(v) for k, v in patcher.patches.items()},
        "model_options": repr(copy.copy(patcher.model_options)),
        "wrappers": repr(patcher.wrappers),
        "callbacks": repr(patcher.callbacks),
    }


def assert_same_fingerprint(a: dict, b: dict) -> None:
    assert a["patches"] == b["patches"]
    assert a["model_options"] == b["model_options"]
    assert a["wrappers"] == b["wrappers"]
    assert a["callbacks"] == b["callbacks"]
    assert a["weights"].keys() == b["weights"].keys()
    for k in a["weights"]:
        assert torch.equal(a["weights"][k], b["weights"][k]), f"weight {k} changed"


@torch.no_grad()
def write_random_sd15(out_path: str | os.PathLike, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """Write a full-size SD1.5 checkpoint (U-Net 860M, CLIP-L, VAE) with seeded random weights."""
    bootstrap()
    import comfy.utils
    from comfy.ldm.models.autoencoder import AutoencoderKL

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sd: dict[str, torch.Tensor] = {}

    unet = _build_base_model(sd15_unet_config(), seed).diffusion_model
    for k, v in unet.state_dict().items():
        sd["model.diffusion_model." + k] = v.to(dtype)
    del unet

    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    vae = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    deterministic_init_(vae, seed=seed + 1)
    for k, v in vae.state_dict().items():
        sd["first_stage_model." + k] = v.to(dtype)
    del vae

    for k, v in random_clip_l_state_dict(seed=seed + 2, dtype=dtype).items():
        sd["cond_stage_model.transformer." + k] = v

    tmp = out_path.with_suffix(f".{os.getpid()}.tmp")
    comfy.utils.save_torch_file(sd, str(tmp), metadata={"note": "random weights for tests; not a real model"})
    os.replace(tmp, out_path)
    return out_path


def random_clip_l_state_dict(seed: int = 2, dtype: torch.dtype = torch.float16) -> dict:
    """ComfyUI's CLIP-L text model (``comfy.clip_model.CLIPTextModel``, SD1's config) with seeded random weights,
    keyed as a standalone CLIP-L file (``text_model.*``; no ``text_projection``). Seed 2 is the random SD1.5
    checkpoint's text encoder (it uses seed + 2), so both hold the same weights; the demonstration Wan models were
    trained on this encoder's output (``scripts/train_models.py``)."""
    bootstrap()
    import json

    import comfy.clip_model
    import comfy.ops

    cfg_path = Path(comfy.clip_model.__file__).parent / "sd1_clip_config.json"
    clip = comfy.clip_model.CLIPTextModel(json.loads(cfg_path.read_text()), torch.float32, "cpu", comfy.ops.manual_cast)
    deterministic_init_(clip, seed=seed)
    sd = {k: v.to(dtype) for k, v in clip.state_dict().items() if not k.startswith("text_projection")}
    sd["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    return sd


def random_sd15_checkpoint() -> Path:
    """The cached random SD1.5 checkpoint (written on first use), in a models/checkpoints folder."""
    path = cache_dir() / "models" / "checkpoints" / "random_sd15.safetensors"
    if not path.exists():
        write_random_sd15(path)
    return path
