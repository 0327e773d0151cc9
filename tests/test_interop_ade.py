"""Interop: our nodes beside the real, unmodified AnimateDiff-Evolved (ADE) with a motion module.

ADE is read from ``<repo parent>/shared/interop/ComfyUI-AnimateDiff-Evolved`` (see its README there)
and loaded into the test ComfyUI with ComfyUI's own custom-node loader; every test skips, with the
reason, when it is absent. The motion modules are deterministic random-weight files in AnimateDiff's
SD1.5 v2 and v1 layouts (``tools/motion_module.py``), written once into the cache next to the random
SD1.5 checkpoint. ADE's motion modules have fixed SD1.5 widths, so the U-Net is the full-size random
SD1.5 one, sampled at 4x4 latents for one step to keep CI time modest.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from tools import comfy_env, fixtures, motion_module

ADE_DIR = comfy_env.ROOT.parent / "shared" / "interop" / "ComfyUI-AnimateDiff-Evolved"
FRAMES, WINDOW, OVERLAP = 6, 4, 2
H = W = 4

pytestmark = pytest.mark.skipif(not (ADE_DIR / "__init__.py").is_file(),
                                reason=f"AnimateDiff-Evolved not found at {ADE_DIR} (see shared/interop/README.md)")


@pytest.fixture(scope="module")
def ade(comfy):
    """ADE's node classes, loaded once by ComfyUI's custom-node loader, and the motion-module folder."""
    import folder_paths
    import nodes

    if "ADE_AnimateDiffLoaderGen1" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.load_custom_node(str(ADE_DIR)))
    assert "ADE_AnimateDiffLoaderGen1" in nodes.NODE_CLASS_MAPPINGS, "ADE failed to load"
    for version in ("v2", "v1"):
        folder = str(motion_module.random_motion_module(version).parent)
    folder_paths.add_model_folder_path("animatediff_models", folder)
    return nodes.NODE_CLASS_MAPPINGS


@pytest.fixture(scope="module")
def sd15(sd15_ckpt):
    import comfy.sd

    return comfy.sd.load_checkpoint_guess_config(str(sd15_ckpt), output_vae=False, output_clip=False)[0]


def _cond():
    g = torch.Generator().manual_seed(3)
    return [[torch.randn(1, 77, 768, generator=g), {}]]


def _latent():
    return {"samples": torch.zeros(FRAMES, 4, H, W)}


def _reference():
    g = torch.Generator().manual_seed(4)
    return {"samples": torch.randn(1, 4, H, W, generator=g)}


_MOTION = {}


def motion_model(ade, version: str):
    """ADE's loaded motion model (the last version loaded is kept, to bound memory; ADE's apply node
    clones it)."""
    if version not in _MOTION:
        import gc

        import comfy.model_management

        _MOTION.clear()
        comfy.model_management.unload_all_models()
        gc.collect()
        name = motion_module.random_motion_module(version).name
        (_MOTION[version],) = ade["ADE_LoadAnimateDiffModel"]().load_motion_model(name)
    return _MOTION[version]


def with_ade(ade, model, version: str, context: bool, sample_settings=None):
    """ADE's Gen2 chain: Apply AnimateDiff Model -> Use Evolved Sampling (with context options)."""
    ctx = None
    if context:
        (ctx,) = ade["ADE_StandardStaticContextOptions"]().create_options(WINDOW, OVERLAP)
    (m_models,) = ade["ADE_ApplyAnimateDiffModelSimple"]().apply_motion_model(motion_model(ade, version))
    (m,) = ade["ADE_UseEvolvedSampling"]().use_evolved_sampling(model, "autoselect", m_models=m_models,
                                                               context_options=ctx, sample_settings=sample_settings)
    return m


def fingerprint(patcher) -> dict:
    """:func:`fixtures.model_fingerprint` with a digest per weight instead of a copy (the U-Net is
    full-size SD1.5), taken with every model unloaded so ADE has ejected its motion modules."""
    import hashlib

    import comfy.model_management

    comfy.model_management.unload_all_models()
    digest = {k: hashlib.blake2b(v.detach().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes(),
                                 digest_size=16).hexdigest() for k, v in patcher.model.state_dict().items()}
    return {"weights": digest, "patches": {k: len(v) for k, v in patcher.patches.items()},
            "model_options": repr(patcher.model_options), "wrappers": repr(patcher.wrappers),
            "callbacks": repr(patcher.callbacks)}


def sample(model, latent, seed: int = 7):
    import nodes

    return nodes.common_ksampler(model, seed, 1, 1.0, "euler", "normal", _cond(), _cond(), latent)[0]["samples"]


def reference(model, strength: float, latent=None):
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    out = ReferenceImageCondition.execute(model, _reference(), latent or _latent(), strength=strength,
                                          anchor_first_frame=False)
    return out.args if hasattr(out, "args") else out.result


def test_motion_module_layout():
    v2, v1 = motion_module.motion_module_layout("v2"), motion_module.motion_module_layout("v1")
    assert len(v2) == 588 and sum(torch.Size(s).numel() for _, s in v2) == pytest.approx(453.2e6, rel=0.01)
    assert any(k.startswith("mid_block.") for k, _ in v2) and not any(k.startswith("mid_block.") for k, _ in v1)
    sd = motion_module.random_motion_module_state_dict("v1")
    assert all(sd[k].abs().sum() > 0 for k in sd if k.endswith("proj_out.weight"))
    assert sd["down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0"
              ".pos_encoder.pe"].shape == (1, 24, 320)


