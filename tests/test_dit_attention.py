"""ReferenceImageCondition and cross-window anchor attention on DiT video models (Wan 2.1/2.2, HunyuanVideo 1.5).

Real ComfyUI, real ModelPatchers of the real model classes (tiny random weights, ``support.families``),
sampled through ComfyUI's KSampler and core context windows (``WanContextWindowsManual``).
"""
from __future__ import annotations

import importlib
import types

import pytest
import torch

from support import families as F

REF_FAMILIES = ("wan21_t2v", "wan22_t2v", "wan22_ti2v_5b", "hunyuan15_t2v")


@pytest.fixture(scope="module")
def dit(pack):
    """The DiT hooks in one namespace: block discovery and RoPE (hooks/dit.py) and the two techniques on it
    (hooks/dit_reference.py, hooks/dit_cross_window.py)."""
    ns = {}
    for name in ("dit", "dit_reference", "dit_cross_window"):
        ns.update(vars(importlib.import_module(pack.__name__ + ".model_patches.hooks." + name)))
    return types.SimpleNamespace(**ns)


@pytest.fixture(scope="module")
def dmath(pack):
    return importlib.import_module(pack.__name__ + ".model_patches.dit_attention")


def _reference(fx, seed=3):
    g = torch.Generator().manual_seed(seed)
    s = fx.latent["samples"]
    return torch.randn(1, s.shape[1], 1, *s.shape[3:], generator=g)


def _windows(model, length_px=17, overlap_px=5, schedule="standard_static", dim=None):
    common = dict(context_length=length_px, context_overlap=overlap_px, context_schedule=schedule, context_stride=1,
                  closed_loop=False, fuse_method="pyramid", freenoise=False)   # causal_window_fix: the default
    if dim is None:
        return F.core_windows("WanContextWindowsManual", model, **common)
    return F.core_windows("ContextWindowsManual", model, dim=dim, **common)  # latent frames and the axis


# ------------------------------------------------------------------------------------------------
# pure math
# ------------------------------------------------------------------------------------------------
def _sdpa(q, k, v):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def test_extended_attention_is_the_weighted_concatenated_attention(dmath):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 12, 8, generator=g) for _ in range(3))
    ek, ev = torch.randn(1, 2, 4, 8, generator=g), torch.randn(1, 2, 4, 8, generator=g)
    full = _sdpa(q, torch.cat([k, ek.expand(2, -1, -1, -1)], 2), torch.cat([v, ev.expand(2, -1, -1, -1)], 2))
    plain = _sdpa(q, k, v)
    one = dmath.extended_attention(_sdpa, q, k, v, [dmath.DitExtension(ek, ev, (1.0, 1.0))], "bhld")
    assert torch.equal(one, full)
    mixed = dmath.extended_attention(_sdpa, q, k, v, [dmath.DitExtension(ek, ev, (1.0, 0.25))], "bhld")
    assert torch.allclose(mixed[0], full[0], atol=1e-6)
    assert torch.allclose(mixed[1], 0.75 * plain[1] + 0.25 * full[1], atol=1e-6)
    zero = dmath.extended_attention(_sdpa, q, k, v, [dmath.DitExtension(ek, ev, (0.0, 0.0))], "bhld")
    assert torch.equal(zero, plain)


def test_extension_positions_sit_in_front_of_the_window(dmath):
    assert dmath.extension_positions([2], 3) == [-1]          # the previous frame keeps its true offset
    assert dmath.extension_positions([0], 60) == [-1]         # a far anchor is packed right in front
    assert dmath.extension_positions([0, 59], 60) == [-2, -1]
    assert dmath.extension_positions([0, 1], 3) == [-2, -1]
    assert dmath.extension_positions([1, 2], 3) == [-2, -1]


