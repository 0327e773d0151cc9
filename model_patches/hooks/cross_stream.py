"""CrossStreamAttention hooks: cross-frame K/V extenders in the selected blocks' attention chains."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..attention import (KVExtension, frame_tokens, local_position, nearest_position, previous_positions, resolve_anchor,
                         temporal_mean, to_frames)
from ..errors import NodeInputError
from .blocks import select_blocks, unet_blocks
from .chain import install_extender
from .state import (RUN_KEY, SAMPLING_KEY, WRITING_KEY, ensure_run_scope, frame_index_of, in_range, sigma_bounds,
                    sigma_range, total_frames_of)


@dataclass(frozen=True)
class CrossStreamSettings:
    uid: str
    mode: str
    anchor: str
    anchor_index: int
    strength: float
    sigma_start: float
    sigma_end: float
    node: str = "CrossStreamAttention"
    start_percent: float | None = None  # resolved against the sampling model_sampling (sigma_* = node-time)
    end_percent: float | None = None

    def bounds(self, model_sampling) -> tuple[float, float]:
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))


class CrossStreamExtender:
    """Cross-frame K/V: anchor frame (Text2Video-Zero), first + previous frame (sparse-causal), or
    the temporal-mean content stream (mutual)."""

    def __init__(self, settings: CrossStreamSettings):
        self.s = settings

    def __repr__(self):
        return f"CrossStreamExtender({self.s!r})"

    def _frame(self, key, k4, v4, absolute, options, layout, sigma, input_name):
        """K/V of absolute frame ``absolute`` as ``[B, 1, N, D]``: from this window, else from the
        run's cache of an earlier window at this sigma, else the nearest frame of this window."""
        total = total_frames_of(options, layout)
        if total is not None and not (0 <= absolute < total):
            raise NodeInputError(self.s.node, input_name,
                                 f"frame {absolute} is outside the {total} frames being sampled (0..{total - 1})")
        windowed = frame_index_of(options) is not None
        run = options.get(RUN_KEY)
        ck = (self.s.uid, key, sigma, layout.branches, absolute)
        if windowed and run is not None:
            run.keep_anchors_of(sigma)
        pos = local_position(absolute, layout.frame_index)
        if pos is not None:
            ek, ev = frame_tokens(k4, pos), frame_tokens(v4, pos)
            if windowed and run is not None:
                run.anchors[ck] = (ek.clone(), ev.clone())
            return ek, ev
        cached = run.anchors.get(ck) if run is not None else None
        if cached is not None and cached[0].shape[2:] == k4.shape[2:]:
            return cached
        pos = nearest_position(absolute, layout.frame_index)
        return frame_tokens(k4, pos), frame_tokens(v4, pos)

    def extension(self, key, k, v, options, layout, sigma):
        if options.get(WRITING_KEY) is not None or self.s.strength == 0:
            return None
        if not in_range(sigma, *self.s.bounds(options.get(SAMPLING_KEY))):
            return None
        k4, v4 = to_frames(k, layout), to_frames(v, layout)
        if self.s.mode == "anchor":
            total = total_frames_of(options, layout)
            a = resolve_anchor(self.s.anchor, self.s.anchor_index, total, layout.frame_index)
            ek, ev = self._frame(key, k4, v4, a, options, layout, sigma, "anchor_index")
            ks, vs = (ek,), (ev,)
        elif self.s.mode == "sparse_causal":
            fk, fv = self._frame(key, k4, v4, 0, options, layout, sigma, "mode")
            prev = previous_positions(layout.frame_index)
            ks, vs = (fk, frame_tokens(k4, prev)), (fv, frame_tokens(v4, prev))
        elif self.s.mode == "mutual":
            ks, vs = (temporal_mean(k4),), (temporal_mean(v4),)
        else:
            raise NodeInputError(self.s.node, "mode", f"unknown mode {self.s.mode!r}")
        return KVExtension(ks, vs, (self.s.strength,) * layout.n_branches)


def apply_cross_stream(model, mode: str, anchor: str, anchor_index: int, strength: float, input_blocks: bool,
                       middle_block: bool, output_blocks: bool, min_level: int, start_percent: float,
                       end_percent: float, node: str = "CrossStreamAttention"):
    """Clone ``model`` with cross-frame attention on the selected blocks."""
    _, blocks = unet_blocks(model, node)
    keys = select_blocks(blocks, input_blocks, middle_block, output_blocks, min_level)
    if not keys:
        raise NodeInputError(node, "min_level", "no self-attention block matches this block selection "
                                                "(sections and min_level); select at least one block")
    sigma_start, sigma_end = sigma_range(model, start_percent, end_percent)
    settings = CrossStreamSettings(uid=uuid.uuid4().hex, mode=mode, anchor=anchor, anchor_index=int(anchor_index),
                                   strength=float(strength), sigma_start=sigma_start, sigma_end=sigma_end, node=node,
                                   start_percent=float(start_percent), end_percent=float(end_percent))
    m = model.clone()
    ensure_run_scope(m)
    install_extender(m, keys, CrossStreamExtender(settings))
    return m
