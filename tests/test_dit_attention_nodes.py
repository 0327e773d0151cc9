"""The SAME ReferenceImageCondition and CrossStreamAttention nodes on DiT video models: what a workflow gets."""
from __future__ import annotations


import pytest
import torch

from support import families as F


from support.testing import attention_nodes as _nodes, node_outputs as _out


def _reference(fx, frames=1, seed=3):
    s = fx.latent["samples"]
    return {"samples": torch.randn(1, s.shape[1], frames, *s.shape[3:], generator=torch.Generator().manual_seed(seed))}


def _windows(model):
    return F.core_windows("WanContextWindowsManual", model, context_length=17, context_overlap=5,
                          context_schedule="standard_static", context_stride=1, closed_loop=False,
                          fuse_method="pyramid", freenoise=False)


@pytest.mark.parametrize("family", ("wan21_t2v", "hunyuan15_t2v"))
def test_reference_node_on_dit(comfy, pack, family):
    Ref, _, _ = _nodes(pack)
    fx = F.build(family, frames=3)
    before = F.model_fingerprint(fx.model)
    base = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=2)
    ref = _reference(fx)
    anchor = family != "hunyuan15_t2v"   # core 0.3.75's HunyuanVideo 1.5 fails on any noise mask
    m, lat = _out(Ref.execute(fx.model, ref, fx.latent, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0, anchor))
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2)
    if anchor:
        assert torch.allclose(out[:, :, 0], ref["samples"][:, :, 0], atol=1e-5)     # anchored latent frame 0
    assert (out[:, :, 1:] - base[:, :, 1:]).abs().max() > 1e-3
    m0, lat0 = _out(Ref.execute(fx.model, ref, fx.latent, 0.0))
    assert lat0 is fx.latent
    assert torch.equal(F.sample_ksampler(m0, fx.positive, fx.negative, lat0, steps=2), base)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_reference_node_takes_an_image_latent_or_a_video_latent_reference(comfy, pack):
    Ref, _, _ = _nodes(pack)
    fx = F.build("wan21_t2v", frames=3)
    ref5 = _reference(fx, frames=2)
    ref4 = {"samples": ref5["samples"][:, :, 0]}
    a = F.sample_ksampler(_out(Ref.execute(fx.model, ref5, fx.latent, 1.0, anchor_first_frame=False))[0],
                          fx.positive, fx.negative, fx.latent, steps=1)
    b = F.sample_ksampler(_out(Ref.execute(fx.model, ref4, fx.latent, 1.0, anchor_first_frame=False))[0],
                          fx.positive, fx.negative, fx.latent, steps=1)
    assert torch.equal(a, b)   # a video reference: its first latent frame


def test_reference_node_under_wan_context_windows(comfy, pack):
    Ref, _, _ = _nodes(pack)
    fx = F.build("wan21_t2v", frames=9)
    wm = _windows(fx.model)
    m, lat = _out(Ref.execute(wm, _reference(fx), fx.latent, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0, True))
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2)
    assert out.shape == fx.latent["samples"].shape and torch.isfinite(out).all()
    base = F.sample_ksampler(wm, fx.positive, fx.negative, fx.latent, steps=2)
    assert (out[:, :, 5:] - base[:, :, 5:]).abs().max() > 1e-3      # later windows follow the reference too


@pytest.mark.parametrize("inputs,name", (
    ({"adain_weight": 0.5}, "adain_weight"),
    ({"concat_reference": True}, "concat_reference"),
    ({"video_latent": {"samples": torch.zeros(3, 16, 8, 8)}}, "video_latent"),
    ({"reference": {"samples": torch.zeros(1, 4, 1, 8, 8)}}, "reference"),
    ({"reference": {"samples": torch.zeros(1, 16, 1, 4, 4)}}, "reference"),
    ({"strength": 1.5}, "strength"),
))
def test_reference_node_dit_bad_inputs(comfy, pack, inputs, name):
    Ref, _, Err = _nodes(pack)
    fx = F.build("wan21_t2v", frames=3)
    kw = {"model": fx.model, "reference": _reference(fx), "video_latent": fx.latent, "strength": 1.0} | inputs
    with pytest.raises(Err, match=rf"\[ReferenceImageCondition\] input '{name}'"):
        Ref.execute(**kw)


def test_reference_node_refuses_the_anchor_on_hunyuan15(comfy, pack):
    Ref, _, Err = _nodes(pack)
    fx = F.build("hunyuan15_t2v", frames=3)
    with pytest.raises(Err, match=r"input 'anchor_first_frame'.*HunyuanVideo 1.5"):
        Ref.execute(fx.model, _reference(fx), fx.latent, 1.0, anchor_first_frame=True)


def test_cross_stream_node_on_wan_context_windows(comfy, pack):
    _, Cross, Err = _nodes(pack)
    fx = F.build("wan21_t2v", frames=9)
    before = F.model_fingerprint(fx.model)
    wm = _windows(fx.model)
    base = F.sample_ksampler(wm, fx.positive, fx.negative, fx.latent, steps=2)
    m = _out(Cross.execute(wm, "anchor", "first", 0, 1.0))[0]
    out = F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=2)
    assert (out - base).abs().max() > 1e-3
    m0 = _out(Cross.execute(wm, "anchor", "first", 0, 0.0))[0]
    assert torch.equal(F.sample_ksampler(m0, fx.positive, fx.negative, fx.latent, steps=2), base)
    with pytest.raises(Err, match=r"\[CrossStreamAttention\] input 'mode'.*U-Net mode"):
        Cross.execute(wm, "mutual", "first", 0, 1.0)
    with pytest.raises(Err, match=r"\[CrossStreamAttention\] input 'min_level'"):
        Cross.execute(wm, "anchor", "first", 0, 1.0, min_level=1)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_cross_stream_node_names_itself_in_errors_found_while_sampling(comfy, pack):
    _, Cross, Err = _nodes(pack)
    fx = F.build("wan21_t2v", frames=9)
    m = _out(Cross.execute(_windows(fx.model), "anchor", "index", 40, 1.0))[0]
    with pytest.raises(Err, match=r"\[CrossStreamAttention\] input 'anchor_index'.*outside the 9 latent frames"):
        F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=1)
