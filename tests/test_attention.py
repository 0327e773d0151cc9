"""Extended self-attention: the K/V math and the attn1 replace chain against a direct computation.

The chain is called exactly as ComfyUI's BasicTransformerBlock calls an attn1 replace patch, with
ComfyUI's own ``optimized_attention``; the expected values are computed independently here, one
(branch, frame) at a time with an explicit softmax.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

HEADS, N, D = 2, 6, 16
KEY = ("input", 1, 0)


@pytest.fixture(scope="module")
def A(pack):
    import coherent_video.model_patches.attention as m

    return m


@pytest.fixture(scope="module")
def H(pack, comfy):
    from types import SimpleNamespace

    from coherent_video.model_patches.hooks import chain, cross_stream, reference, state

    return SimpleNamespace(chain=chain, cross_stream=cross_stream, reference=reference, state=state)


def direct(q, k, v, heads=HEADS):
    """softmax(q k^T / sqrt(d)) v per head, for one frame: q [N, D], k/v [M, D]."""
    d = q.shape[-1] // heads
    qh, kh, vh = (t.reshape(t.shape[0], heads, d).transpose(0, 1).double() for t in (q, k, v))
    w = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
    return (w @ vh).transpose(0, 1).reshape(q.shape[0], heads * d).float()


def qkv(branches, frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(len(branches) * frames, N, D, generator=g) for _ in range(3)]


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


BRANCHES = [(0,), (1,), (0, 1), (1, 0), (1, 0, 0), (0, 1, 0)]


# ------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("branches", BRANCHES)
@pytest.mark.parametrize("frames", [1, 2, 16])
def test_batch_layout(A, branches, frames):
    lay = A.batch_layout(len(branches) * frames, list(branches))
    assert lay.branches == branches and lay.frames == frames and lay.frame_index == tuple(range(frames))
    x = torch.arange(len(branches) * frames * 3.0).view(-1, 3, 1)
    x4 = A.to_frames(x, lay)
    assert torch.equal(x4[1 % len(branches), frames - 1], x[(1 % len(branches)) * frames + frames - 1])
    # a window: absolute indices travel with the layout; a wrong-length index is ignored
    assert A.batch_layout(len(branches) * frames, list(branches), range(10, 10 + frames)).frame_index[0] == 10
    assert A.batch_layout(len(branches) * frames, list(branches), [0] * (frames + 1)).frame_index == tuple(range(frames))


def test_layout_without_branches_is_one_branch(A):
    lay = A.batch_layout(6, None)
    assert lay.branches == (0,) and lay.frames == 6
    assert A.batch_layout(5, [0, 1]).frames == 5  # not divisible: one branch


def test_index_helpers(A):
    import coherent_video.model_patches.video as V

    assert A.previous_positions([4, 5, 6, 7]) == [0, 0, 1, 2]
    assert A.previous_positions([0, 1, 2]) == [0, 0, 1]
    assert A.local_position(6, [4, 5, 6]) == 2 and A.local_position(0, [4, 5, 6]) is None
    assert A.nearest_position(0, [4, 5, 6]) == 0 and A.nearest_position(9, [4, 5, 6]) == 2
    assert V.resolve_anchor("center", 0, 16, range(16)) == 7 and V.resolve_anchor("center", 0, 15, range(15)) == 7
    assert V.resolve_anchor("center", 0, None, [4, 5, 6, 7]) == 5
    assert V.resolve_anchor("last", 0, 16, range(16)) == 15 and V.resolve_anchor("last", 0, None, [4, 5, 6]) == 6
    assert V.resolve_anchor("index", 3, 16, range(16)) == 3 and V.resolve_anchor("first", 3, 16, range(16)) == 0



@pytest.mark.parametrize("positions", [[2], [0, 1, 2, 3], [0, 0, 1, 2], [3, 1, 4, 1, 5, 0, 2, 6], [1, 1, 1, 1]])
def test_frame_tokens_equals_indexing(A, positions):
    x4 = torch.randn(2, 8, N, D)
    got = A.frame_tokens(x4, positions)
    assert torch.equal(got, x4[:, positions])
    assert torch.equal(A.frame_tokens(x4, 5), x4[:, 5:6])

# ------------------------------------------------------------------------------------- K/V math
def test_extend_kv_broadcasts_one_shared_frame(A):
    lay = A.batch_layout(2 * 3, [0, 1])
    k, v, _ = qkv((0, 1), 3)
    shared = torch.randn(1, 1, 4, D)
    ext = A.KVExtension((shared,), (shared * 2,), (1.0, 1.0))
    k2, v2 = A.extend_kv(k, v, [ext], lay)
    assert k2.shape == (6, N + 4, D)
    for r in range(6):
        assert torch.equal(k2[r], torch.cat([k[r], shared[0, 0]]))
        assert torch.equal(v2[r], torch.cat([v[r], 2 * shared[0, 0]]))


def test_chained_attention_equations(A):
    """R = sum_S prod_{i in S} w_i prod_{i not in S} (1 - w_i) attn(q, [K; K_S]); weight 0 = the plain call."""
    lay = A.batch_layout(2, [0])
    q, k, v = qkv((0,), 2)
    e1 = A.KVExtension((torch.randn(1, 1, 3, D),), (torch.randn(1, 1, 3, D),), (1.0,))
    e2 = A.KVExtension((torch.randn(1, 1, 5, D),), (torch.randn(1, 1, 5, D),), (1.0,))

    def attn(q_, k_, v_):
        return torch.stack([direct(q_[i], k_[i], v_[i]) for i in range(q_.shape[0])])

    def o(*exts):
        return attn(q, *A.extend_kv(k, v, list(exts), lay))

    def w(e, x):
        return e._replace(weights=(x,))

    plain = attn(q, k, v)
    assert torch.equal(A.chained_attention(attn, q, k, v, [], lay), plain)
    assert torch.equal(A.chained_attention(attn, q, k, v, [w(e1, 0.0)], lay), plain)
    torch.testing.assert_close(A.chained_attention(attn, q, k, v, [e1, e2], lay), o(e1, e2))
    torch.testing.assert_close(A.chained_attention(attn, q, k, v, [w(e1, 0.3)], lay), 0.7 * plain + 0.3 * o(e1))
    got = A.chained_attention(attn, q, k, v, [w(e1, 0.3), w(e2, 0.6)], lay)
    want = 0.7 * 0.4 * plain + 0.3 * 0.4 * o(e1) + 0.7 * 0.6 * o(e2) + 0.3 * 0.6 * o(e1, e2)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(A.chained_attention(attn, q, k, v, [w(e1, 0.3), e2], lay), 0.7 * o(e2) + 0.3 * o(e1, e2))
    torch.testing.assert_close(A.chained_attention(attn, q, k, v, [w(e1, 0.0), e2], lay), o(e2))
    assert A.subset_weights([1.0, 0.0, 0.5]) == [((0,), 0.5), ((0, 2), 0.5)]



@pytest.mark.parametrize("w1,w2", [((0.0, 1.0, 0.4), (1.0, 0.5, 0.0)), ((0.0, 1.0, 0.0), None), ((0.5, 0.5, 1.0), (0.0, 0.0, 0.0))])
def test_chained_attention_per_branch_weights(A, w1, w2):
    """Branches with different weights (cond vs uncond, style fidelity) in one call equal each branch
    computed alone, also when no term of the blend covers every branch."""
    branches, frames = (0, 1, 0), 2
    lay = A.batch_layout(len(branches) * frames, list(branches))
    q, k, v = qkv(branches, frames, seed=4)
    g = torch.Generator().manual_seed(9)
    e1 = A.KVExtension((torch.randn(1, 1, 3, D, generator=g),), (torch.randn(1, 1, 3, D, generator=g),), w1)
    per_branch = torch.randn(3, frames, 4, D, generator=g)
    exts = [e1] if w2 is None else [e1, A.KVExtension((per_branch,), (per_branch * 0.5,), w2)]

    def attn(q_, k_, v_):
        return torch.stack([direct(q_[i], k_[i], v_[i]) for i in range(q_.shape[0])])

    got = A.chained_attention(attn, q, k, v, exts, lay)
    one = A.batch_layout(frames, [0])
    for b in range(len(branches)):
        rows = slice(b * frames, (b + 1) * frames)
        mine = [e._replace(ks=tuple(x[b:b + 1] if x.shape[0] > 1 else x for x in e.ks),
                           vs=tuple(x[b:b + 1] if x.shape[0] > 1 else x for x in e.vs), weights=(e.weights[b],))
                for e in exts]
        want = A.chained_attention(attn, q[rows], k[rows], v[rows], mine, one)
        torch.testing.assert_close(got[rows], want, atol=1e-6, rtol=1e-5)

def test_adain_matches_reference_statistics(A):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(4, 3, 5, 5, generator=g) * 3 + 1
    ref = torch.randn(1, 3, 5, 5, generator=g) * 0.5 - 2
    rm, rs = A.channel_stats(ref)
    out = A.adain(h, rm, rs)
    m, s = A.channel_stats(out)
    torch.testing.assert_close(m, rm.expand_as(m), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s, rs.expand_as(s), atol=1e-4, rtol=1e-3)
    lay = A.batch_layout(4, [0, 1])
    blended = A.blend_rows(h, out, lay, (1.0, 0.25))
    torch.testing.assert_close(blended[:2], out[:2])
    torch.testing.assert_close(blended[2:], h[2:] + 0.25 * (out[2:] - h[2:]))


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


def test_core_context_window_anchor_is_absolute(H):
    """Core context windows carry only their indices: the video's length comes from the run (the noise's
    batch), so `centre` is the video's centre in every window and an out-of-range index is an error."""
    from comfy.context_windows import IndexListContextWindow

    from coherent_video.model_patches.errors import ParameterError

    run = H.state.RunState(total_frames=8)

    def core_options(idx):
        return options(H, (0,), len(idx), context_window=IndexListContextWindow(list(idx)), **{H.state.RUN_KEY: run})

    import coherent_video.model_patches.video as V

    centre = V.resolve_anchor("center", 0, 8, list(range(8)))  # the whole video's centre frame
    chain = H.chain.AttentionChain(KEY, (cross(H, "anchor", "center"),))
    q2, k2, v2 = qkv((0,), 4, seed=2)
    got = chain(q2, k2, v2, core_options(range(3, 7)))  # this window's own centre would be frame 5
    p = centre - 3
    for f in range(4):
        want = direct(q2[f], torch.cat([k2[f], k2[p]]), torch.cat([v2[f], v2[p]]))
        torch.testing.assert_close(got[f], want, atol=2e-5, rtol=1e-4)
    with pytest.raises(ParameterError, match=r"parameter 'anchor_index'.*outside the 8 frames"):
        H.chain.AttentionChain(KEY, (cross(H, "anchor", "index", 9),))(q2, k2, v2, core_options(range(4, 8)))


def test_sigma_range_gates_cross_stream(H):
    q, k, v = qkv((0,), 3)
    ext = H.cross_stream.CrossStreamExtender(H.cross_stream.CrossStreamSettings(mode="anchor", anchor="first"), "x",
                                             H.state.SigmaRange(None, None, (4.0, 2.0)))
    chain = H.chain.AttentionChain(KEY, (ext,))
    plain = torch.stack([direct(q[r], k[r], v[r]) for r in range(3)])
    torch.testing.assert_close(chain(q, k, v, options(H, (0,), 3, sigma=5.0)), plain, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(chain(q, k, v, options(H, (0,), 3, sigma=1.0)), plain, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(chain(q, k, v, options(H, (0,), 3, sigma=3.0)), plain, atol=1e-4)
