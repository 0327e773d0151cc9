"""Extended self-attention for video batches: pure tensor math, no ComfyUI import.

Two training-free families share this layer:

- reference-only attention (the reference image's self-attention tokens are appended to every
  frame's keys and values; Zhang et al., ControlNet "reference_only", 2023), the
  training-free stand-in for VideoGen's reference-image
  conditioning (Li et al., arXiv 2309.00398);
- cross-frame attention (Text2Video-Zero, Khachatryan et al., arXiv 2303.13439, Eq. 6), the
  sparse-causal attention after Tune-A-Video (Wu et al., arXiv 2212.11565, Sec. 4.1; its keys are the
  first and previous frames only, ours keep the frame's own keys too) and a mutual
  content/motion exchange, the training-free stand-in for DSDN's
  cross-transformer (Liu et al., arXiv 2308.08316).

Batch layout. ComfyUI runs the CFG branches and the frames on one batch axis, branch-major:
row ``b * F + f`` is frame ``f`` of branch ``b`` (``transformer_options["cond_or_uncond"]`` lists
the branches). Everything here works on the 4-D view ``[B, F, tokens, dim]`` of those rows.

Attention itself is passed in as ``attn(q, k, v) -> out`` (the hooks pass ComfyUI's
``optimized_attention``), so this module only decides where K and V come from.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, NamedTuple, Sequence

import torch


CROSS_MODES = ("anchor", "sparse_causal", "mutual")

AttnFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# batch layout
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchLayout:
    """Where each batch row comes from: ``branches`` CFG branches (their cond_or_uncond values, in
    batch order) times ``frames`` frames, whose absolute frame indices are ``frame_index``."""

    branches: tuple
    frames: int
    frame_index: tuple

    @property
    def n_branches(self) -> int:
        return len(self.branches)


def batch_layout(batch: int, cond_or_uncond: Sequence[int] | None, frame_index: Sequence[int] | None = None) -> BatchLayout:
    """Split a batch of ``batch`` rows into CFG branches x frames (branch-major).

    ``cond_or_uncond`` is ComfyUI's list of branch kinds (0 cond, 1 uncond) in batch order; when it
    is missing or does not divide the batch, the whole batch is one branch. ``frame_index`` (from
    AnimateDiff-Evolved's ``ad_params["sub_idxs"]`` or a core context window) gives the absolute index
    of each local frame; it is ignored unless it has one entry per frame.
    """
    branches = tuple(int(c) for c in (cond_or_uncond or ()))
    if not branches or batch % len(branches) != 0:
        branches = (0,)
    frames = batch // len(branches)
    idx = tuple(int(i) for i in frame_index) if frame_index is not None else ()
    if len(idx) != frames:
        idx = tuple(range(frames))
    return BatchLayout(branches, frames, idx)


def to_frames(x: torch.Tensor, layout: BatchLayout) -> torch.Tensor:
    """``[B*F, N, D] -> [B, F, N, D]`` (a view)."""
    return x.view(layout.n_branches, layout.frames, *x.shape[1:])


def from_frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, F, N, D] -> [B*F, N, D]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


# --------------------------------------------------------------------------------------------
# which frames to look at (absolute indices)
# --------------------------------------------------------------------------------------------
def local_position(absolute: int, frame_index: Sequence[int]) -> int | None:
    """Local position of absolute frame ``absolute`` in this window, or None when it is outside."""
    try:
        return list(frame_index).index(int(absolute))
    except ValueError:
        return None


def nearest_position(absolute: int, frame_index: Sequence[int]) -> int:
    """Local position of the frame in this window closest to ``absolute`` (the out-of-window fallback)."""
    return min(range(len(frame_index)), key=lambda i: (abs(frame_index[i] - absolute), i))


def previous_positions(frame_index: Sequence[int]) -> list[int]:
    """Sparse-causal "previous frame" (Tune-A-Video Eq. 3) of every local frame, as local positions.

    Frame ``i`` looks at absolute frame ``i - 1``; frame 0 and a frame whose predecessor is not in the
    window look at themselves. (Cached per window: it is asked for at every block.)
    """
    return list(_previous_positions(tuple(int(a) for a in frame_index)))


@lru_cache(maxsize=256)
def _previous_positions(frame_index: tuple) -> tuple:
    pos = {a: i for i, a in enumerate(frame_index)}
    return tuple(pos.get(a - 1, i) for i, a in enumerate(frame_index))


# --------------------------------------------------------------------------------------------
# K/V extensions
# --------------------------------------------------------------------------------------------
class KVExtension(NamedTuple):
    """Extra keys/values for every frame, and how much of the extended attention each branch takes.

    ``ks``/``vs`` are tuples of parts ``[Bk, Fk, M, D]`` with ``Bk`` in {1, B} and ``Fk`` in {1, F}:
    a size-1 axis is broadcast with ``expand`` (no copy) when the extended K/V are built, and all
    parts are appended in the same concatenation. ``weights`` has one float per branch: 0 = plain
    attention, 1 = the extended attention, in between a blend of the outputs.
    """

    ks: tuple
    vs: tuple
    weights: tuple


def frame_tokens(x4: torch.Tensor, positions: Sequence[int] | int) -> torch.Tensor:
    """Tokens of the frames at local ``positions`` for every frame: ``[B, F, N, D] -> [B, F|1, N, D]``.

    An int selects one frame shared by all frames (a size-1 frame axis to be broadcast).
    """
    if isinstance(positions, int):
        return x4[:, positions:positions + 1]
    runs = _runs(tuple(int(p) for p in positions))
    if len(runs) == 1:
        return x4[:, runs[0][0]:runs[0][1]]
    if len(runs) <= 4:  # e.g. sparse-causal [0, 0, 1, ..., F-2]: slices, no index tensor sent to the device
        return torch.cat([x4[:, a:b] for a, b in runs], dim=1)
    return x4.index_select(1, torch.tensor(positions, dtype=torch.long).to(x4.device, non_blocking=True))


@lru_cache(maxsize=256)
def _runs(positions: tuple) -> tuple:
    """``positions`` as runs of consecutive indices, ``((start, stop), ...)``."""
    runs = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + 1
        else:
            runs.append([p, p + 1])
    return tuple((a, b) for a, b in runs)


def temporal_mean(x4: torch.Tensor) -> torch.Tensor:
    """DSDN-style content stream: the mean over frames of each branch, ``[B, F, N, D] -> [B, 1, N, D]``.

    Because K and V are affine in the hidden state, the mean of the frames' K/V is exactly the K/V of
    the temporally averaged tokens.
    """
    return x4.mean(dim=1, keepdim=True)


def extend_kv(k: torch.Tensor, v: torch.Tensor, extensions: Sequence[KVExtension], layout: BatchLayout,
              branch_rows: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Build ``K' = [K; K_e1; K_e2; ...]`` and ``V'`` likewise, per frame, in one ``torch.cat``.

    ``k``/``v`` are the frames' own ``[B*F, N, D]`` (or only the branches ``branch_rows``). Each
    extension is broadcast over branches/frames with ``expand`` (a view), so a shared reference or
    anchor frame is never repeated in memory before the single concatenation.
    Returns ``[B'*F, N + sum(M), D]``.
    """
    nb = layout.n_branches if branch_rows is None else len(branch_rows)
    f = layout.frames
    ks, vs = [k.view(nb, f, *k.shape[1:])], [v.view(nb, f, *v.shape[1:])]
    for e in extensions:
        for ek, ev in zip(e.ks, e.vs):
            if branch_rows is not None and ek.shape[0] != 1:
                ek, ev = _select_branches(ek, branch_rows), _select_branches(ev, branch_rows)
            ks.append(ek.expand(nb, f, *ek.shape[2:]))
            vs.append(ev.expand(nb, f, *ev.shape[2:]))
    k_ext = torch.cat(ks, dim=2)
    v_ext = torch.cat(vs, dim=2)
    return from_frames(k_ext), from_frames(v_ext)


def _select_branches(x4: torch.Tensor, branch_rows: Sequence[int]) -> torch.Tensor:
    rows = list(branch_rows)
    if rows == list(range(rows[0], rows[0] + len(rows))):
        return x4[rows[0]:rows[0] + len(rows)]
    return x4[rows]


def _select_rows(x: torch.Tensor, layout: BatchLayout, branch_rows: Sequence[int]) -> torch.Tensor:
    if len(branch_rows) == layout.n_branches:
        return x
    return from_frames(_select_branches(to_frames(x, layout), branch_rows))


def chained_attention(attn: AttnFn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      extensions: Sequence[KVExtension], layout: BatchLayout) -> torch.Tensor:
    """Self-attention with several K/V extensions at once, each blended by its own weight.

    Extension ``e_i`` with branch weight ``w_i`` is taken with weight ``w_i`` independently of the
    others: over the subsets ``S`` of the extensions (in the order they were applied),

        R = sum_S  prod_{i in S} w_i  prod_{i not in S} (1 - w_i)  *  attn(q, [K; K_S], [V; V_S])

    the multilinear blend of the concatenated attentions. So one extension at weight 1 is exactly
    the concatenated attention (reference-only / cross-frame attention), weight 0 drops it (all
    weights 0 is the same call as plain ``attn(q, k, v)``, bit-identical), several at weight 1 are
    one joint attention over all extra tokens, and ``w`` in between is ``(1 - w) O_plain + w O_ext``
    for a single extension.

    Cost: one attention call per subset ``S`` with a non-zero coefficient for some branch, over
    only the branches that need it (all branches in one call when they all do), with the extended
    K/V built once for that call; subsets whose coefficient is zero everywhere are never computed.
    The per-branch blend is done in place on views (a loop over at most the CFG branches, never
    over frames).
    """
    if not extensions:
        return attn(q, k, v)
    nb, f = layout.n_branches, layout.frames
    terms: dict[tuple, list[float]] = {}
    for b in range(nb):
        for subset, coef in subset_weights([e.weights[b] for e in extensions]):
            terms.setdefault(subset, [0.0] * nb)[b] = coef
    # the term that covers the most branches first: its output becomes the result buffer
    order = sorted(terms.items(), key=lambda t: -sum(c != 0.0 for c in t[1]))
    result = result4 = None
    filled = [False] * nb
    for subset, coefs in order:
        rows = [b for b in range(nb) if coefs[b] != 0.0]
        every = len(rows) == nb
        qs, ks, vs = (q, k, v) if every else (_select_rows(t, layout, rows) for t in (q, k, v))
        if subset:
            o = attn(qs, *extend_kv(ks, vs, [extensions[i] for i in subset], layout, None if every else rows))
        else:
            o = attn(qs, ks, vs)
        o4 = o.view(len(rows), f, *o.shape[1:])
        if result is None:
            if every:
                result, result4 = o, o4
                for j, b in enumerate(rows):
                    if coefs[b] != 1.0:
                        o4[j].mul_(coefs[b])
                    filled[b] = True
                continue
            result = o.new_empty((nb * f, *o.shape[1:]))
            result4 = result.view(nb, f, *o.shape[1:])
        accumulate_rows(result4, o4, rows, coefs, filled)
    return result


def accumulate_rows(out: torch.Tensor, part: torch.Tensor, rows: Sequence[int], coefs: Sequence[float],
                    filled: list) -> None:
    """``out[b] += coefs[b] * part[j]`` for the ``j``-th batch row ``b`` of ``rows``; the first write to a row
    sets it (``filled[b]``), so ``out`` may start uninitialised. One term of :func:`chained_attention`'s sum."""
    for j, b in enumerate(rows):
        if filled[b]:
            out[b].add_(part[j], alpha=coefs[b])
        else:
            torch.mul(part[j], coefs[b], out=out[b])
            filled[b] = True


def subset_weights(weights: Sequence[float]) -> list[tuple[tuple[int, ...], float]]:
    """The non-zero terms ``(S, coefficient)`` of :func:`chained_attention`'s sum, ``S`` in order."""
    terms = [((), 1.0)]
    for i, w in enumerate(weights):
        w = float(w)
        nxt = []
        for s, c in terms:
            if w != 1.0:
                nxt.append((s, c * (1.0 - w)))
            if w != 0.0:
                nxt.append((s + (i,), c * w))
        terms = nxt
    return [(s, c) for s, c in terms if c != 0.0]


def branch_weights(layout: BatchLayout, strength: float, uncond_fidelity: float = 0.0) -> tuple:
    """Per-branch blend weights: ``strength`` for cond branches, ``strength * (1 - style_fidelity)``
    for uncond branches (reference-only's style fidelity: the uncond branch keeps
    ``style_fidelity`` of its plain attention)."""
    s = float(strength)
    return tuple(s * (1.0 - float(uncond_fidelity)) if c == 1 else s for c in layout.branches)


# --------------------------------------------------------------------------------------------
# AdaIN
# --------------------------------------------------------------------------------------------
def channel_stats(h: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std over the spatial axes of ``[B, C, *spatial]``."""
    dims = tuple(range(2, h.ndim))
    var, mean = torch.var_mean(h, dim=dims, keepdim=True, correction=0)
    return mean, (var + eps).sqrt()


def adain(h: torch.Tensor, ref_mean: torch.Tensor, ref_std: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie, ICCV 2017, Eq. 8):
    ``AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y)``, per sample and channel over space,
    with the reference's statistics ``ref_mean``/``ref_std`` (``[1, C, 1, 1]``) as ``y``."""
    mean, std = channel_stats(h, eps)
    return (h - mean) / std * ref_std + ref_mean


def blend_rows(h: torch.Tensor, target: torch.Tensor, layout: BatchLayout, weights: Sequence[float]) -> torch.Tensor:
    """``h + w_b (target - h)`` with one weight per branch ``b`` (frames of a branch share it).

    Python-float weights (no host-to-device weight tensor per call); a loop over the CFG branches only.
    """
    ws = [float(x) for x in weights]
    if all(w == ws[0] for w in ws):
        w = ws[0]
        return target if w == 1.0 else h if w == 0.0 else torch.lerp(h, target, w)
    out = torch.empty_like(h)
    h4, t4, o4 = to_frames(h, layout), to_frames(target, layout), to_frames(out, layout)
    for b, w in enumerate(ws):
        torch.lerp(h4[b], t4[b], w, out=o4[b])
    return out
