"""Cross-stream (cross-frame) attention hooks: cross-frame K/V extenders in the selected blocks' attention chains."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..attention import (KVExtension, frame_tokens, local_position, nearest_position, previous_positions, temporal_mean,
                         to_frames)
from ..errors import ParameterError, Reporter
from ..video import resolve_anchor
from .blocks import model_blocks, select_blocks
from .chain import install_extender
from .state import RUN_KEY, SAMPLING_KEY, WRITING_KEY, SigmaRange, ensure_run_scope, frame_index_of, total_frames_of


@dataclass(frozen=True)
class CrossStreamSettings:
    """Cross-frame attention: which frames each frame also attends to, in which blocks, when."""

    mode: str = "anchor"          # attention.CROSS_MODES
    anchor: str = "first"         # video.ANCHOR_MODES (anchor mode)
    anchor_index: int = 0         # anchor = index: the absolute frame
    strength: float = 1.0
    input_blocks: bool = True
    middle_block: bool = True
    output_blocks: bool = True
    min_level: int = 0
    start_percent: float = 0.0
    end_percent: float = 1.0
    reporter: Reporter = Reporter()  # where errors found while sampling go


class CrossStreamExtender:
    """Cross-frame K/V: anchor frame (Text2Video-Zero), first + previous frame (sparse-causal), or
    the temporal-mean content stream (mutual)."""

    def __init__(self, settings: CrossStreamSettings, uid: str, sigmas: SigmaRange):
        self.s, self.uid, self.sigmas = settings, uid, sigmas

    def __repr__(self):
        return f"CrossStreamExtender({self.s!r}, {self.uid!r}, {self.sigmas!r})"

    def _frame(self, key, k4, v4, absolute, options, layout, sigma, param):
        """K/V of absolute frame ``absolute`` as ``[B, 1, N, D]``: from this window, else from the
        run's cache of an earlier window at this sigma, else the nearest frame of this window."""
        total = total_frames_of(options, layout)
        if total is not None and not (0 <= absolute < total):
            raise ParameterError(param, f"frame {absolute} is outside the {total} frames being sampled (0..{total - 1})")
        windowed = frame_index_of(options) is not None
        run = options.get(RUN_KEY)
        ck = (self.uid, key, sigma, layout.branches, absolute)
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
        if not self.sigmas.contains(sigma, options.get(SAMPLING_KEY)):
            return None
        try:
            return self._extension(key, k, v, options, layout, sigma)
        except ParameterError as e:
            raise self.s.reporter.error(e) from None

    def _extension(self, key, k, v, options, layout, sigma):
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
            raise ParameterError("mode", f"unknown mode {self.s.mode!r}")
        return KVExtension(ks, vs, (self.s.strength,) * layout.n_branches)


def patch(model, settings: CrossStreamSettings):
    """Clone ``model`` with cross-frame attention on the selected blocks (strength 0: a plain clone)."""
    if settings.strength == 0:
        return model.clone()
    _, blocks = model_blocks(model)
    keys = select_blocks(blocks, settings.input_blocks, settings.middle_block, settings.output_blocks, settings.min_level)
    if not keys:
        raise ParameterError("min_level", "no self-attention block matches this block selection "
                                          "(sections and min_level); select at least one block")
    m = model.clone()
    ensure_run_scope(m)
    install_extender(m, keys, CrossStreamExtender(settings, uuid.uuid4().hex,
                                                  SigmaRange.of(model, settings.start_percent, settings.end_percent)))
    return m
