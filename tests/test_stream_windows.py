"""StreamContextWindows: ComfyUI's context windows on MiniMax H3's packed video + audio latent (ComfyUI 0.33+;
skipped with the reason on 0.3.75, where H3 does not exist), sampled through ComfyUI's own samplers on the tiny
real-class model, and on a video-only model where it must be core's windows bit for bit.

One-line breaks, each caught here: the audio cut on the video's dim 2 (``stream_time_axes`` of the base adapter
on H3: the calls then get 2-row audio slices / fail); the stream map off by a window (``stream_window`` on the wrong
index list: the windowed result differs from the windows sampled alone); the anchor not reaching H3's windows
(``cuts_each_stream_on_its_time_axis`` dropped: CrossStreamAttention refuses the model).
"""
from __future__ import annotations

import pytest
import torch

from support import families as F
from support.testing import attention_nodes as _nodes, node_outputs as _out


def _windows(model, length=4, overlap=0, schedule="standard_static", fuse="flat", causal=False):
    return F.run_node("StreamContextWindows", model, length, overlap, schedule, fuse, causal)[0]


def _record(model):
    """(a clone of ``model`` recording the (video, audio) shapes each diffusion-model call gets, the list)."""
    from comfy.patcher_extension import WrappersMP

    seen = []

    def rec(executor, x, *a, **k):
        seen.append((tuple(x[0].shape), tuple(x[1].shape)))
        return executor(x, *a, **k)

    m = model.clone()
    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "test.record", rec)
    return m, seen


class _FixedNoise:
    """A NOISE object (``SamplerCustomAdvanced``'s interface) that returns a given noise."""

    def __init__(self, noise):
        self.noise, self.seed = noise, 0

    def generate_noise(self, latent):
        return self.noise


def _nested(v, a):
    import comfy.nested_tensor

    return comfy.nested_tensor.NestedTensor([v, a])


def test_h3_windows_cut_the_audio_on_its_own_time_axis(comfy, pack):
    """8 latent frames in windows of 4 (no overlap): each model call gets 4 video latent frames and the audio frames
    of the same span of time (43 audio latents -> 22 + 21), the audio in H3's own [1, 32, 2, T_a] layout."""
    from importlib import import_module

    fx = F.build("minimax_h3", frames=8)
    win = import_module(pack.__name__ + ".model_patches.windows")
    a_total = F.audio_part(fx.latent["samples"]).shape[-1]
    m, seen = _record(_windows(fx.model))
    out = F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=1)
    spans = [len(win.stream_window(list(range(s, s + 4)), 8, a_total)) for s in (0, 4)]
    assert spans == [22, 21] and a_total == 43
    want = [((1, 24, 4, 8, 8), (1, 32, 2, n)) for n in spans]
    assert sorted(seen) == sorted(want * 2), seen   # CFG: cond and uncond per window
    assert all(torch.isfinite(t).all() for t in F.streams(out))