@pytest.mark.parametrize("family", ("wan21_t2v", "hunyuan15_t2v"))
def test_time_shift_is_the_models_own_rope_at_the_shifted_frame(dit, family):
    """Rotating keys recorded at time position 0 by -1 frame gives the keys the model's own RoPE gives at time -1."""
    from comfy.ldm.flux.math import apply_rope1

    fx = F.build(family, frames=1)
    dm = fx.model.get_model_object("diffusion_model")
    adapter = dit.adapter_for(dm)
    g = torch.Generator().manual_seed(0)
    if adapter.name == "wan":
        heads, hd = dm.num_heads, dm.dim // dm.num_heads
        f0, f1 = dm.rope_encode(1, 8, 8, t_start=0), dm.rope_encode(1, 8, 8, t_start=-1)
        raw = torch.randn(1, f0.shape[1], heads, hd, generator=g)
        k0 = apply_rope1(raw, f0).reshape(1, f0.shape[1], heads * hd)
        k1 = apply_rope1(raw, f1).reshape(1, f0.shape[1], heads * hd)
        layout = "bld"
    else:
        ids = dm.img_ids(torch.zeros(1, 1, 1, 8, 8))
        ids1 = ids.clone()
        ids1[..., 0] = -1
        heads, hd = dm.num_heads, dm.hidden_size // dm.num_heads
        raw = torch.randn(1, heads, ids.shape[1], hd, generator=g)
        k0, k1 = apply_rope1(raw, dm.pe_embedder(ids)), apply_rope1(raw, dm.pe_embedder(ids1))
        layout = "bhld"
    rotation = adapter.time_rotation(dm, 0, dit.REFERENCE_POSITION, {}, (), k0.device)
    shifted = adapter.rotate(k0, layout, rotation)
    assert dit.REFERENCE_POSITION == -1
    assert not torch.allclose(k0, k1, atol=1e-3)
    assert torch.allclose(shifted, k1, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# ReferenceImageCondition on DiTs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", REF_FAMILIES)
def test_reference_samples_and_leaves_the_input_model_alone(comfy, dit, family):
    fx = F.build(family, frames=3)
    before = F.model_fingerprint(fx.model)
    base = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=2)
    m = dit.apply_reference_dit(fx.model, _reference(fx), 1.0, 0.5, 1.0, 0.0, 1.0, False, 0)
    out = F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=2)
    assert out.shape == base.shape and torch.isfinite(out).all()
    assert (out - base).abs().max() > 1e-3
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))
    again = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=2)
    assert torch.equal(again, base)


@pytest.mark.parametrize("windows", (False, True))
def test_reference_write_pass_runs_once_per_step(comfy, dit, windows):
    fx = F.build("wan21_t2v", frames=9 if windows else 3)
    model = _windows(fx.model) if windows else fx.model
    m = dit.apply_reference_dit(model, _reference(fx), 1.0, 0.5, 1.0, 0.0, 1.0, False, 0)
    m, calls = F.count_model_calls(m)
    steps = 3
    F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=steps, cfg=2.0)
    writes = [c for c in calls if c[2] == 1]          # the write pass: one latent frame, batch 1
    assert len(writes) == steps
    assert all(c[0] == 1 for c in writes)
    windows_per_step = (len(calls) - len(writes)) // steps
    if windows:   # as many as core's schedule makes (0.33's standard_static makes one fewer than 0.3.75's here)
        h = model.model_options["context_handler"]
        expected = len(h.context_schedule.func(9, h, model.model_options))
    assert windows_per_step == (expected if windows else 1)  # cond + uncond batched: one call per window


def test_reference_step_and_block_range(comfy, dit):
    fx = F.build("wan21_t2v", frames=3)
    m = dit.apply_reference_dit(fx.model, _reference(fx), 1.0, 0.0, 0.5, 0.5, 1.0, False, 0)
    replace = m.model_options["transformer_options"]["patches_replace"]["dit"]
    assert sorted(replace) == [("double_block", 0)]   # attention_weight 0.5 of 2 blocks: the first
    m, calls = F.count_model_calls(m)
    F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=4, cfg=2.0)
    ms = fx.model.get_model_object("model_sampling")
    sigmas = [float(s) for s in __import__("comfy.samplers").samplers.calculate_sigmas(ms, "simple", 4)[:-1]]
    in_range = [s for s in sigmas if float(ms.percent_to_sigma(1.0)) <= s <= float(ms.percent_to_sigma(0.5))]
    assert 0 < len(in_range) < 4
    assert len([c for c in calls if c[2] == 1]) == len(in_range)


def test_reference_strength_changes_only_the_selected_steps(comfy, dit):
    """strength 0 inside the hook (every weight 0) is the unpatched attention, bit for bit."""
    fx = F.build("wan21_t2v", frames=3)
    base = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=2)
    m = dit.apply_reference_dit(fx.model, _reference(fx), 0.0, 0.0, 1.0, 0.0, 1.0, False, 0)
    assert torch.equal(F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=2), base)


def test_first_frame_anchor_holds_latent_frame_zero(comfy, dit):
    fx = F.build("wan21_t2v", frames=3)
    ref = _reference(fx)
    m = dit.apply_reference_dit(fx.model, ref, 1.0, 0.5, 1.0, 0.0, 1.0, True, 0)
    lat = dit.reference_video_latent_5d(fx.latent, ref, True, dit.require_dit(fx.model, "reference"))
    assert lat["noise_mask"].shape == (1, 1, 3, 8, 8)
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2)
    assert torch.allclose(out[:, :, 0], ref[:, :, 0], atol=1e-5)
    assert not torch.allclose(out[:, :, 1], ref[:, :, 0], atol=1e-2)


