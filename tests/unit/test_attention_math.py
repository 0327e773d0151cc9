"""Extended self-attention math (model_patches/attention.py): batch layout, frame indexing, extended K/V and the
chained attention equations against a direct explicit-softmax computation, AdaIN. Pure math: no ComfyUI."""
from __future__ import annotations

import pytest
import torch

from support.attention_ref import BRANCHES, D, N, direct, qkv

@pytest.fixture(scope="module")
def A(pack):
    import coherent_video.model_patches.attention as m

    return m

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
