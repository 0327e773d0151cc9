"""The nodes under ComfyUI's core context windows (``ContextWindowsManual``, ``WanContextWindowsManual``;
``comfy/context_windows.py``): no shape errors, strength 0 bit-identical to the windowed unpatched model,
input model unchanged, in either node order.

Where the windows sit: core windows split the model call inside ``calc_cond_batch``; the noise
(OUTER_SAMPLE), IterativeReuseSampler (PREDICT_NOISE, clip loop) and MotionSmoothingPatch (post-CFG)
act outside it, on the whole video, so they need no window position. The tests check that the windows
really ran (the model saw window-length latents with ``transformer_options["context_window"]`` set)
while the post-CFG hook saw all frames."""
from __future__ import annotations

import pytest
import torch

from support import families as F

T = 8        # latent frames
WINDOW = 4   # latent frames per window
OVERLAP = 1


@pytest.fixture(scope="module", autouse=True)
def _env(one_thread):
    return one_thread


def manual_windows(model, dim=2, length=WINDOW, overlap=OVERLAP, schedule="standard_static", fuse="pyramid", **new):
    """ContextWindowsManual; ``new``: the inputs ComfyUI 0.33 added (default: that ComfyUI's own defaults, so
    ``causal_window_fix`` is on where it exists; FreeNoise off unless asked for)."""
    return F.core_windows("ContextWindowsManual", model, context_length=length, context_overlap=overlap,
                          context_schedule=schedule, context_stride=1, closed_loop=False, fuse_method=fuse, dim=dim,
                          **{"freenoise": False, **new})


def wan_windows(model, pixel_length=1 + 4 * (WINDOW - 1), pixel_overlap=4 * OVERLAP, **new):
    """WanContextWindowsManual takes pixel frames: 13 -> 4 latent frames, overlap 4 -> 1."""
    return F.core_windows("WanContextWindowsManual", model, context_length=pixel_length, context_overlap=pixel_overlap,
                          context_schedule="standard_static", context_stride=1, closed_loop=False, fuse_method="pyramid",
                          **{"freenoise": False, **new})


class WindowRecorder:
    """APPLY_MODEL wrapper: the frame count and the core context window (its ``index_list`` and the frames the
    model really sees, with a causal anchor frame in front on ComfyUI 0.33+) of every model call."""

    def __init__(self):
        self.calls = []

    def __call__(self, executor, x, t, *args, **kwargs):
        from model_patches.hooks.comfy_compat import window_frames

        to = kwargs.get("transformer_options", args[3] if len(args) > 3 else {})
        win = to.get("context_window")
        self.calls.append((x.shape[2], None if win is None else list(win.index_list),
                           None if win is None else window_frames(win)))
        return executor(x, t, *args, **kwargs)


def with_recorder(model):
    import comfy.patcher_extension

    m = model.clone()
    rec = WindowRecorder()
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test.window_recorder", rec)
    return m, rec


def assert_windows_ran(rec: WindowRecorder):
    assert rec.calls, "the model was never called"
    assert all(len(w) == WINDOW and n == len(seen) and seen[-WINDOW:] == w for n, w, seen in rec.calls), rec.calls[:4]
    windows = {tuple(w) for _, w, _ in rec.calls}
    assert (0, 1, 2, 3) in windows and (T - WINDOW, *range(T - WINDOW + 1, T)) in windows, windows


# every node that patches a model, as (name, patch(model, on: bool) -> model)
MODEL_PATCHES = {
    "BaseResidualNoiseModel": lambda m, on: F.run_node("BaseResidualNoiseModel", m, "progressive", 0.5,
                                                        1.0 if on else 0.0, -1, True, False, "")[0],
    "MotionSmoothingPatch": lambda m, on: F.run_node("MotionSmoothingPatch", m, 1.0 if on else 0.0, 1.0, 0.0, 1.0)[0],
}


