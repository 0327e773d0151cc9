"""Every U-Net node on a tiny SDXL-architecture U-Net (``comfy.model_base.SDXL``: linear transformers, no
attention at the first level, ADM conditioning from pooled text + size embeddings), through KSampler.

The README claims SD1.x/SD2/SDXL U-Nets; the other tests use SD1.5 ones. Each node: the run is finite,
the patch changes the result, strength 0 (where the node has one) is bit-identical to the unpatched model,
and the input model is unchanged.
"""
from __future__ import annotations

import pytest
import torch

from tools import fixtures

FRAMES, SIZE, STEPS, CTX, POOLED = 4, 8, 2, 32, 32


def tiny_sdxl(seed: int = 0):
    import comfy.model_base
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models

    unet_config = {
        "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
        "legacy": False, "num_classes": "sequential", "adm_in_channels": POOLED + 6 * 256, "dtype": torch.float32,
        "in_channels": 4, "model_channels": 32, "num_res_blocks": [1, 1, 1], "transformer_depth": [0, 1, 2],
        "channel_mult": [1, 2, 2], "transformer_depth_middle": 2, "use_linear_in_transformer": True,
        "context_dim": CTX, "num_head_channels": 16, "num_heads": -1, "transformer_depth_output": [0, 0, 1, 1, 2, 2],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }
    config = comfy.supported_models.SDXL(unet_config)
    config.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.SDXL(config, device=torch.device("cpu"))
    fixtures.deterministic_init_(model.diffusion_model, seed=seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def sdxl_cond(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 8, CTX, generator=g), {"pooled_output": torch.randn(1, POOLED, generator=g),
                                                   "width": SIZE * 8, "height": SIZE * 8}]]


def video():
    return {"samples": torch.zeros(FRAMES, 4, SIZE, SIZE)}


def sample(model, latent):
    import nodes

    return nodes.KSampler().sample(model, 3, STEPS, 2.0, "euler", "normal", sdxl_cond(1), sdxl_cond(2),
                                   latent)[0]["samples"]


@pytest.fixture(scope="module")
def N(pack, comfy):
    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel
    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.motion import MotionSmoothingPatch
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    ref = {"samples": torch.randn(1, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(5))}
    return {
        "reference": lambda m, s: ReferenceImageCondition.execute(m, ref, video(), strength=s, adain_weight=0.5,
                                                                  anchor_first_frame=False).args,
        "cross_anchor": lambda m, s: (CrossStreamAttention.execute(m, "anchor", strength=s).args[0], video()),
        "cross_sparse_causal": lambda m, s: (CrossStreamAttention.execute(m, "sparse_causal", strength=s).args[0], video()),
        "cross_mutual": lambda m, s: (CrossStreamAttention.execute(m, "mutual", strength=s).args[0], video()),
        "motion_smoothing": lambda m, s: (MotionSmoothingPatch.execute(m, s).args[0], video()),
        "base_residual_noise_model": lambda m, s: (BaseResidualNoiseModel.execute(
            m, "shared", 0.5 if s else 0.0, 1.0, -1, True, False).args[0], video()),
    }


@pytest.fixture(scope="module")
def sdxl(comfy):
    return tiny_sdxl()


@pytest.fixture(scope="module")
def plain(sdxl):
    return sample(sdxl, video())


@pytest.mark.parametrize("node", ["reference", "cross_anchor", "cross_sparse_causal", "cross_mutual",
                                  "motion_smoothing", "base_residual_noise_model"])
def test_unet_node_on_tiny_sdxl(N, sdxl, plain, node):
    from tools.fixtures import assert_same_fingerprint, model_fingerprint

    assert type(sdxl.model).__name__ == "SDXL"
    before = model_fingerprint(sdxl)
    out = sample(*N[node](sdxl, 1.0))
    assert torch.isfinite(out).all()
    assert not torch.equal(out, plain)
    if node != "base_residual_noise_model":  # its 'off' setting (base_ratio 0) is still its own noise
        assert torch.equal(sample(*N[node](sdxl, 0.0)), plain)
    assert_same_fingerprint(before, model_fingerprint(sdxl))


def test_sdxl_attention_blocks_found(pack, sdxl):
    from coherent_video.model_patches.hooks.blocks import attention_blocks

    blocks = attention_blocks(sdxl.get_model_object("diffusion_model"))
    assert blocks and all(b.level >= 1 for b in blocks)  # SDXL has no attention at latent resolution
    assert {b.key[0] for b in blocks} == {"input", "middle", "output"}