def test_unsupported_dit_is_a_clear_error(comfy, dit, pack):
    """A model no DiT adapter knows (here an image U-Net) is refused naming the input and the model's class."""
    errors = importlib.import_module(pack.__name__ + ".model_patches.errors")
    fx = F.build("sd15", frames=2)
    with pytest.raises(errors.ParameterError, match=r"parameter 'model'.*UNetModel"):
        dit.apply_reference_dit(fx.model, torch.zeros(1, 4, 1, 8, 8), 1.0, 0.5, 1.0, 0.0, 1.0, False, 0)


# ------------------------------------------------------------------------------------------------
# CrossStreamAttention on DiTs: cross-window anchor attention
# ------------------------------------------------------------------------------------------------
def _spy_extensions(dit, monkeypatch):
    seen = []
    original = dit.CrossWindowExtender.extension

    def spy(self, ctx, k, v, layout):
        r = original(self, ctx, k, v, layout)
        seen.append((tuple(dit.window_of(ctx.options) or ()), None if r is None else int(r.k.shape[1])))
        return r

    monkeypatch.setattr(dit.CrossWindowExtender, "extension", spy)   # our own class, not ComfyUI's
    return seen


@pytest.mark.parametrize("mode,frames", (("anchor", 1), ("sparse_causal", 2)))
def test_cross_window_anchor_attends_to_earlier_windows(comfy, dit, monkeypatch, mode, frames):
    fx = F.build("wan21_t2v", frames=9)
    before = F.model_fingerprint(fx.model)
    wm = _windows(fx.model)
    base = F.sample_ksampler(wm, fx.positive, fx.negative, fx.latent, steps=2)
    seen = _spy_extensions(dit, monkeypatch)
    m, calls = F.count_model_calls(dit.apply_cross_window(wm, mode, "first", 0, 1.0, True, True, True, 0.0, 1.0))
    out = F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=2)
    tpf = 16  # 8x8 latent, 2x2 patches
    by_window = {w: n for w, n in seen}
    # core's windows for 9 frames (0.3.75: (0-4) (3-7) (4-8); 0.33: (0-4) (4-8)), each after the first with the
    # frame before it in front where the handler has causal_window_fix (0.33's default)
    h = wm.model_options["context_handler"]
    wins = [list(w) for w in h.context_schedule.func(9, h, wm.model_options)]
    causal = bool(getattr(h, "causal_window_fix", False))
    given = [tuple(([w[0] - 1] if causal and w[0] > 0 else []) + w) for w in wins]
    assert len(given) >= 2 and given[0] == (0, 1, 2, 3, 4)
    assert by_window[given[0]] is None                         # the first window holds the anchor itself
    for w in given[1:]:
        assert by_window[w] == frames * tpf, (w, by_window)    # frame 0 (+ the frame before the frames it is given)
    assert len(calls) == 2 * len(wins)                         # no extra forward: cached from the windows' own pass
    assert (out - base).abs().max() > 1e-3
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


def test_cross_window_under_contextwindowsmanual_dim2(comfy, dit, monkeypatch):
    fx = F.build("wan21_t2v", frames=9)
    seen = _spy_extensions(dit, monkeypatch)
    wm = _windows(fx.model, 5, 2, dim=2)
    m = dit.apply_cross_window(wm, "anchor", "first", 0, 1.0, True, True, True, 0.0, 1.0)
    F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=1)
    assert any(n == 16 for _, n in seen)


def test_cross_window_outside_windows_is_the_unpatched_model(comfy, dit):
    """Without context windows a DiT already attends across all its frames: nothing is added, bit for bit."""
    fx = F.build("wan21_t2v", frames=5)
    base = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=2)
    m = dit.apply_cross_window(fx.model, "anchor", "first", 0, 1.0, True, True, True, 0.0, 1.0)
    assert torch.equal(F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=2), base)


def test_cross_window_bad_inputs(comfy, dit, pack):
    errors = importlib.import_module(pack.__name__ + ".model_patches.errors")
    fx = F.build("wan21_t2v", frames=9)
    with pytest.raises(errors.ParameterError, match=r"parameter 'mode'"):
        dit.apply_cross_window(fx.model, "mutual", "first", 0, 1.0, True, True, True, 0.0, 1.0)
    m = dit.apply_cross_window(_windows(fx.model), "anchor", "index", 40, 1.0, True, True, True, 0.0, 1.0)
    with pytest.raises(errors.ParameterError, match=r"parameter 'anchor_index'.*outside the 9 latent frames"):
        F.sample_ksampler(m, fx.positive, fx.negative, fx.latent, steps=1)