# d2's attention nodes on DiTs (ReferenceImageCondition: a reference image latent of the video's size;
# CrossStreamAttention: cross-window anchor attention), on the Wan fixture
_REF = {"samples": torch.randn(1, 16, 1, 8, 8, generator=torch.Generator().manual_seed(9))}
WAN_PATCHES = {
    **MODEL_PATCHES,
    "ReferenceImageCondition": lambda m, on: F.run_node("ReferenceImageCondition", m, _REF, F.latent("wan21_t2v", T),
                                                         strength=1.0 if on else 0.0, anchor_first_frame=False)[0],
    "CrossStreamAttention": lambda m, on: F.run_node("CrossStreamAttention", m, "anchor", "first", 0,
                                                      1.0 if on else 0.0)[0],
}


@pytest.fixture(scope="module")
def wan():
    return F.build("wan21_t2v", frames=T)


@pytest.mark.parametrize("windows", [manual_windows, wan_windows], ids=["ContextWindowsManual", "WanContextWindowsManual"])
@pytest.mark.parametrize("name", list(WAN_PATCHES))
@pytest.mark.parametrize("order", ["windows_first", "patch_first"])
def test_model_patches_under_core_windows_on_wan(wan, windows, name, order):
    m, pos, neg, lat = wan
    before = F.model_fingerprint(m)
    rec_model, rec = with_recorder(m)
    base = windows(rec_model)
    plain = F.sample_ksampler(base, pos, neg, lat, seed=3)
    assert_windows_ran(rec)
    assert not torch.equal(plain, F.sample_ksampler(m, pos, neg, lat, seed=3))  # the windows change the result
    patch = WAN_PATCHES[name]

    def build(on):
        return patch(base, on) if order == "windows_first" else windows(patch(rec_model, on))

    assert torch.equal(F.sample_ksampler(build(False), pos, neg, lat, seed=3), plain)  # strength 0
    rec.calls.clear()
    out = F.sample_ksampler(build(True), pos, neg, lat, seed=3)
    assert_windows_ran(rec)
    assert out.shape == lat["samples"].shape and torch.isfinite(out).all()
    assert not torch.equal(out, plain)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def test_motion_smoothing_sees_the_whole_video_under_windows(wan):
    """The post-CFG hook runs after the windows are merged: it sees all T latent frames."""
    m, pos, neg, lat = wan
    seen = []
    smooth = F.run_node("MotionSmoothingPatch", manual_windows(m), 1.0, 1.0, 0.0, 1.0)[0]
    probe = smooth.clone()
    probe.set_model_sampler_post_cfg_function(lambda args: (seen.append(args["denoised"].shape[2]), args["denoised"])[1])
    F.sample_ksampler(probe, pos, neg, lat, seed=3)
    assert seen and set(seen) == {T}


