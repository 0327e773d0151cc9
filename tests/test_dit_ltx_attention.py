"""ReferenceImageCondition and CrossStreamAttention on LTX-Video (``comfy.ldm.lightricks.model.LTXVModel``), through
its adapter (``model_patches/hooks/adapters/ltxv.py``): the model's own RoPE path with shifted coordinates, sampling
through ComfyUI's KSampler, strength 0 bit-identical, the input model unchanged, under core context windows
(``LTXVContextWindows`` where the ComfyUI has it, ComfyUI 0.33+; ``ContextWindowsManual`` over latent time on both).

Tiny random LTXV (``support.families``), 2 steps.
"""
from __future__ import annotations

import importlib

import pytest
import torch

from support import families as F

FRAMES = 5   # latent frames (33 pixel frames)


def _nodes(pack):
    ref = importlib.import_module(pack.__name__ + ".nodes.reference_image").ReferenceImageCondition
    cross = importlib.import_module(pack.__name__ + ".nodes.cross_stream").CrossStreamAttention
    return ref, cross


def _out(o):
    return tuple(o.result) if hasattr(o, "result") else tuple(o)


def _reference(fx, seed=3):
    s = fx.latent["samples"]
    return {"samples": torch.randn(1, s.shape[1], 1, *s.shape[3:], generator=torch.Generator().manual_seed(seed))}


def _windows(model, node="ContextWindowsManual"):
    import nodes

    if node == "LTXVContextWindows":
        if node not in nodes.NODE_CLASS_MAPPINGS:
            pytest.skip("this ComfyUI has no LTXVContextWindows node (added in ComfyUI 0.33)")
        return F.core_windows(node, model, context_length=1 + 8 * 2, context_overlap=8,
                              context_schedule="standard_static", fuse_method="pyramid", freenoise=False)
    return F.core_windows(node, model, context_length=3, context_overlap=1, context_schedule="standard_static",
                          context_stride=1, closed_loop=False, fuse_method="pyramid", dim=2, freenoise=False)


def _model_keys(dm, raw, frames, frame_rate):
    """``raw`` keys ([1, N, inner]) of a ``frames``-latent-frame call rotated by LTX's own RoPE, from the model's
    own patchifier coordinates (``latent_to_pixel_coords``), as its forward builds them."""
    import comfy.ldm.lightricks.model as L
    from comfy.ldm.flux.math import apply_rope1

    h = w = 2
    _, latent_coords = dm.patchifier.patchify(torch.zeros(1, 128, frames, h, w))
    to_pixel = getattr(L, "latent_to_pixel_coords", None)
    if to_pixel is None:
        from comfy.ldm.lightricks.symmetric_patchifier import latent_to_pixel_coords as to_pixel
    pixel = to_pixel(latent_coords=latent_coords, scale_factors=dm.vae_scale_factors,
                     causal_fix=dm.causal_temporal_positioning)
    if hasattr(dm, "_prepare_positional_embeddings"):
        return L.apply_rotary_emb(raw, dm._prepare_positional_embeddings(pixel, frame_rate, torch.float32)), h * w
    fc = pixel.to(torch.float32)
    fc[:, 0] = fc[:, 0] / frame_rate
    pe = L.precompute_freqs_cis(fc, dim=dm.inner_dim, out_dtype=torch.float32)
    return apply_rope1(raw.unsqueeze(1), pe).squeeze(1), h * w


