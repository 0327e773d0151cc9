"""What changed in ComfyUI under the pack's nodes (the list in ``model_patches/hooks/comfy_compat.py``), each
through the real core nodes and samplers:

- ``causal_window_fix`` (core context windows, on by default): every window not starting at frame 0 gets the frame
  before it in front, so the model sees N + 1 frames while ``index_list`` has N. Cross-window anchor attention (Wan)
  and CrossStreamAttention on SD1.5 windows (now possible: 0.33 fixed ``set_step`` for batches) must read N + 1.
- core FreeNoise (the window nodes' ``freenoise`` input, on by default in the Wan/LTXV nodes) shuffles the noise
  after our noise patch made it, in either node order: we warn, naming the node and the input.
- latent formats' own ``temporal_downscale_ratio``.

Where this ComfyUI lacks the feature (0.3.75), the tests skip with the reason (``-ra`` prints it)."""
from __future__ import annotations

import logging

import pytest
import torch

from support import families as F

T = 8
WINDOW = 4


@pytest.fixture(scope="module", autouse=True)
def _env(one_thread):
    return one_thread


def _need(node_id: str, name: str):
    if not F.has_input(node_id, name):
        pytest.skip(f"this ComfyUI's {node_id} has no '{name}' input (added in ComfyUI 0.33)")


def manual(model, dim=2, **new):
    return F.core_windows("ContextWindowsManual", model, context_length=WINDOW, context_overlap=1,
                          context_schedule="standard_static", context_stride=1, closed_loop=False,
                          fuse_method="pyramid", dim=dim, **{"freenoise": False, **new})


class AttentionProbe:
    """An ``optimized_attention_override`` put on the model before ours: ours chains to it, so it sees the keys
    our extension appended. Records (query tokens, key tokens, frames the model was given) of the first attention
    call of every block call (a Wan block's self-attention)."""

    def __init__(self):
        self.rows = []
        self._block = None

    def __call__(self, func, q, k, v, *args, **kwargs):
        to = kwargs.get("transformer_options") or {}
        win = to.get("context_window")
        self.rows.append((q.shape[1], k.shape[1], None if win is None else list(win.index_list),
                          getattr(win, "causal_anchor_index", None)))
        return func(q, k, v, *args, **kwargs)


