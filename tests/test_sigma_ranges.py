"""start_percent/end_percent become sigmas at sampling time, from the model_sampling the model samples with.

A node that swaps the schedule after ours (AnimateDiff-Evolved's loader with its beta schedule, or core's
ModelSamplingDiscrete used here) must not change which steps our patch is active on: node order does not
matter. With the old node-time conversion the two orders sample differently.
"""
from __future__ import annotations

import pytest
import torch

FRAMES, SIZE, STEPS = 4, 8, 8
START, END = 0.0, 0.4


@pytest.fixture(scope="module")
def N(pack, comfy):
    from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete

    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.motion import MotionSmoothingPatch
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    return {"swap": lambda m: ModelSamplingDiscrete().patch(m, "eps", True)[0],
            "cross": lambda m: (CrossStreamAttention.execute(m, "anchor", start_percent=START, end_percent=END).args[0], None),
            "reference": lambda m: ReferenceImageCondition.execute(
                m, {"samples": torch.randn(1, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(5))},
                _video(), start_percent=START, end_percent=END, anchor_first_frame=True).args,
            "motion": lambda m: (MotionSmoothingPatch.execute(m, 0.8, 1.0, START, END).args[0], None)}


def _video():
    return {"samples": torch.zeros(FRAMES, 4, SIZE, SIZE)}


def _sample(model, latent, cond):
    import nodes

    pos, neg = cond
    return nodes.KSampler().sample(model, 3, STEPS, 2.0, "euler", "normal", pos, neg, latent)[0]["samples"]


@pytest.mark.parametrize("node", ["cross", "reference", "motion"])
def test_percent_range_follows_the_sampling_schedule(comfy, N, node, tiny_model, tiny_cond):
    import comfy.samplers

    swapped = N["swap"](tiny_model)
    ms_node, ms_run = tiny_model.get_model_object("model_sampling"), swapped.get_model_object("model_sampling")
    # the test means something: the end of the range differs between the schedules, and a step lies between
    lo, hi = sorted((float(ms_node.percent_to_sigma(END)), float(ms_run.percent_to_sigma(END))))
    sigmas = comfy.samplers.calculate_sigmas(ms_run, "normal", STEPS)
    assert any(lo < float(s) < hi for s in sigmas), (lo, hi, sigmas)

    before, lat_b = N[node](tiny_model)   # our node, then the schedule swap
    before = N["swap"](before)
    after, lat_a = N[node](swapped)       # the swap, then our node
    lat_b, lat_a = lat_b or _video(), lat_a or _video()
    torch.testing.assert_close(_sample(before, lat_b, tiny_cond), _sample(after, lat_a, tiny_cond),
                               atol=0, rtol=0)
