"""ReferenceImageCondition and CrossStreamAttention on MiniMax H3 (``MiniMaxH3``, ComfyUI 0.33+; skipped with the
reason on 0.3.75, where the class does not exist): sampled through ComfyUI's KSampler on the tiny real-class model.

H3 packs text | audio | video into one sequence per block; the adapter (``hooks/adapters/minimax_h3.py``) finds the
video as the last segment, lets only the video queries see the extra keys, and takes the audio part of every
patched call from a pass without our patches, so the audio comes out bit-identical to the unpatched model's.
"""
from __future__ import annotations

import pytest
import torch

from support import families as F
from support.testing import attention_nodes as _nodes, node_outputs as _out


def _fixture(frames=6):
    return F.build("minimax_h3", frames=frames)


def _reference(fx, seed=3):
    v = F.video_part(fx.latent["samples"])
    return {"samples": torch.randn(1, v.shape[1], 1, *v.shape[3:], generator=torch.Generator().manual_seed(seed))}


def test_h3_adapter_reads_the_packed_layout(comfy, pack):
    """The adapter counts the video tokens from the packed layout (the last segment), not the hidden width, and
    puts the video last. Fails if ``video_tokens`` returns ``args['img'].shape[1]`` (the hidden width, 64 here)."""
    from importlib import import_module

    adapters = import_module(pack.__name__ + ".model_patches.hooks.adapters")
    fx = _fixture()
    a = adapters.adapter_for(fx.model)
    seen = []

    def probe(args, extra):
        seen.append((a.video_tokens(args), int(args["img"].shape[0])))
        return extra["original_block"](args)

    m = fx.model.clone()
    m.set_model_patch_replace(probe, "dit", "double_block", 0)
    F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=1)
    v = F.video_part(fx.latent["samples"])
    assert a.name == "minimax_h3" and not a.image_first and a.other_parts_untouched and a.video_queries_only
    assert seen and all(n == v.shape[2] * (v.shape[3] // 2) * (v.shape[4] // 2) and n < s for n, s in seen)


def test_h3_time_rotation_is_the_models_own_rope(comfy, pack):
    """A key rotated by the adapter from latent frame ``a`` to ``b`` equals the key the model's own fused RMSNorm +
    RoPE gives at ``b`` (positions from ``PackedLayout``'s video time grid). Fails if the time grid is taken as
    linear in the latent frame (frame 0 spans 5/3, later ones 20/3) or the partial rotary prefix is wrong."""
    from importlib import import_module

    fx = _fixture()   # skips first where the class is missing (0.3.75)
    import comfy.ldm.minimax.model as M

    adapters = import_module(pack.__name__ + ".model_patches.hooks.adapters")
    dm = fx.model.get_model_object("diffusion_model")
    a = adapters.adapter_for(fx.model)
    layout = M.PackedLayout(8, 7, 8, 8, 10)
    va, vb, _ = next(s for s in layout.segments if s[2] == "video")
    table = M.rope_rotation_table(dm.rope_freqs(layout.position_ids, "cpu"), torch.float32)
    heads, hd = dm.blocks[0].attn.heads, dm.blocks[0].attn.head_dim
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(1, heads, hd, generator=g).expand(layout.seq_len, heads, hd).contiguous()

    def keys():   # the model's own fused path on the same raw key at every row
        q = raw.clone().view(1, layout.seq_len, heads, hd)
        k = raw.clone().view(1, layout.seq_len, heads, hd)
        import comfy.quant_ops

        w = torch.ones(hd)
        comfy.quant_ops.ck.rms_rope_split_half_(q, k, table, w, w, epsilon=1e-5, rot_dim=table.shape[-3] * 2)
        return k[0].transpose(0, 1).unsqueeze(0)   # [1, H, S, D]

    k = keys()
    tpf = 16
    for p_from, p_to in ((0, 1), (1, 6), (5, 2), (3, 0)):
        ka = k[:, :, va + p_from * tpf:va + p_from * tpf + 1]
        kb = k[:, :, va + p_to * tpf:va + p_to * tpf + 1]
        r = a.time_rotation(dm, p_from, p_to, {}, (), ka.device)
        torch.testing.assert_close(a.rotate(ka, "bhld", r), kb, atol=1e-5, rtol=1e-5)


def test_h3_reference_samples_keeps_the_audio_and_the_model(comfy, pack):
    """ReferenceImageCondition on H3 through KSampler: the video changes at strength 1, the audio latent is the
    unpatched model's bit for bit (one step: every patched call's audio is the plain pass's), strength 0 is
    bit-identical, and the input model is unchanged after the run and after an error. Fails without
    ``other_parts_untouched`` on the H3 adapter (the audio then differs), or if the reference keys never reach the
    attention (the video then equals the unpatched run's)."""
    Ref, _, Err = _nodes(pack)
    fx = _fixture()
    before = F.model_fingerprint(fx.model)
    ref = _reference(fx)
    plain = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    m, lat = _out(Ref.execute(fx.model, ref, fx.latent, 1.0, anchor_first_frame=False))
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=1, seed=3)
    (pv, pa), (ov, oa) = plain.unbind(), out.unbind()
    assert torch.isfinite(ov).all() and (ov - pv).abs().max() > 1e-4
    assert torch.equal(oa, pa)
    m0, lat0 = _out(Ref.execute(fx.model, ref, fx.latent, 0.0, anchor_first_frame=False))
    assert F.same(F.sample_ksampler(m0, fx.positive, fx.negative, lat0, steps=1, seed=3), plain)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))
    # two steps sample too (the audio then follows the changed video through the joint attention)
    two = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2, seed=3)
    assert all(torch.isfinite(t).all() for t in two.unbind())
    with pytest.raises(Err, match=r"\[ReferenceImageCondition\] input 'anchor_first_frame'.*MiniMax H3"):
        Ref.execute(fx.model, ref, fx.latent, 1.0, anchor_first_frame=True)
    bad = {"samples": torch.zeros(1, 24, 1, 4, 4)}
    with pytest.raises(Err, match=r"\[ReferenceImageCondition\] input 'reference'"):
        Ref.execute(fx.model, bad, fx.latent, 1.0, anchor_first_frame=False)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_h3_reference_keys_reach_only_the_video_queries(comfy, pack):
    """With the reference on, the text rows of the packed sequence after block 0 are the unpatched model's in every
    full-length call (the plain pass and the patched one): only the video queries see the reference keys. Fails if
    the override extends every query (``video_queries_only`` off on the H3 adapter)."""
    Ref, _, _ = _nodes(pack)
    fx = _fixture()
    rows = []

    def after(args, extra):
        out = extra["original_block"](args)
        a, b, _ = args["mod_segments"][0]
        rows.append((int(args["img"].shape[0]), tuple(args["transformer_options"].get("cond_or_uncond") or ()),
                     out["img"][a:b].clone()))
        return out

    base = fx.model.clone()
    base.set_model_patch_replace(after, "dit", "double_block", 0)
    F.sample_ksampler(base, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    plain = {(n, c): t for n, c, t in rows}
    rows.clear()
    m, lat = _out(Ref.execute(base, _reference(fx), fx.latent, 1.0, anchor_first_frame=False))
    F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=1, seed=3)
    full = [(n, c, t) for n, c, t in rows if (n, c) in plain]
    assert len(full) == 2 * len(plain)   # the plain pass and the patched pass of each CFG call
    for n, c, t in full:
        assert torch.equal(t, plain[(n, c)])