@pytest.mark.parametrize("mode", ["sparse_causal", "anchor"])
def test_cross_window_attention_reads_the_causal_extra_frame_on_wan(mode):
    """Wan 2.1, 8 latent frames in windows of 4 with ``causal_window_fix``: windows after the first carry 5 frames.
    The anchor frames our extension adds must be whole frames of 16 tokens (8x8 latent, 2x2 patches) and exactly the
    frames the window does not already hold; on the code before the fix the window was read as 4 frames (20 tokens
    per frame), so the cached frames came out 20 tokens long."""
    _need("ContextWindowsManual", "causal_window_fix")
    fx = F.build("wan21_t2v", frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    tpf = 16
    probe_model = m.clone()
    probe = AttentionProbe()
    probe_model.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = probe
    patched = F.run_node("CrossStreamAttention", manual(probe_model, causal_window_fix=True), mode, "first", 0, 1.0)[0]
    F.sample_ksampler(patched, pos, neg, lat, seed=3)
    assert probe.rows
    causal_windows = 0
    for n_q, n_k, index, causal in probe.rows:
        if index is None or n_k < n_q:       # outside windows / cross-attention to the text
            continue
        frames = ([causal] if causal is not None and causal >= 0 else []) + index
        assert n_q == tpf * len(frames), (n_q, frames)
        extra = n_k - n_q
        assert extra % tpf == 0, f"an added frame is not 16 tokens: {extra} extra keys for window {frames}"
        want = {0} if mode == "anchor" else {0, frames[0] - 1}
        want = {a for a in want if 0 <= a < frames[0]}
        assert extra // tpf == len(want) or extra == 0, (frames, extra // tpf, want)
        causal_windows += causal is not None and causal >= 0
        if frames[0] > 0 and causal is not None:
            assert extra // tpf == len(want), (frames, extra)   # every later window does get its anchors
    assert causal_windows, "no window had the causal extra frame"
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def test_cross_stream_on_sd15_core_windows_with_the_causal_frame():
    """SD1.5 frames on the batch axis in core windows (dim 0): 0.33's ``set_step`` takes batches, so the windows run,
    with the causal frame in front. CrossStreamAttention (anchor = the video's first frame) samples; strength 0 is
    bit-identical to the windowed unpatched model; the model is unchanged."""
    _need("ContextWindowsManual", "causal_window_fix")
    fx = F.build("sd15", frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    windowed = manual(m, dim=0, causal_window_fix=True)
    plain = F.sample_ksampler(windowed, pos, neg, lat, seed=3)
    zero = F.run_node("CrossStreamAttention", windowed, "anchor", "first", 0, 0.0)[0]
    assert torch.equal(F.sample_ksampler(zero, pos, neg, lat, seed=3), plain)
    for mode in ("anchor", "sparse_causal"):
        on = F.run_node("CrossStreamAttention", windowed, mode, "first", 0, 1.0)[0]
        out = F.sample_ksampler(on, pos, neg, lat, seed=3)
        assert out.shape == lat["samples"].shape and torch.isfinite(out).all() and not torch.equal(out, plain)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def _noise_patch(model):
    return F.run_node("BaseResidualNoiseModel", model, "progressive", 0.5, 1.0, -1, True, False, "")[0]


@pytest.mark.parametrize("order", ["windows_first", "noise_first"])
def test_core_freenoise_is_detected_and_wins_in_either_order(order, caplog):
    """Core FreeNoise (``freenoise=True``) beside BaseResidualNoiseModel: a warning names the node and the input,
    and core's shuffle runs after our noise whatever the node order, so both orders give the same video, which
    differs from ours alone and from FreeNoise alone."""
    _need("ContextWindowsManual", "freenoise")
    fx = F.build("wan21_t2v", frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)

    def build(freenoise: bool, noise_first: bool):
        if noise_first:
            return manual(_noise_patch(m), freenoise=freenoise)
        return _noise_patch(manual(m, freenoise=freenoise))

    with caplog.at_level(logging.WARNING):
        both = F.sample_ksampler(build(True, order == "noise_first"), pos, neg, lat, seed=3)
    warned = [r.getMessage() for r in caplog.records if "FreeNoise" in r.getMessage()]
    assert warned and "[BaseResidualNoiseModel] input 'initial_noise'" in warned[0], warned
    caplog.clear()
    other = F.sample_ksampler(build(True, order != "noise_first"), pos, neg, lat, seed=3)
    assert torch.equal(both, other)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ours = F.sample_ksampler(build(False, order == "noise_first"), pos, neg, lat, seed=3)
    assert not [r for r in caplog.records if "FreeNoise" in r.getMessage()]
    core_only = F.sample_ksampler(manual(m, freenoise=True), pos, neg, lat, seed=3)
    assert not torch.equal(both, ours) and not torch.equal(both, core_only)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def test_latent_formats_own_temporal_ratio_is_used(pack):
    """Every 3-D latent format of this ComfyUI that states its ``temporal_downscale_ratio`` (0.33+) gets exactly
    that many pixel frames per latent frame, including formats the pack's own table does not list (MiniMax H3)."""
    import comfy.latent_formats as lf

    import coherent_video.model_patches.video as V

    formats = [c for c in vars(lf).values() if isinstance(c, type) and issubclass(c, lf.LatentFormat)
               and getattr(c, "latent_dimensions", 2) == 3 and "temporal_downscale_ratio" in vars(c)]
    if not formats:
        pytest.skip("this ComfyUI's latent formats carry no temporal_downscale_ratio (added in ComfyUI 0.33)")
    for c in formats:
        assert V.temporal_compression(c) == c.temporal_downscale_ratio, c.__name__
    assert any(c.__name__ not in V.TEMPORAL_COMPRESSION for c in formats)


def test_iterative_reuse_sizes_the_empty_latent_as_ksampler_does():
    """ComfyUI 0.33's empty-latent nodes tag their LATENT with ``downscale_ratio_spacial`` (EmptyHunyuanLatentVideo:
    8), and the samplers resize an empty latent to the model's own ratio (HunyuanVideo 1.5: 16). One clip of
    IterativeReuseSampler is ComfyUI's KSampler, so it must size the latent the same way."""
    import inspect

    import comfy.sample

    if "downscale_ratio_spacial" not in inspect.signature(comfy.sample.fix_empty_latent_channels).parameters:
        pytest.skip("this ComfyUI's fix_empty_latent_channels takes no downscale ratios (added in ComfyUI 0.33)")
    fx = F.build("hunyuan15_t2v", frames=3)
    m, pos, neg, lat = fx
    lat = {**lat, "downscale_ratio_spacial": 8}
    ks = F.sample_ksampler(m, pos, neg, lat, seed=7, steps=2, cfg=2.0)
    assert ks.shape[-1] == lat["samples"].shape[-1] // 2   # core resized it
    args = dict(overlap=1, noise_recycle=4.0, guidance_ratio=0.5, fnr=True, overlap_mode="forward", seed=7, steps=2,
                cfg=2.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    one = F.run_node("IterativeReuseSampler", m, pos, neg, lat, total_frames=3, **args)[0]["samples"]
    assert one.shape == ks.shape and torch.equal(one, ks)


def test_hunyuan_reference_records_the_image_tokens_in_either_token_order(pack):
    """HunyuanVideo's double blocks put the image tokens first up to ComfyUI 0.3.x (``flipped_img_txt=True``) and the
    text tokens first from 0.33 on. ReferenceImageCondition's write pass must record the reference's IMAGE tokens
    (and the video pass append exactly those): a probe attention override (ours chains to it) sees the write pass's
    values and the values our extension appends. Before the fix the write pass took the first tokens, which on 0.33
    are the text's."""
    from coherent_video.model_patches.hooks import dit as D

    fx = F.build("hunyuan15_t2v", frames=3)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    dm = m.get_model_object("diffusion_model")
    image_first = bool(getattr(dm.double_blocks[0], "flipped_img_txt", False))   # ComfyUI's own block, read here
    written, appended = {}, []

    def probe(func, q, k, v, *args, **kwargs):
        to = kwargs.get("transformer_options") or {}
        ctx = to.get(D.DIT_BLOCK_KEY)
        if ctx is not None:
            if to.get(D.DIT_WRITING_KEY) is not None:
                n = ctx.n_img
                written[ctx.chain.key] = (v[:, :, :n] if image_first else v[:, :, -n:]).clone()
            elif ctx.chain.key in written and v.shape[2] > q.shape[2]:   # this step's write pass came first
                tail, ref_v = v[:, :, q.shape[2]:], written[ctx.chain.key]
                appended.append((ctx.chain.key, tail.shape == (tail.shape[0], *ref_v.shape[1:])
                                 and torch.equal(tail, ref_v.expand_as(tail).to(tail.dtype))))
        return func(q, k, v, *args, **kwargs)

    probed = m.clone()
    probed.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = probe
    ref = {"samples": torch.randn(1, 32, 1, 8, 8, generator=torch.Generator().manual_seed(9))}
    patched = F.run_node("ReferenceImageCondition", probed, ref, lat, strength=1.0, anchor_first_frame=False)[0]
    F.sample_ksampler(patched, pos, neg, lat, seed=3)
    assert written and appended
    assert all(ok for _, ok in appended), [key for key, ok in appended if not ok]
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


@pytest.mark.parametrize("family,node", [("ltxv", "LTXVContextWindows"), ("ltx2", "LTXVContextWindows"),
                                         ("minimax_h3", "ContextWindowsManual")])
def test_model_patches_under_ltxv_context_windows(family, node):
    """ComfyUI 0.33's new ``LTXVContextWindows`` node (pixel frames, 8n + 1; the same handler on latent time, with the
    causal frame): our model patches read the handler, not the node, so they work under it as under the others:
    strength 0 is bit-identical to the windowed model, strength 1 differs, the input model is unchanged. LTX-2 and
    MiniMax H3 (0.33): the handler windows the video and maps each window onto the audio stream (per-modality
    windows); our video-only patches sample through it, video and audio (all streams finite, the video changed)."""
    import nodes

    if "LTXVContextWindows" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this ComfyUI has no LTXVContextWindows node (added in ComfyUI 0.33)")
    fx = F.build(family, frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    if node == "LTXVContextWindows":
        windowed = F.core_windows(node, m, context_length=1 + 8 * (WINDOW - 1), context_overlap=8,
                                  context_schedule="standard_static", fuse_method="pyramid", freenoise=False)
    else:
        windowed = F.core_windows(node, m, context_length=WINDOW, context_overlap=1, context_schedule="standard_static",
                                  context_stride=1, closed_loop=False, fuse_method="pyramid", dim=2, freenoise=False)
    try:
        plain = F.sample_ksampler(windowed, pos, neg, lat, seed=3)
    except NotImplementedError as core_error:
        # ComfyUI 0.33 cannot window MiniMax H3 itself: its model class has no map_context_window_to_modalities
        # (the audio window of each video window). Our patches add no error of their own: ComfyUI's, unchanged.
        assert "map_context_window_to_modalities" in str(core_error)
        for patched in (F.run_node("BaseResidualNoiseModel", windowed, "progressive", 0.5, 1.0, -1, True, False, "")[0],
                        F.run_node("MotionSmoothingPatch", windowed, 1.0, 1.0, 0.0, 1.0)[0]):
            with pytest.raises(NotImplementedError) as e:
                F.sample_ksampler(patched, pos, neg, lat, seed=3)
            assert str(e.value) == str(core_error)
        F.assert_same_fingerprint(before, F.model_fingerprint(m))
        return
    assert not F.same(plain, F.sample_ksampler(m, pos, neg, lat, seed=3))   # the windows ran
    patches = {
        "BaseResidualNoiseModel": lambda on: F.run_node("BaseResidualNoiseModel", windowed, "progressive", 0.5,
                                                        1.0 if on else 0.0, -1, True, False, "")[0],
        "MotionSmoothingPatch": lambda on: F.run_node("MotionSmoothingPatch", windowed, 1.0 if on else 0.0, 1.0, 0.0,
                                                      1.0)[0],
    }
    for name, patch in patches.items():
        assert F.same(F.sample_ksampler(patch(False), pos, neg, lat, seed=3), plain), name
        out = F.sample_ksampler(patch(True), pos, neg, lat, seed=3)
        assert [t.shape for t in F.streams(out)] == [t.shape for t in F.streams(plain)], name
        assert all(torch.isfinite(t).all() for t in F.streams(out)), name
        assert not torch.equal(F.video_part(out), F.video_part(plain)), name
    F.assert_same_fingerprint(before, F.model_fingerprint(m))
