"""Extended self-attention: the attn1 replace chain (hooks) against a direct computation (the K/V math alone is
unit-tested in tests/unit/test_attention_math.py).

The chain is called exactly as ComfyUI's BasicTransformerBlock calls an attn1 replace patch, with
ComfyUI's own ``optimized_attention``; the expected values are computed independently here, one
(branch, frame) at a time with an explicit softmax.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from support.attention_ref import BRANCHES, D, HEADS, N, direct, qkv

KEY = ("input", 1, 0)


@pytest.fixture(scope="module")
def H(pack, comfy):
    from types import SimpleNamespace

    from coherent_video.model_patches.hooks import chain, cross_stream, reference, state

    return SimpleNamespace(chain=chain, cross_stream=cross_stream, reference=reference, state=state)


def options(H, branches, frames, sigma=5.0, **extra):
    o = {"n_heads": HEADS, "dim_head": D // HEADS, "attn_precision": None, "cond_or_uncond": list(branches),
         "sigmas": torch.full((len(branches) * frames,), sigma)}
    o.update(extra)
    return o


def cross(H, mode="anchor", anchor="first", index=0, strength=1.0, uid="cs"):
    settings = H.cross_stream.CrossStreamSettings(mode=mode, anchor=anchor, anchor_index=index, strength=strength)
    return H.cross_stream.CrossStreamExtender(settings, uid, H.state.SigmaRange(None, None, (1e9, 0.0)))


def reference(H, strength=1.0, style_fidelity=0.5, uid="ref"):
    return H.reference.ReferenceExtender(H.reference.ActiveReference(
        uid=uid, strength=strength, style_fidelity=style_fidelity, seed=0, concat=False, write=True,
        sigmas=H.state.SigmaRange(None, None, (1e9, 0.0))))


def expected_cross(q, k, v, branches, frames, mode, anchor_pos=0, strength=1.0, frame_index=None):
    idx = list(frame_index) if frame_index is not None else list(range(frames))
    out = torch.empty_like(q)
    for b, f in itertools.product(range(len(branches)), range(frames)):
        r = b * frames + f
        rows = lambda fs: [b * frames + x for x in fs]  # noqa: E731
        if mode == "anchor":
            ek, ev = k[rows([anchor_pos])].reshape(-1, D), v[rows([anchor_pos])].reshape(-1, D)
        elif mode == "sparse_causal":
            prev = idx.index(idx[f] - 1) if idx[f] - 1 in idx else f
            ek = torch.cat([k[rows([anchor_pos])].reshape(-1, D), k[rows([prev])].reshape(-1, D)])
            ev = torch.cat([v[rows([anchor_pos])].reshape(-1, D), v[rows([prev])].reshape(-1, D)])
        else:  # mutual
            ek = k[rows(range(frames))].mean(0)
            ev = v[rows(range(frames))].mean(0)
        full = direct(q[r], torch.cat([k[r], ek]), torch.cat([v[r], ev]))
        plain = direct(q[r], k[r], v[r])
        out[r] = plain + strength * (full - plain)
    return out


# ------------------------------------------------------------------------------------- layout


# ------------------------------------------------------------------------------------- K/V math


# ------------------------------------------------------------------------------------- the replace chain
@pytest.mark.parametrize("branches", BRANCHES)
@pytest.mark.parametrize("frames", [1, 2, 16])
@pytest.mark.parametrize("mode", ["anchor", "sparse_causal", "mutual"])
def test_cross_stream_chain_matches_direct(H, branches, frames, mode):
    q, k, v = qkv(branches, frames, seed=frames)
    chain = H.chain.AttentionChain(KEY, (cross(H, mode),))
    got = chain(q, k, v, options(H, branches, frames))
    torch.testing.assert_close(got, expected_cross(q, k, v, branches, frames, mode), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("anchor,index", [("center", 0), ("last", 0), ("index", 1)])
@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_cross_stream_anchor_choice_and_blend(H, anchor, index, strength):
    branches, frames = (1, 0), 4
    q, k, v = qkv(branches, frames, seed=3)
    got = H.chain.AttentionChain(KEY, (cross(H, "anchor", anchor, index, strength),))(q, k, v, options(H, branches, frames))
    pos = {"center": 1, "last": 3, "index": 1}[anchor]  # frames = 4: center (4-1)//2 = 1
    torch.testing.assert_close(got, expected_cross(q, k, v, branches, frames, "anchor", pos, strength),
                               atol=2e-5, rtol=1e-4)


def test_strength_zero_is_the_plain_call(H):
    import comfy.ldm.modules.attention as ca

    q, k, v = qkv((0, 1), 4)
    o = options(H, (0, 1), 4)
    plain = ca.optimized_attention(q, k, v, HEADS, attn_precision=None, transformer_options=o)
    assert torch.equal(H.chain.AttentionChain(KEY, (cross(H, strength=0.0),))(q, k, v, o), plain)
    assert torch.equal(H.chain.AttentionChain(KEY, (reference(H, strength=0.0),))(q, k, v, o), plain)


@pytest.mark.parametrize("branches", BRANCHES)
@pytest.mark.parametrize("frames", [1, 2, 16])
def test_reference_chain_matches_direct(H, branches, frames):
    q, k, v = qkv(branches, frames, seed=7)
    k_ref, v_ref = torch.randn(1, 9, D), torch.randn(1, 9, D)
    bank = H.reference.ReferenceBank(5.0, kv={KEY: (k_ref, v_ref)})
    sf = 0.25
    chain = H.chain.AttentionChain(KEY, (reference(H, style_fidelity=sf),))
    got = chain(q, k, v, options(H, branches, frames, **{H.reference.BANKS_KEY: {"ref": bank}}))
    for b, f in itertools.product(range(len(branches)), range(frames)):
        r = b * frames + f
        full = direct(q[r], torch.cat([k[r], k_ref[0]]), torch.cat([v[r], v_ref[0]]))
        want = full if branches[b] == 0 else sf * direct(q[r], k[r], v[r]) + (1 - sf) * full
        torch.testing.assert_close(got[r], want, atol=2e-5, rtol=1e-4)
    # without this reference's bank (another uid, or outside the sigma range) it is plain attention
    other = chain(q, k, v, options(H, branches, frames, **{H.reference.BANKS_KEY: {"other": bank}}))
    torch.testing.assert_close(other, torch.stack([direct(q[r], k[r], v[r]) for r in range(q.shape[0])]),
                               atol=2e-5, rtol=1e-4)


def test_reference_write_pass_records_and_skips_cross_stream(H):
    q, k, v = qkv((0,), 1)
    bank = H.reference.ReferenceBank(5.0)
    chain = H.chain.AttentionChain(KEY, (reference(H), cross(H, "sparse_causal")))
    out = chain(q, k, v, options(H, (0,), 1, **{H.state.WRITING_KEY: ("ref", bank)}))
    assert torch.equal(bank.kv[KEY][0], k[:1]) and torch.equal(bank.kv[KEY][1], v[:1])
    torch.testing.assert_close(out, direct(q[0], k[0], v[0])[None], atol=2e-5, rtol=1e-4)


def test_composed_chain_is_joint_attention(H):
    """reference + cross-stream on one block: cond rows attend to [own; reference; anchor] jointly; uncond
    rows keep style_fidelity of the reference-free (cross-stream only) attention."""
    branches, frames, sf = (0, 1), 3, 0.5
    q, k, v = qkv(branches, frames, seed=11)
    k_ref, v_ref = torch.randn(1, 4, D), torch.randn(1, 4, D)
    bank = H.reference.ReferenceBank(5.0, kv={KEY: (k_ref, v_ref)})
    chain = H.chain.AttentionChain(KEY, (reference(H, style_fidelity=sf), cross(H, "anchor")))
    got = chain(q, k, v, options(H, branches, frames, **{H.reference.BANKS_KEY: {"ref": bank}}))
    for b, f in itertools.product(range(2), range(frames)):
        r, a = b * frames + f, b * frames
        joint = direct(q[r], torch.cat([k[r], k_ref[0], k[a]]), torch.cat([v[r], v_ref[0], v[a]]))
        cross_only = direct(q[r], torch.cat([k[r], k[a]]), torch.cat([v[r], v[a]]))
        want = joint if branches[b] == 0 else sf * cross_only + (1 - sf) * joint
        torch.testing.assert_close(got[r], want, atol=2e-5, rtol=1e-4)


def test_foreign_replace_patch_gets_extended_kv(H):
    seen = []

    def foreign(q, k, v, extra_options):
        seen.append(k.shape[1])
        return q * 0

    q, k, v = qkv((0,), 2)
    out = H.chain.AttentionChain(KEY, (cross(H),), fallback=foreign)(q, k, v, options(H, (0,), 2))
    assert seen == [2 * N] and torch.equal(out, q * 0)


# ------------------------------------------------------------------------------------- windows
def _window_options(H, branches, idx, run=None, full=None):
    ad = {"sub_idxs": list(idx)}
    if full is not None:
        ad["full_length"] = full
    o = options(H, branches, len(idx), ad_params=ad)
    if run is not None:
        o[H.state.RUN_KEY] = run
    return o


@pytest.mark.parametrize("branches", [(0,), (1, 0)])
def test_sub_idxs_window_uses_absolute_anchor(H, branches):
    """Windows [0..3] then [4..7] of 8 frames at one sigma: the second window still attends to
    absolute frame 0 (cached from the first window in the run state)."""
    run = H.state.RunState()
    ext = cross(H, "anchor", "first")
    chain = H.chain.AttentionChain(KEY, (ext,))
    q1, k1, v1 = qkv(branches, 4, seed=1)
    chain(q1, k1, v1, _window_options(H, branches, range(0, 4), run, full=8))
    q2, k2, v2 = qkv(branches, 4, seed=2)
    got = chain(q2, k2, v2, _window_options(H, branches, range(4, 8), run, full=8))
    for b, f in itertools.product(range(len(branches)), range(4)):
        r, a = b * 4 + f, b * 4
        want = direct(q2[r], torch.cat([k2[r], k1[a]]), torch.cat([v2[r], v1[a]]))
        torch.testing.assert_close(got[r], want, atol=2e-5, rtol=1e-4)
    # without the cache (no run state): documented fallback = the window frame nearest to the anchor
    got = chain(q2, k2, v2, _window_options(H, branches, range(4, 8), None, full=8))
    torch.testing.assert_close(got, expected_cross(q2, k2, v2, branches, 4, "anchor", 0), atol=2e-5, rtol=1e-4)


def test_anchor_cache_holds_one_step(H):
    """Over many steps (sigmas) the run's anchor cache holds only the current step's entries."""
    run = H.state.RunState()
    chain = H.chain.AttentionChain(KEY, (cross(H, "anchor", "first"), cross(H, "sparse_causal", uid="cs2")))
    sizes = []
    for step, sigma in enumerate((9.0, 5.0, 2.0, 1.0, 0.5)):
        for window in (range(0, 4), range(4, 8)):
            q, k, v = qkv((1, 0), 4, seed=step)
            o = _window_options(H, (1, 0), window, run, full=8)
            o["sigmas"] = torch.full_like(o["sigmas"], sigma)
            chain(q, k, v, o)
        sizes.append(len(run.anchors))
        assert all(key[2] == sigma for key in run.anchors)
    assert sizes == [2] * 5  # two patches x one block x one branch set x anchor frame 0


def test_sub_idxs_window_anchor_index_inside_and_sparse_causal(H):
    branches = (0, 1)
    q, k, v = qkv(branches, 4, seed=5)
    idx = [4, 5, 6, 7]
    got = H.chain.AttentionChain(KEY, (cross(H, "anchor", "index", 6),))(q, k, v, _window_options(H, branches, idx, full=8))
    torch.testing.assert_close(got, expected_cross(q, k, v, branches, 4, "anchor", 2), atol=2e-5, rtol=1e-4)
    got = H.chain.AttentionChain(KEY, (cross(H, "sparse_causal"),))(q, k, v, _window_options(H, branches, idx, full=8))
    # frame 0 is outside the window and not cached: nearest (local 0); abs 4's predecessor is outside: itself
    torch.testing.assert_close(got, expected_cross(q, k, v, branches, 4, "sparse_causal", 0, frame_index=idx),
                               atol=2e-5, rtol=1e-4)


def test_anchor_index_outside_frames_is_an_error(H):
    from coherent_video.model_patches.errors import ParameterError

    q, k, v = qkv((0, 1), 4)
    chain = H.chain.AttentionChain(KEY, (cross(H, "anchor", "index", 4),))
    with pytest.raises(ParameterError, match=r"parameter 'anchor_index'.*outside the 4 frames"):
        chain(q, k, v, options(H, (0, 1), 4))
    # in a window, against the whole video's length (ad_params["full_length"])
    q2, k2, v2 = qkv((0,), 2)
    with pytest.raises(ParameterError, match=r"parameter 'anchor_index'.*outside the 8 frames"):
        H.chain.AttentionChain(KEY, (cross(H, "anchor", "index", 9),))(q2, k2, v2, _window_options(H, (0,), [0, 1], full=8))


def core_window(index, total: int, causal_anchor: int | None = None):
    """A core ``IndexListContextWindow`` over ``index`` of a ``total``-frame video (0.33's constructor divides by
    ``total_frames``, 0.3.75's has none), with ``causal_window_fix``'s anchor frame in front when given (0.33:
    the handler sets ``window.causal_anchor_index`` and hands the model that frame before the window's own)."""
    import inspect

    from comfy.context_windows import IndexListContextWindow

    kw = {"total_frames": total} if "total_frames" in inspect.signature(IndexListContextWindow).parameters else {}
    win = IndexListContextWindow(list(index), **kw)
    if causal_anchor is not None:
        win.causal_anchor_index = causal_anchor
    return win


@pytest.mark.parametrize("causal", [False, True], ids=["plain", "causal_window_fix"])
def test_core_context_window_anchor_is_absolute(H, causal):
    """Core context windows carry only their indices: the video's length comes from the run (the noise's
    batch), so `centre` is the video's centre in every window and an out-of-range index is an error. With
    ``causal_window_fix`` the model gets the frame before the window in front (5 frames for a 4-frame window):
    the anchor's place in the batch moves by one and every frame of the batch (the extra one too) attends to it."""
    from coherent_video.model_patches.errors import ParameterError

    run = H.state.RunState(total_frames=8)
    first = 2 if causal else 3   # the first frame the model sees

    def core_options(idx):
        n = len(idx) + (1 if causal else 0)
        win = core_window(idx, 8, idx[0] - 1 if causal else None)
        return options(H, (0,), n, context_window=win, **{H.state.RUN_KEY: run})

    import coherent_video.model_patches.video as V

    centre = V.resolve_anchor("center", 0, 8, list(range(8)))  # the whole video's centre frame
    chain = H.chain.AttentionChain(KEY, (cross(H, "anchor", "center"),))
    n = 5 if causal else 4
    q2, k2, v2 = qkv((0,), n, seed=2)
    got = chain(q2, k2, v2, core_options(list(range(3, 7))))  # this window's own centre would be frame 5
    p = centre - first
    for f in range(n):
        want = direct(q2[f], torch.cat([k2[f], k2[p]]), torch.cat([v2[f], v2[p]]))
        torch.testing.assert_close(got[f], want, atol=2e-5, rtol=1e-4)
    q3, k3, v3 = qkv((0,), n, seed=3)
    with pytest.raises(ParameterError, match=r"parameter 'anchor_index'.*outside the 8 frames"):
        H.chain.AttentionChain(KEY, (cross(H, "anchor", "index", 9),))(q3, k3, v3, core_options(list(range(4, 8))))


def test_sigma_range_gates_cross_stream(H):
    q, k, v = qkv((0,), 3)
    ext = H.cross_stream.CrossStreamExtender(H.cross_stream.CrossStreamSettings(mode="anchor", anchor="first"), "x",
                                             H.state.SigmaRange(None, None, (4.0, 2.0)))
    chain = H.chain.AttentionChain(KEY, (ext,))
    plain = torch.stack([direct(q[r], k[r], v[r]) for r in range(3)])
    torch.testing.assert_close(chain(q, k, v, options(H, (0,), 3, sigma=5.0)), plain, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(chain(q, k, v, options(H, (0,), 3, sigma=1.0)), plain, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(chain(q, k, v, options(H, (0,), 3, sigma=3.0)), plain, atol=1e-4)