def test_h3_cross_stream_outside_windows_is_the_unpatched_model(comfy, pack):
    """CrossStreamAttention on H3 outside context windows: the unpatched model bit for bit (a DiT attends across all
    the frames it sees), in every mode; the input model unchanged."""
    _, Cross, _ = _nodes(pack)
    fx = _fixture()
    before = F.model_fingerprint(fx.model)
    plain = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    for mode in ("anchor", "sparse_causal"):
        c = _out(Cross.execute(fx.model, mode, "first", 0, 1.0))[0]
        assert F.same(F.sample_ksampler(c, fx.positive, fx.negative, fx.latent, steps=1, seed=3), plain), mode
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def _h3_windows(model):
    return F.core_windows("ContextWindowsManual", model, context_length=4, context_overlap=2,
                          context_schedule="standard_static", context_stride=1, closed_loop=False,
                          fuse_method="pyramid", dim=2, freenoise=False)


def test_h3_under_core_windows_is_a_named_error(comfy, pack):
    """ComfyUI 0.33's core context windows cannot window H3's packed video + audio latent (``MiniMaxH3`` has no
    ``map_context_window_to_modalities``: core raises ``NotImplementedError`` on the unpatched model). Our nodes name
    it: at the node when the windows come first, at the start of sampling when they come after; the input model is
    unchanged. Fails if the adapter's ``core_windows_unsupported`` returns None (core's NotImplementedError then
    surfaces, without the node's name). Where a newer ComfyUI maps H3's windows, the test is skipped."""
    Ref, Cross, Err = _nodes(pack)
    fx = _fixture(frames=8)
    if hasattr(fx.model.model, "map_context_window_to_modalities"):
        pytest.skip("this ComfyUI maps context windows to H3's audio (map_context_window_to_modalities)")
    before = F.model_fingerprint(fx.model)
    with pytest.raises(NotImplementedError, match="map_context_window_to_modalities"):
        F.sample_ksampler(_h3_windows(fx.model), fx.positive, fx.negative, fx.latent, steps=1)
    wm = _h3_windows(fx.model)
    with pytest.raises(Err, match=r"\[CrossStreamAttention\] input 'model'.*MiniMax H3.*map_context_window_to_modalities"):
        Cross.execute(wm, "anchor", "first", 0, 1.0)
    with pytest.raises(Err, match=r"\[ReferenceImageCondition\] input 'model'.*MiniMax H3.*map_context_window"):
        Ref.execute(wm, _reference(fx), fx.latent, 1.0, anchor_first_frame=False)
    c = _out(Cross.execute(fx.model, "anchor", "first", 0, 1.0))[0]
    with pytest.raises(Err, match=r"\[CrossStreamAttention\] input 'model'.*MiniMax H3"):
        F.sample_ksampler(_h3_windows(c), fx.positive, fx.negative, fx.latent, steps=1)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))