CASES = [  # (motion module, our node before ADE's loader, ADE context options)
    ("v2", False, False),
    ("v2", True, True),
    ("v1", False, True),
    ("v1", True, False),
]


@pytest.mark.parametrize("version,before,context", CASES, ids=[f"{v}-{'before' if b else 'after'}-"
                                                                f"{'ctx' if c else 'noctx'}" for v, b, c in CASES])
def test_reference_image_condition_under_motion_module(ade, sd15, pack, version, before, context):
    """The reference write pass runs under ADE's motion module (v1 needs whole clips for its GroupNorm),
    the reference changes the frames, strength 0 is bit-identical to ADE alone, and neither the input
    model nor ADE's model is changed."""
    base_fp = fingerprint(sd15)
    plain = with_ade(ade, sd15, version, context)
    ade_fp, mm_fp = fingerprint(plain), fingerprint(motion_model(ade, version))
    alone = sample(plain, _latent())
    results = {}
    for strength in ((0.0, 1.0) if version == "v2" or before else (1.0,)):
        if before:
            m, lat = reference(sd15, strength)
            m = with_ade(ade, m, version, context)
        else:
            m, lat = reference(plain, strength)
        results[strength] = sample(m, lat)
    assert torch.isfinite(results[1.0]).all()
    if 0.0 in results:
        assert torch.equal(results[0.0], alone)
    assert not torch.equal(results[1.0], alone)
    assert fingerprint(sd15) == base_fp
    assert fingerprint(plain) == ade_fp
    assert fingerprint(motion_model(ade, version)) == mm_fp


def test_runner_finds_pack_model_folders_and_runs_ade_with_reference(tmp_path):
    """Headless runner, ADE loaded from its folder (--custom-nodes-dir): the motion module is found in
    --models-dir's animatediff_models/ (a folder ADE registers while loading), and SD1.5 + ADE +
    ReferenceImageCondition samples."""
    import json

    from tools.testing import run_workflow_cli

    ckpt = fixtures.random_sd15_checkpoint()
    motion_module.random_motion_module("v2")
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt.name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a boat"}},
        "3": {"class_type": "ADE_LoadAnimateDiffModel", "inputs": {"model_name": "random_mm_sd15_v2.safetensors"}},
        "4": {"class_type": "ADE_ApplyAnimateDiffModelSimple", "inputs": {"motion_model": ["3", 0]}},
        "5": {"class_type": "ADE_UseEvolvedSampling", "inputs": {"model": ["1", 0], "m_models": ["4", 0],
                                                                "beta_schedule": "autoselect"}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 4}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1}},
        "8": {"class_type": "CoherentVideo_ReferenceImageCondition", "inputs": {"model": ["5", 0], "reference": ["7", 0],
                                                                 "video_latent": ["6", 0],
                                                                 "strength": 1.0, "style_fidelity": 0.5,
                                                                 "attention_weight": 1.0, "adain_weight": 0.0,
                                                                 "start_percent": 0.0, "end_percent": 1.0,
                                                                 "anchor_first_frame": True,
                                                                 "concat_reference": False, "noise_seed": 0}},
        "9": {"class_type": "KSampler", "inputs": {"model": ["8", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["8", 1], "seed": 1, "steps": 1, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "10": {"class_type": "SaveLatent", "inputs": {"samples": ["9", 0], "filename_prefix": "ade_ref"}},
    }
    wf = tmp_path / "ade_reference_api.json"
    wf.write_text(json.dumps(prompt))
    files = run_workflow_cli(str(wf), tmp_path / "out", models_dir=ckpt.parent.parent, input_dir=None,
                             custom_nodes_dir=ADE_DIR.parent)
    assert [f.suffix for f in files] == [".latent"]


@pytest.mark.parametrize("before", [True, False], ids=["ours-before-ade", "ours-after-ade"])
def test_freenoise_with_base_residual_noise_model_warns(ade, pack, tiny_model, tiny_cond, caplog, before):
    """ADE's FreeNoise and BaseResidualNoiseModel both replace the initial noise: detected and warned
    about in either order (the README says which noise wins in each)."""
    import logging

    import nodes

    from coherent_video.model_patches.hooks.noise import FREENOISE_WARNING
    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel

    (ss,) = ade["ADE_AnimateDiffSamplingSettings"]().create_settings(0, "FreeNoise", "comfy", 0)
    patch = lambda m: BaseResidualNoiseModel.execute(m, "shared", 0.5, 1.0, -1, True, False).args[0]  # noqa: E731
    evolve = lambda m: ade["ADE_UseEvolvedSampling"]().use_evolved_sampling(m, "autoselect", sample_settings=ss)[0]  # noqa: E731
    m = evolve(patch(tiny_model)) if before else patch(evolve(tiny_model))
    with caplog.at_level(logging.WARNING):
        out = nodes.common_ksampler(m, 1, 1, 1.0, "euler", "normal", *tiny_cond,
                                    {"samples": torch.zeros(4, 4, 8, 8)})[0]["samples"]
    assert torch.isfinite(out).all()
    assert FREENOISE_WARNING in caplog.text
