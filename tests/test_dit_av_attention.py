"""ReferenceImageCondition and CrossStreamAttention on the families of ComfyUI 0.33+: Wan 2.2 I2V A14B (both experts;
its ``WAN21_I2V`` class exists on 0.3.75 too), LTX-2 (``LTXAV``) and MiniMax H3 (``MiniMaxH3``), which skip with the
reason on 0.3.75 (``support.families`` skips when the class is missing).

CrossStreamAttention runs on LTX-2 under ``LTXVContextWindows``; ReferenceImageCondition on LTX-2 is refused by its
adapter (``hooks/adapters/ltxv.py``) with a reason about the model; a refusal names the node, the input and the
model, and leaves the input model unchanged. MiniMax H3 takes both nodes: ``tests/test_dit_h3_attention.py``.
"""
from __future__ import annotations


import pytest
import torch

from support import families as F


from support.testing import attention_nodes as _nodes, node_outputs as _out


@pytest.mark.parametrize("family,label,cross", [("ltx2", "LTX-2", False)])
def test_av_families_refuse_with_a_reason_about_the_model(comfy, pack, family, label, cross):
    """Fails if an adapter stops refusing what it cannot do, or the refusal loses the node, the input or the
    model's name."""
    Ref, Cross, Err = _nodes(pack)
    fx = F.build(family, frames=2)
    before = F.model_fingerprint(fx.model)
    ref = {"samples": torch.zeros(1, F.spec(family).latent_channels, 1, 2, 2)}
    with pytest.raises(Err, match=rf"\[ReferenceImageCondition\] input 'model'.*{label}.*audio"):
        Ref.execute(fx.model, ref, fx.latent, 1.0)
    if cross:
        with pytest.raises(Err, match=rf"\[CrossStreamAttention\] input 'model'.*{label}.*audio"):
            Cross.execute(fx.model, "anchor", "first", 0, 1.0)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def _ltx2_windows(model):
    return F.core_windows("LTXVContextWindows", model, context_length=17, context_overlap=8,
                          context_schedule="standard_static", fuse_method="pyramid", freenoise=False)


def test_cross_stream_on_ltx2_under_ltxv_context_windows_keeps_the_audio(comfy, pack):
    """LTX-2 (video + audio NestedTensor latent) under ``LTXVContextWindows``: CrossStreamAttention changes the
    video and, in every patched call, the audio part of the prediction is the unpatched model's bit for bit
    (``UntouchedParts``): after one step the audio latent equals the unpatched windowed run's. (Over more steps
    the audio follows the changed video through the model's own video-to-audio attention.) Strength 0 is
    bit-identical, the input model unchanged. Fails without ``other_parts_untouched`` on the LTX-2 adapter (the
    audio then differs after one step) or if the extender never acts (total frames unread from the packed latent)."""
    _, Cross, _ = _nodes(pack)
    fx = F.build("ltx2", frames=5)
    before = F.model_fingerprint(fx.model)
    wm = _ltx2_windows(fx.model)
    plain = F.sample_ksampler(wm, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    c = _out(Cross.execute(wm, "anchor", "first", 0, 1.0))[0]
    out = F.sample_ksampler(c, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    (pv, pa), (ov, oa) = plain.unbind(), out.unbind()
    assert torch.isfinite(ov).all() and (ov - pv).abs().max() > 1e-4
    assert torch.equal(oa, pa)
    c0 = _out(Cross.execute(wm, "sparse_causal", "first", 0, 0.0))[0]
    zero = F.sample_ksampler(c0, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(zero.unbind(), plain.unbind()))
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_reference_and_cross_stream_on_wan22_i2v_both_experts(comfy, pack):
    """Wan 2.2 I2V A14B: ReferenceImageCondition samples on each expert (through its image conditioning),
    changes the frames, strength 0 is bit-identical; CrossStreamAttention outside windows is the unpatched model
    (a DiT attends across all its frames); neither expert is changed."""
    Ref, Cross, _ = _nodes(pack)
    fx = F.build("wan22_i2v_a14b", frames=3)
    s = fx.latent["samples"]
    ref = {"samples": torch.randn(1, s.shape[1], 1, *s.shape[3:], generator=torch.Generator().manual_seed(3))}
    for name, expert in fx.experts.items():
        before = F.model_fingerprint(expert)
        base = F.sample_ksampler(expert, fx.positive, fx.negative, fx.latent, steps=2)
        m, lat = _out(Ref.execute(expert, ref, fx.latent, 1.0, anchor_first_frame=False))
        out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2)
        assert torch.isfinite(out).all() and (out - base).abs().max() > 1e-3, name
        m0, lat0 = _out(Ref.execute(expert, ref, fx.latent, 0.0))
        assert torch.equal(F.sample_ksampler(m0, fx.positive, fx.negative, lat0, steps=2), base), name
        c = _out(Cross.execute(expert, "anchor", "first", 0, 1.0))[0]
        assert torch.equal(F.sample_ksampler(c, fx.positive, fx.negative, fx.latent, steps=2), base), name
        F.assert_same_fingerprint(before, F.model_fingerprint(expert))
