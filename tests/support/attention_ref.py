"""Independent attention references for the attention tests: an explicit-softmax attention per frame and seeded
q/k/v, so the pack's K/V math is checked against a computation written separately from it."""
from __future__ import annotations

import math

import torch

HEADS, N, D = 2, 6, 16  # heads, tokens per frame, channels
BRANCHES = [(0,), (1,), (0, 1), (1, 0), (1, 0, 0), (0, 1, 0)]  # CFG branch layouts (cond_or_uncond) the tests cover


def direct(q, k, v, heads=HEADS):
    """softmax(q k^T / sqrt(d)) v per head, for one frame: q [N, D], k/v [M, D]."""
    d = q.shape[-1] // heads
    qh, kh, vh = (t.reshape(t.shape[0], heads, d).transpose(0, 1).double() for t in (q, k, v))
    w = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
    return (w @ vh).transpose(0, 1).reshape(q.shape[0], heads * d).float()


def qkv(branches, frames, seed=0):
    """Seeded q, k, v of ``len(branches) * frames`` rows of N tokens x D channels."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(len(branches) * frames, N, D, generator=g) for _ in range(3)]