@pytest.mark.parametrize("a,b", [(1, 3), (2, 1), (0, 2)])
def test_ltx_time_shift_is_the_models_own_rope_at_the_shifted_frame(pack, comfy, a, b):
    """A key of latent frame ``a`` moved by the adapter to frame ``b`` equals the key the model's own RoPE gives
    the same raw key at frame ``b`` (fractional pixel coordinates, seconds via the frame rate, the causal first
    frame at 0). Fails if the adapter shifted by whole latent frames (``b - a``) instead of the model's pixel
    times, e.g. for (0, 2), where frame 0 sits at pixel 0 and frame 2 at pixel 9."""
    adapters = importlib.import_module(pack.__name__ + ".model_patches.hooks.adapters")
    fx = F.build("ltxv", frames=1)
    dm = fx.model.get_model_object("diffusion_model")
    adapter = adapters.adapter_for(fx.model)
    assert adapter.name == "ltxv" and adapter.kind == "dit"
    frames, fr = 4, 24.0
    n = 4  # tokens per latent frame of _model_keys
    raw_frame = torch.randn(1, n, dm.inner_dim, generator=torch.Generator().manual_seed(0))
    keys, tpf = _model_keys(dm, raw_frame.repeat(1, frames, 1), frames, fr)
    ka, kb = keys[:, a * tpf:(a + 1) * tpf], keys[:, b * tpf:(b + 1) * tpf]
    rot = adapter.time_rotation(dm, a, b, {}, adapter.call_extras({"frame_rate": fr}), ka.device)
    moved = adapter.rotate(ka, "bld", rot)
    assert not torch.allclose(ka, kb, atol=1e-3)
    assert torch.allclose(moved, kb, atol=1e-4), (moved - kb).abs().max()


def test_reference_node_on_ltxv(comfy, pack):
    """ReferenceImageCondition samples on LTXV (anchor on and off), changes the frames it should, strength 0 is
    bit-identical, the input model is unchanged. Fails if the LTXV adapter's block keys are empty (no extension)."""
    Ref, _ = _nodes(pack)
    fx = F.build("ltxv", frames=3)
    before = F.model_fingerprint(fx.model)
    base = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=2)
    ref = _reference(fx)
    for anchor in (False, True):
        m, lat = _out(Ref.execute(fx.model, ref, fx.latent, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0, anchor))
        out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2)
        assert out.shape == base.shape and torch.isfinite(out).all()
        if anchor:
            assert torch.allclose(out[:, :, 0], ref["samples"][:, :, 0], atol=1e-5)
        assert (out[:, :, 1:] - base[:, :, 1:]).abs().max() > 1e-3
    m0, lat0 = _out(Ref.execute(fx.model, ref, fx.latent, 0.0))
    assert lat0 is fx.latent
    assert torch.equal(F.sample_ksampler(m0, fx.positive, fx.negative, lat0, steps=2), base)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))


@pytest.mark.parametrize("windows", ["ContextWindowsManual", "LTXVContextWindows"])
def test_reference_and_cross_stream_on_ltxv_under_core_windows(comfy, pack, windows):
    """Under core context windows over latent time (``LTXVContextWindows`` on ComfyUI 0.33+): both nodes sample,
    change the windowed result, strength 0 is bit-identical to the windowed model, the input model is unchanged.
    CrossStreamAttention fails here if the extender never finds cached anchor frames (e.g. ``window_of`` reading
    another axis)."""
    Ref, Cross = _nodes(pack)
    fx = F.build("ltxv", frames=FRAMES)
    before = F.model_fingerprint(fx.model)
    wm = _windows(fx.model, windows)
    plain = F.sample_ksampler(wm, fx.positive, fx.negative, fx.latent, steps=2, seed=3)
    ref = _reference(fx)
    m, lat = _out(Ref.execute(wm, ref, fx.latent, 1.0, anchor_first_frame=False))
    out = F.sample_ksampler(m, fx.positive, fx.negative, lat, steps=2, seed=3)
    assert torch.isfinite(out).all() and not torch.equal(out, plain)
    for mode in ("anchor", "sparse_causal"):
        c = _out(Cross.execute(wm, mode, "first", 0, 1.0))[0]
        out = F.sample_ksampler(c, fx.positive, fx.negative, fx.latent, steps=2, seed=3)
        assert torch.isfinite(out).all() and (out - plain).abs().max() > 1e-4, mode
    c0 = _out(Cross.execute(wm, "anchor", "first", 0, 0.0))[0]
    assert torch.equal(F.sample_ksampler(c0, fx.positive, fx.negative, fx.latent, steps=2, seed=3), plain)
    m0, _ = _out(Ref.execute(wm, ref, fx.latent, 0.0))
    assert torch.equal(F.sample_ksampler(m0, fx.positive, fx.negative, fx.latent, steps=2, seed=3), plain)
    F.assert_same_fingerprint(before, F.model_fingerprint(fx.model))
