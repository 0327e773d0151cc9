"""Both attention nodes on the full-size random-weight SD1.5 checkpoint (tiny latents), and the two
bundled workflows run headless through tools/run_workflow.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tools.testing import run_workflow_cli, webp_frames, workflow_node_types

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sd15(comfy, sd15_ckpt):
    import comfy.sd

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(sd15_ckpt), output_vae=True, output_clip=True)[:4]
    return model, clip


def test_both_nodes_on_full_size_sd15(comfy, pack, sd15):
    from coherent_video.model_patches.hooks.blocks import attention_blocks
    from coherent_video.model_patches.hooks.state import WRITING_KEY
    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.reference_image import ReferenceImageCondition
    from comfy.patcher_extension import WrappersMP
    from tools.fixtures import assert_same_fingerprint, model_fingerprint

    model, clip = sd15
    keys = [b.key for b in attention_blocks(model.get_model_object("diffusion_model"))]
    assert keys == [("input", i, 0) for i in (1, 2, 4, 5, 7, 8)] + [("middle", 0, 0)] + \
                   [("output", i, 0) for i in range(3, 12)]
    pos = comfy.CLIPTextEncode().encode(clip, "a lighthouse")[0]
    neg = comfy.CLIPTextEncode().encode(clip, "")[0]
    fp = model_fingerprint(model)
    video = {"samples": torch.zeros(2, 4, 8, 8)}
    ref = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))}

    def sample(m, lat):
        return comfy.KSampler().sample(m, 1, 1, 5.0, "euler", "normal", pos, neg, lat)[0]["samples"]

    base = sample(model, video)
    m0, lat0 = ReferenceImageCondition.execute(model, ref, video, strength=0.0, anchor_first_frame=False).args
    m0 = CrossStreamAttention.execute(m0, "sparse_causal", strength=0.0).args[0]
    assert torch.equal(sample(m0, lat0), base)

    m, lat = ReferenceImageCondition.execute(model, ref, video, adain_weight=0.5).args
    m = CrossStreamAttention.execute(m, "anchor", min_level=1).args[0]
    writes = []

    def count(executor, *args, **kwargs):
        writes.append(args[5].get(WRITING_KEY) is not None)
        return executor(*args, **kwargs)

    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "test.count", count)
    out = sample(m, lat)
    assert torch.isfinite(out).all() and not torch.allclose(out, base)
    torch.testing.assert_close(out[0], ref["samples"][0], atol=1e-4, rtol=1e-4)  # frame-0 anchor
    assert writes.count(True) == 1  # one step, one write pass
    assert_same_fingerprint(fp, model_fingerprint(model))


def _run(workflow, tmp_path, sets, models_dir):
    return [p for p in run_workflow_cli(workflow, tmp_path / "out", sets, models_dir) if p.suffix == ".webp"]


def test_reference_image_video_workflow_runs_headless(tmp_path, sd15_ckpt):
    assert {"CheckpointLoaderSimple", "KSampler", "CoherentVideo_ReferenceImageCondition",
            "CoherentVideo_BaseResidualNoise",
            "SamplerCustomAdvanced", "VAEDecode", "SaveAnimatedWEBP"} <= workflow_node_types("VideoGen reference image video - SD1.5.json")
    files = _run("VideoGen reference image video - SD1.5.json", tmp_path,
                 ["4.width=64", "4.height=64", "6.width=64", "6.height=64", "6.batch_size=3", "5.steps=1",
                  "11.steps=1"], Path(sd15_ckpt).parent.parent)
    assert len(files) == 1
    assert webp_frames(files[0]) == (3, (64, 64))


def test_cross_stream_video_workflow_runs_headless(tmp_path, sd15_ckpt):
    assert {"CheckpointLoaderSimple", "CoherentVideo_CrossStreamAttention", "KSampler", "SaveAnimatedWEBP"} <= \
        workflow_node_types("Cross-frame attention video - SD1.5.json")
    files = _run("Cross-frame attention video - SD1.5.json", tmp_path,
                 ["4.width=64", "4.height=64", "4.batch_size=3", "6.steps=1"], Path(sd15_ckpt).parent.parent)
    assert len(files) == 1
    assert webp_frames(files[0]) == (3, (64, 64))
