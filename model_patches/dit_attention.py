"""Extended self-attention for DiT video models: pure tensor math, no ComfyUI import.

A DiT (Wan, HunyuanVideo) runs one self-attention over all tokens of a clip: the tokens of latent frame
``t`` are the ``t``-th run of ``tokens_per_frame`` tokens (patches flattened ``(t, h, w)`` row-major, as
``patch_embedding(x).flatten(2)`` leaves them). Queries and keys carry 3-axis RoPE (time, height, width).

Two extensions append extra tokens to the keys/values of that self-attention:

- the reference image's tokens (``ReferenceImageCondition``), recorded by one write pass per step;
- the tokens of an anchor frame computed by an earlier context window at this step (cross-window anchor
  attention, ``CrossStreamAttention`` under core context windows).

Both need a time position of their own: RoPE is a rotation, so a key recorded at time position ``p``
moves to ``p + d`` by rotating it once more by the time-axis angle of ``d`` (the height/width angles of a
``(d, 0, 0)`` position are zero: identity). :func:`extension_positions` decides where the extra frames
sit; the hooks build the rotation from the model's own RoPE embedder.

Layouts: ``"bld"`` = ``[B, L, heads * head_dim]`` (Wan's ``optimized_attention`` call), ``"bhld"`` =
``[B, heads, L, head_dim]`` (Flux-style ``skip_reshape=True``, HunyuanVideo). The token axis is 1 or 2.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch

from .attention import accumulate_rows, subset_weights

TOKEN_DIM = {"bld": 1, "bhld": 2}


class DitExtension(NamedTuple):
    """Extra keys/values in the call's layout, batch 1 (shared) or one row per batch row, and one blend
    weight per batch row (:func:`extended_attention`)."""

    k: torch.Tensor
    v: torch.Tensor
    weights: tuple


def frame_tokens(x: torch.Tensor, layout: str, frames: Sequence[int], tokens_per_frame: int) -> torch.Tensor:
    """The tokens of local latent frames ``frames`` (ascending, each a run of ``tokens_per_frame``), in order."""
    d = TOKEN_DIM[layout]
    frames = [int(f) for f in frames]
    if frames == list(range(frames[0], frames[0] + len(frames))):
        return x.narrow(d, frames[0] * tokens_per_frame, len(frames) * tokens_per_frame)
    idx = torch.cat([torch.arange(f * tokens_per_frame, (f + 1) * tokens_per_frame) for f in frames]).to(x.device)
    return x.index_select(d, idx)


def extension_positions(absolute: Sequence[int], window_start: int) -> list[int]:
    """RoPE time positions, relative to a window whose first frame is ``window_start`` (local position 0),
    of the earlier absolute frames ``absolute`` (ascending, all ``< window_start``).

    Frame ``i`` of ``n`` gets ``max(a_i - window_start, i - n)``: its true offset when that is nearer than
    its slot in a block packed directly in front of the window (``-n .. -1``, in order), else that slot.
    So the frame just before the window keeps ``-1`` and a far anchor (frame 0 seen from a window at 60)
    sits right in front: a DiT never saw offsets longer than its training clips, and RoPE attenuates far
    keys, so at its true distance the anchor would be all but ignored."""
    n = len(absolute)
    return [max(int(a) - int(window_start), -n + i) for i, a in enumerate(absolute)]


def rotate_time(x: torch.Tensor, layout: str, freqs: torch.Tensor, rope_fn: Callable) -> torch.Tensor:
    """``x`` (keys in ``layout``) rotated by ``freqs``, the RoPE of one ``(d, 0, 0)`` position broadcast over
    tokens and heads; ``rope_fn(x4, freqs)`` is the model's own RoPE application on ``[.., L, H, D]`` /
    ``[B, H, L, D]``."""
    if layout == "bhld":
        return rope_fn(x, freqs)
    b, n, hd = x.shape
    heads = _heads_of(freqs, hd)
    return rope_fn(x.view(b, n, heads, hd // heads), freqs).view(b, n, hd)


def _heads_of(freqs: torch.Tensor, hd: int) -> int:
    head_dim = 2 * freqs.shape[-3]
    return hd // head_dim


def extended_attention(attn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       extensions: Sequence[DitExtension], layout: str) -> torch.Tensor:
    """Self-attention over ``[K; K_e1; K_e2 ...]`` blended per extension and batch row by its weight.

    As :func:`model_patches.attention.chained_attention`, over the subsets ``S`` of the extensions:
    ``R_b = sum_S prod_{i in S} w_ib prod_{i not in S} (1 - w_ib) attn(q_b, [K_b; K_S], [V_b; V_S])``.
    One extension at weight 1 is exactly the concatenated attention; all weights 0 is the plain call
    (bit-identical). One attention call per subset with a non-zero coefficient, over only the batch rows
    that need it; the per-row blend loops over batch rows (CFG branches), never tokens or frames.
    ``attn(q, k, v)`` must return ``[rows, ...]`` with the batch first."""
    if not extensions:
        return attn(q, k, v)
    d = TOKEN_DIM[layout]
    nb = q.shape[0]
    terms: dict[tuple, list[float]] = {}
    for b in range(nb):
        for subset, coef in subset_weights([e.weights[b] for e in extensions]):
            terms.setdefault(subset, [0.0] * nb)[b] = coef
    order = sorted(terms.items(), key=lambda t: -sum(c != 0.0 for c in t[1]))
    result, filled = None, [False] * nb
    for subset, coefs in order:
        rows = [b for b in range(nb) if coefs[b] != 0.0]
        every = len(rows) == nb
        qs, ks, vs = (q, k, v) if every else (_rows(t, rows) for t in (q, k, v))
        if subset:
            ek = [_expand(extensions[i].k, rows, every, nb) for i in subset]
            ev = [_expand(extensions[i].v, rows, every, nb) for i in subset]
            ks, vs = torch.cat([ks, *ek], dim=d), torch.cat([vs, *ev], dim=d)
        o = attn(qs, ks, vs)
        if result is None:
            if every and all(c == 1.0 for c in coefs):
                result, filled = o, [True] * nb
                continue
            result = o.new_zeros((nb, *o.shape[1:]))
        accumulate_rows(result, o, rows, coefs, filled)
    return result


def _rows(x: torch.Tensor, rows: list[int]) -> torch.Tensor:
    if rows == list(range(rows[0], rows[0] + len(rows))):
        return x[rows[0]:rows[0] + len(rows)]
    return x[rows]


def _expand(e: torch.Tensor, rows: list[int], every: bool, nb: int) -> torch.Tensor:
    if e.shape[0] == 1:
        return e.expand(len(rows), *e.shape[1:])
    if e.shape[0] != nb:
        raise ValueError(f"extension batch {e.shape[0]} matches neither 1 nor the call's batch {nb}")
    return e if every else _rows(e, rows)


def pad_mask(mask, extra: int):
    """An attention mask over ``L`` keys widened to ``L + extra`` keys that are all visible."""
    if mask is None or extra <= 0:
        return mask
    if mask.dtype == torch.bool:
        return torch.nn.functional.pad(mask, (0, extra), value=True)
    return torch.nn.functional.pad(mask, (0, extra), value=0.0)