def test_noise_node_under_core_windows_on_wan(wan):
    m, pos, neg, lat = wan
    before = F.model_fingerprint(m)
    rec_model, rec = with_recorder(m)
    base = manual_windows(rec_model)
    plain = F.sample_custom_advanced(base, pos, neg, lat, seed=3)
    zero = F.run_node("BaseResidualNoise", 3, "shared", 0.0, 1.0, -1, "")[0]
    assert torch.equal(F.sample_custom_advanced(base, pos, neg, lat, noise=zero), plain)
    for mode in ("shared", "progressive", "mixed"):
        noise = F.run_node("BaseResidualNoise", 3, mode, 0.5, 1.0, -1, "")[0]
        rec.calls.clear()
        out = F.sample_custom_advanced(base, pos, neg, lat, noise=noise)
        assert_windows_ran(rec)
        assert out.shape == lat["samples"].shape and not torch.equal(out, plain)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def test_iterative_reuse_under_core_windows_on_wan(wan):
    """Clips of T latent frames, each sampled through the windows (window 4 < clip 8)."""
    m, pos, neg, lat = wan
    before = F.model_fingerprint(m)
    rec_model, rec = with_recorder(m)
    base = manual_windows(rec_model)
    args = dict(overlap=2, noise_recycle=4.0, guidance_ratio=0.5, fnr=True, overlap_mode="forward", seed=7, steps=2,
                cfg=2.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    one = F.run_node("IterativeReuseSampler", base, pos, neg, lat, total_frames=T, **args)[0]["samples"]
    assert torch.equal(one, F.sample_ksampler(base, pos, neg, lat, seed=7, steps=2, cfg=2.0))
    rec.calls.clear()
    out = F.run_node("IterativeReuseSampler", base, pos, neg, lat, total_frames=2 * T - 2, **args)[0]["samples"]
    assert_windows_ran(rec)
    assert out.shape[2] == 2 * T - 2 and torch.isfinite(out).all()
    assert torch.equal(out[:, :, :T], one)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


# ------------------------------------------------------------------------------------- other families
def core_windows_work(fx) -> Exception | None:
    """None when the unpatched model samples under core windows, else ComfyUI's own error."""
    m, pos, neg, lat = fx
    try:
        F.sample_ksampler(manual_windows(m, dim=0 if fx.family == "sd15" else 2), pos, neg, lat, seed=3)
    except Exception as e:  # noqa: BLE001  (we compare it with the patched model's error below)
        return e
    return None


CONCAT_NOT_CUT = r"input 'model': ComfyUI's core context windows .* do not cut the model's concat conditioning"


def concat_not_cut(core_error) -> bool:
    """ComfyUI's own failure when its windows leave the 5-D c_concat at full length (0.3.75)."""
    tb = __import__("traceback").extract_tb(core_error.__traceback__)
    return "Sizes of tensors must match" in str(core_error) and any(f.name == "_apply_model" for f in tb)


@pytest.mark.parametrize("family", ["wan22_t2v", "wan22_ti2v_5b", "ltxv", "hunyuan15_t2v", "wan22_i2v_a14b"])
def test_model_patches_under_core_windows_per_family(family):
    """Where ComfyUI itself fails because its windows do not cut the image-to-video concat conditioning
    (0.3.75: Wan I2V in_dim 36, HunyuanVideo 1.5), our patches stop first with the named error; where core samples
    (0.33 cuts c_concat), they sample, strength 0 bit-identical. Fails if add_concat_guard is dropped from a node."""
    fx = F.build(family, frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    core_error = core_windows_work(fx)
    for name, patch in MODEL_PATCHES.items():
        for on in (False, True):
            model = patch(manual_windows(m), on)
            if core_error is not None and concat_not_cut(core_error):
                with pytest.raises(Exception) as e:
                    F.sample_ksampler(model, pos, neg, lat, seed=3)
                # strength 0 may be a plain clone (then ComfyUI's own error); every patch names the cause
                if on or str(e.value) != str(core_error):
                    assert e.match(rf"\[{name}\] {CONCAT_NOT_CUT}.*clip by clip"), e.value
                continue
            if core_error is not None:
                # strength 0 is the unpatched model: ComfyUI's own error, unchanged
                with pytest.raises(type(core_error)) as e:
                    F.sample_ksampler(model, pos, neg, lat, seed=3)
                assert str(e.value) == str(core_error)
                continue
            plain = F.sample_ksampler(manual_windows(m), pos, neg, lat, seed=3)
            out = F.sample_ksampler(model, pos, neg, lat, seed=3)
            assert out.shape == lat["samples"].shape and torch.isfinite(out).all()
            assert torch.equal(out, plain) != on, (name, on)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


# ------------------------------------------------------------------------------------- SD1.5 (frames on the batch axis)
def test_sd15_core_windows_failure_is_named_by_our_nodes():
    """ComfyUI 0.3.75's core windows fail in IndexListContextHandler.set_step for any batch above 1, so for every
    SD1.5 video (frames on the batch axis, ContextWindowsManual dim 0). Our model patches and IterativeReuseSampler
    stop before it with an error naming the node, the input and the cause; where core works, so do they."""
    fx = F.build("sd15", frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    core_error = core_windows_work(fx)
    windowed = manual_windows(m, dim=0)
    for name, patch in MODEL_PATCHES.items():
        model = patch(windowed, True)
        if core_error is None:  # a ComfyUI whose set_step takes batches
            assert torch.isfinite(F.sample_ksampler(model, pos, neg, lat, seed=3)).all()
            continue
        assert "set_step" in "".join(__import__("traceback").format_tb(core_error.__traceback__))
        with pytest.raises(Exception, match=rf"\[{name}\] input 'model'.*context windows.*set_step") as e:
            F.sample_ksampler(model, pos, neg, lat, seed=3)
        assert "AnimateDiff-Evolved" in str(e.value)
    args = dict(total_frames=T + 2, overlap=1, noise_recycle=4.0, guidance_ratio=0.5, fnr=True, overlap_mode="forward",
                seed=7, steps=2, cfg=2.0, sampler_name="euler", scheduler="simple", denoise=1.0)
    if core_error is not None:
        with pytest.raises(Exception, match=r"\[IterativeReuseSampler\] input 'model'.*context windows.*set_step"):
            F.run_node("IterativeReuseSampler", windowed, pos, neg, lat, **args)
    # windows longer than the video are not used: no error
    short = manual_windows(m, dim=0, length=T)
    for name, patch in MODEL_PATCHES.items():
        assert torch.isfinite(F.sample_ksampler(patch(short, True), pos, neg, lat, seed=3)).all()
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


# ------------------------------------------------------------------------------------- Wan 2.2 I2V A14B (in_dim 36)
def test_wan_i2v_under_core_windows_works_where_comfyui_cuts_c_concat_else_named_error():
    """Wan 2.2 I2V A14B (both experts, WanContextWindowsManual): on a ComfyUI whose windows cut the 5-D c_concat
    (0.33) the unpatched model and every node sample, patched != plain, strength 0 bit-identical; where ComfyUI
    itself cannot (0.3.75), every node and IterativeReuseSampler stop with the named error before ComfyUI's own.
    Fails if the dit_reference write pass keeps a c_concat longer than its one frame (0.3.75: torch.cat error)."""
    fx = F.build("wan22_i2v_a14b", frames=T)
    m, pos, neg, lat = fx
    before = {k: F.model_fingerprint(e) for k, e in fx.experts.items()}
    core_error = core_windows_work(fx)
    if core_error is not None:
        assert concat_not_cut(core_error), core_error
    reuse_args = dict(total_frames=T + 2, overlap=2, noise_recycle=4.0, guidance_ratio=0.5, fnr=True,
                      overlap_mode="forward", seed=7, steps=2, cfg=2.0, sampler_name="euler", scheduler="simple",
                      denoise=1.0, condition_on_previous=True)
    for expert in fx.experts.values():
        base = wan_windows(expert)
        plain = None if core_error is not None else F.sample_ksampler(base, pos, neg, lat, seed=3)
        for name, patch in WAN_PATCHES.items():
            if core_error is not None:
                with pytest.raises(Exception, match=rf"\[{name}\] {CONCAT_NOT_CUT}"):
                    F.sample_ksampler(patch(base, True), pos, neg, lat, seed=3)
                continue
            assert torch.equal(F.sample_ksampler(patch(base, False), pos, neg, lat, seed=3), plain), name
            out = F.sample_ksampler(patch(base, True), pos, neg, lat, seed=3)
            assert torch.isfinite(out).all() and not torch.equal(out, plain), name
        if core_error is not None:
            with pytest.raises(Exception, match=rf"\[IterativeReuseSampler\] {CONCAT_NOT_CUT}"):
                F.run_node("IterativeReuseSampler", base, pos, neg, lat, **reuse_args)
        else:
            out = F.run_node("IterativeReuseSampler", base, pos, neg, lat, **reuse_args)[0]["samples"]
            assert out.shape[2] == T + 2 and torch.isfinite(out).all()
    for k, e in fx.experts.items():
        F.assert_same_fingerprint(before[k], F.model_fingerprint(e))
