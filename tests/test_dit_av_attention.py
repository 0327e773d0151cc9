"""ReferenceImageCondition and CrossStreamAttention on the families of ComfyUI 0.33+: Wan 2.2 I2V A14B (both experts;
its ``WAN21_I2V`` class exists on 0.3.75 too), LTX-2 (``LTXAV``) and MiniMax H3 (``MiniMaxH3``), which skip with the
reason on 0.3.75 (``support.families`` skips when the class is missing).

CrossStreamAttention and ReferenceImageCondition (its first-frame anchor included) run on LTX-2, also under
``LTXVContextWindows``, with the audio part of every patched call the unpatched model's. MiniMax H3 takes both nodes:
``tests/test_dit_h3_attention.py``.
"""
from __future__ import annotations


import pytest
import torch

from support import families as F


from support.testing import attention_nodes as _nodes, node_outputs as _out


def _ltx2_reference(fx, seed=3):
    v = F.video_part(fx.latent["samples"])
    return {"samples": torch.randn(1, v.shape[1], 1, *v.shape[3:], generator=torch.Generator().manual_seed(seed))}


@pytest.mark.parametrize("windows", [False, True], ids=["whole", "LTXVContextWindows"])
def test_reference_on_ltx2_changes_the_video_and_keeps_the_audio(comfy, pack, windows):
    """LTX-2 (video + audio NestedTensor latent, through KSampler): ReferenceImageCondition changes the video; its
    write pass is video-only (the adapter's ``write_kwargs``: ``latent_shapes`` = the one-frame video shape) and in
    every call that reads the reference the audio part of the prediction is the unpatched model's bit for bit
    (``UntouchedParts``), so after one step the audio latent equals the unpatched run's. Strength 0 is bit-identical;
    the input model is unchanged. Fails without ``other_parts_untouched`` / the ``ensure_untouched_parts`` line in
    ``apply_reference_dit`` (audio differs), or without ``latent_shapes`` in ``LtxAvAdapter.write_kwargs`` (the
    write pass then crashes in ``separate_audio_and_video_latents``)."""
    Ref, _, _ = _nodes(pack)
    fx = F.build("ltx2", frames=5 if windows else 2)
    before = F.model_fingerprint(fx.model)
    model = _ltx2_windows(fx.model) if windows else fx.model
    ref = _ltx2_reference(fx)
    plain = F.sample_ksampler(model, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    m, lat = _out(Ref.execute(model, ref, fx.latent, 1.0, anchor_first_frame=False))
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=1, seed=3)
    (pv, pa), (ov, oa) = plain.unbind(), out.unbind()
    assert torch.isfinite(ov).all() and (ov - pv).abs().max() > 1e-4
    assert torch.equal(oa, pa)
    m0, lat0 = _out(Ref.execute(model, ref, fx.latent, 0.0))
    zero = F.sample_ksampler(m0, fx.positive, fx.negative, lat0, steps=1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(zero.unbind(), plain.unbind()))
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_reference_anchor_on_ltx2_holds_video_frame_zero(comfy, pack):
    """``anchor_first_frame`` on the LTX-2 (video + audio) latent: latent frame 0 of the video part comes out as the
    reference (the anchor finds it in the sampler's flat-packed mask through the adapter's ``hold_first_frame``),
    the other frames do not, the audio is sampled. Fails if ``LtxAvAdapter.hold_first_frame`` is removed (the
    packed 3-D mask is then left as it is and frame 0 is denoised away)."""
    Ref, _, _ = _nodes(pack)
    fx = F.build("ltx2", frames=2)
    ref = _ltx2_reference(fx)
    m, lat = _out(Ref.execute(fx.model, ref, fx.latent, 1.0, anchor_first_frame=True))
    assert F.is_av(lat["samples"]) and F.is_av(lat["noise_mask"])
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2, seed=3)
    v, a = out.unbind()
    assert torch.allclose(v[:, :, 0], ref["samples"][:, :, 0], atol=1e-5)
    assert not torch.allclose(v[:, :, 1], ref["samples"][:, :, 0], atol=1e-2)
    assert torch.isfinite(a).all()


def test_reference_anchor_on_the_ltx2_video_latent_before_concat(comfy, pack):
    """Wired as in ComfyUI's LTX-2 graphs, on the video latent before ``LTXVConcatAVLatent`` (core's node then packs
    the 1-channel video mask with an all-ones audio mask): video frame 0 still comes out as the reference. Fails if
    ``LtxAvAdapter.hold_first_frame`` is removed."""
    import nodes

    Ref, _, _ = _nodes(pack)
    fx = F.build("ltx2", frames=2)
    ref = _ltx2_reference(fx)
    video, audio = fx.latent["samples"].unbind()
    m, vlat = _out(Ref.execute(fx.model, ref, {"samples": video}, 1.0, anchor_first_frame=True))
    assert not F.is_av(vlat["samples"]) and vlat["noise_mask"].shape[1] == 1
    lat = _out(nodes.NODE_CLASS_MAPPINGS["LTXVConcatAVLatent"].execute(vlat, {"samples": audio}))[0]
    v, _ = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2, seed=3).unbind()
    assert torch.allclose(v[:, :, 0], ref["samples"][:, :, 0], atol=1e-5)
    assert not torch.allclose(v[:, :, 1], ref["samples"][:, :, 0], atol=1e-2)


def test_reference_on_ltx2_error_leaves_the_model_unchanged(comfy, pack):
    """A reference of the wrong size is refused naming the node and the input; the input model is unchanged."""
    Ref, _, Err = _nodes(pack)
    fx = F.build("ltx2", frames=2)
    before = F.model_fingerprint(fx.model)
    bad = {"samples": torch.zeros(1, F.spec("ltx2").latent_channels, 1, 3, 3)}
    with pytest.raises(Err, match=r"\[ReferenceImageCondition\] input 'reference'"):
        Ref.execute(fx.model, bad, fx.latent, 1.0)
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