def test_h3_windowed_step_is_each_window_sampled_alone(comfy, pack):
    """One Euler step, no overlap, flat weights, no causal frame: every frame of a windowed step depends only on its
    window's call, so the windowed result equals sampling each window's video + audio slice alone with the same
    noise. Fails if the audio window is mapped wrongly or the streams are moved back to the wrong axes."""
    from importlib import import_module

    fx = F.build("minimax_h3", frames=8)
    win = import_module(pack.__name__ + ".model_patches.windows")
    v0, a0 = F.streams(fx.latent["samples"])
    g = torch.Generator().manual_seed(5)
    nv, na = torch.randn(v0.shape, generator=g), torch.randn(a0.shape, generator=g)
    whole = F.sample_custom_advanced(_windows(fx.model), fx.positive, fx.negative, fx.latent,
                                     noise=_FixedNoise(_nested(nv, na)), steps=1)
    wv, wa = F.streams(whole)
    for start in (0, 4):
        vi = list(range(start, start + 4))
        ai = win.stream_window(vi, 8, a0.shape[-1])
        lat = {"samples": _nested(v0[:, :, vi], a0[..., ai])}
        alone = F.sample_custom_advanced(fx.model, fx.positive, fx.negative, lat,
                                         noise=_FixedNoise(_nested(nv[:, :, vi], na[..., ai])), steps=1)
        sv, sa = F.streams(alone)
        torch.testing.assert_close(wv[:, :, vi], sv, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(wa[..., ai], sa, rtol=1e-5, atol=1e-5)


def test_h3_anchor_attention_acts_in_stream_windows_and_leaves_the_audio(comfy, pack):
    """CrossStreamAttention (anchor: latent frame 0) under these windows on H3: the video changes where a window
    does not hold the anchor, the first window's frames and the whole audio stream are the windows-alone result bit
    for bit (the audio of each patched call comes from the unpatched model), strength 0 is bit-identical, and the
    input model is unchanged. Fails if the windows never tell the anchor a window (the video would not change) or
    the audio took the patched pass."""
    _, Cross, _ = _nodes(pack)
    fx = F.build("minimax_h3", frames=8)
    before = F.model_fingerprint(fx.model)
    plain = F.sample_ksampler(_windows(fx.model), fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    c = _out(Cross.execute(_windows(fx.model), "anchor", "first", 0, 1.0))[0]
    got = F.sample_ksampler(c, fx.positive, fx.negative, fx.latent, steps=1, seed=3)
    pv, pa = F.streams(plain)
    gv, ga = F.streams(got)
    assert torch.equal(ga, pa)
    assert torch.equal(gv[:, :, :4], pv[:, :, :4])          # the first window holds the anchor frame itself
    assert (gv[:, :, 4:] - pv[:, :, 4:]).abs().max() > 1e-4  # the second attends to it
    c0 = _out(Cross.execute(_windows(fx.model), "anchor", "first", 0, 0.0))[0]
    assert F.same(F.sample_ksampler(c0, fx.positive, fx.negative, fx.latent, steps=1, seed=3), plain)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_h3_stream_windows_with_overlap_and_causal_frame_sample(comfy, pack):
    """The node's defaults (overlap 3, pyramid weights, the causal frame) over 12 latent frames, two steps, with
    the reference and the anchor attention on: finite, the shapes kept, the model unchanged."""
    Ref, Cross, _ = _nodes(pack)
    fx = F.build("minimax_h3", frames=12)
    before = F.model_fingerprint(fx.model)
    w = F.run_node("StreamContextWindows", fx.model)[0]
    c = _out(Cross.execute(w, "anchor", "first", 0, 1.0))[0]
    v = F.video_part(fx.latent["samples"])
    ref = {"samples": torch.randn(1, v.shape[1], 1, *v.shape[3:], generator=torch.Generator().manual_seed(1))}
    m, lat = _out(Ref.execute(c, ref, fx.latent, 0.8, anchor_first_frame=False))
    rec, seen = _record(m)
    out = F.sample_ksampler(rec, fx.positive, fx.negative, lat, steps=2, seed=3)
    assert [s.shape for s in F.streams(out)] == [s.shape for s in F.streams(fx.latent["samples"])]
    assert all(torch.isfinite(s).all() for s in F.streams(out))
    assert any(vs[2] == 11 for vs, _ in seen) and all(a[2] == 2 for _, a in seen)   # 10 + the causal frame
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_on_a_video_only_model_it_is_core_windows(comfy, pack):
    """On Wan 2.1 (one stream) the node is ComfyUI's own windows on dim 2, bit for bit. Where this ComfyUI's core
    windows have no multi-stream windowing (0.3.75), the node says so, naming its input."""
    fx = F.build("wan21_t2v", frames=8)
    import comfy.context_windows as cw

    if not hasattr(cw, "WindowingState"):
        _, _, Err = _nodes(pack)
        with pytest.raises(Err, match=r"\[StreamContextWindows\] input 'model'.*multi-stream.*0\.33"):
            F.run_node("StreamContextWindows", fx.model, 4, 1)
        return
    core = F.core_windows("ContextWindowsManual", fx.model, context_length=4, context_overlap=1,
                          context_schedule="standard_static", context_stride=1, closed_loop=False,
                          fuse_method="pyramid", dim=2, freenoise=False, causal_window_fix=True)
    ours = F.run_node("StreamContextWindows", fx.model, 4, 1, "standard_static", "pyramid", True)[0]
    a = F.sample_ksampler(core, fx.positive, fx.negative, fx.latent, steps=2, seed=1)
    b = F.sample_ksampler(ours, fx.positive, fx.negative, fx.latent, steps=2, seed=1)
    assert torch.equal(a, b)


def test_bad_inputs_are_named(comfy, pack):
    _, _, Err = _nodes(pack)
    fx = F.build("minimax_h3", frames=8)
    with pytest.raises(Err, match=r"\[StreamContextWindows\] input 'context_overlap'.*shorter"):
        F.run_node("StreamContextWindows", fx.model, 4, 4)
    with pytest.raises(Err, match=r"\[StreamContextWindows\] input 'context_length'"):
        F.run_node("StreamContextWindows", fx.model, 0, 0)
    with pytest.raises(Err, match=r"\[StreamContextWindows\] input 'fuse_method'"):
        F.run_node("StreamContextWindows", fx.model, 4, 1, "standard_static", "median")
    with pytest.raises(Err, match=r"\[StreamContextWindows\] input 'model'.*image model"):
        F.run_node("StreamContextWindows", F.build("sd15", frames=2).model, 4, 1)
