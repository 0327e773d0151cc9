"""Cross-stream (cross-frame) attention hooks: cross-frame K/V extenders in the selected blocks' attention chains.

Under context windows (AnimateDiff-Evolved's ``sub_idxs``, core's index lists) a window may not hold the anchor
frame, and the windows of a step run in any order. So the anchor's K/V are computed once per step for the anchor
frame itself: a ``PREDICT_NOISE`` wrapper keeps the step's whole-video input, and an ``APPLY_MODEL`` wrapper
(:class:`AnchorWriter`) runs the anchor frame alone through the model before the first window that needs it
(one extra one-frame forward per step and CFG branch set); every window then reads those K/V.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import torch

from comfy.patcher_extension import WrappersMP

from ..attention import (KVExtension, frame_tokens, local_position, nearest_position, previous_positions, temporal_mean,
                         to_frames)
from ..errors import ParameterError, Reporter
from ..video import resolve_anchor
from .blocks import model_blocks, select_blocks
from .chain import install_extender
from .reference import skip_temporal_layers, write_rows
from .state import (RUN_KEY, SAMPLING_KEY, WRAPPER_KEY, WRITING_KEY, SigmaRange, current_sigma, ensure_run_scope,
                    frame_index_of, layout_of, total_frames_of)

ANCHOR_WRITING_KEY = "coherent_video_anchor_writing"  # (uid, sigma, branches, frame) while an anchor pass runs
STEP_INPUT_KEY = f"{WRAPPER_KEY}.step_input"


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
        """K/V of absolute frame ``absolute`` as ``[B, 1, N, D]``. Outside windows: this call's own frame. In a
        window: the step's anchor pass (:class:`AnchorWriter`), else this window's frame, else the run's cache of
        an earlier window at this sigma, else the nearest frame of this window."""
        total = total_frames_of(options, layout)
        if total is not None and not (0 <= absolute < total):
            raise ParameterError(param, f"frame {absolute} is outside the {total} frames being sampled (0..{total - 1})")
        windowed = frame_index_of(options) is not None
        run = options.get(RUN_KEY)
        ck = (self.uid, key, sigma, layout.branches, absolute)
        if windowed and run is not None:
            run.keep_anchors_of(sigma)
            cached = run.anchors.get(ck)
            if cached is not None and cached[0].shape[2:] == k4.shape[2:]:
                return cached
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
        writing = options.get(ANCHOR_WRITING_KEY)
        if writing is not None:  # an anchor pass: record this patch's anchor K/V (first row of each branch)
            if writing[0] != self.uid or options.get(RUN_KEY) is None:
                return None
            uid, sigma_w, branches, frame = writing
            k4, v4 = to_frames(k, layout), to_frames(v, layout)
            ek, ev = frame_tokens(k4, 0).clone(), frame_tokens(v4, 0).clone()
            options[RUN_KEY].anchors[(uid, key, sigma_w, branches, frame)] = (ek, ev)
            # the anchor frame attends as it does in a whole-video batch: to itself as the anchor (and, sparse-causal,
            # as its own previous frame), so its later blocks' K/V are those it has there (motion modules aside)
            n = 2 if self.s.mode == "sparse_causal" else 1
            return KVExtension((ek,) * n, (ev,) * n, (self.s.strength,) * layout.n_branches)
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


def remember_step_input(executor, x, timestep, model_options={}, seed=None):
    """PREDICT_NOISE wrapper: keep this step's whole-video input in the run state (a reference, no copy), before
    any context window splits it."""
    run = (model_options.get("transformer_options") or {}).get(RUN_KEY)
    if run is not None:
        run.step_input = x
    return executor(x, timestep, model_options, seed)


class AnchorWriter:
    """APPLY_MODEL wrapper: in a context window, first make sure this step's anchor K/V exist for this branch set.

    Anchor pass: the anchor frame's input this step (:func:`remember_step_input`) goes through the model alone, one
    row per CFG branch with that branch's conditioning (clip length per branch when a wrapper normalises over whole
    clips, as for the reference write pass), layers of other packs routed through ``forward_timestep_embed_patch``
    (motion modules) passed through. The extender records each selected block's K/V; the windows of the step read
    them from the run state. Outside windows nothing happens (the frames' own K/V are used)."""

    def __init__(self, extender: CrossStreamExtender):
        self.s, self.uid, self.sigmas = extender.s, extender.uid, extender.sigmas

    def __repr__(self):
        return f"AnchorWriter({self.uid!r})"

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        to = transformer_options
        run = to.get(RUN_KEY)
        if (run is not None and run.step_input is not None and frame_index_of(to) is not None
                and to.get(WRITING_KEY) is None and to.get(ANCHOR_WRITING_KEY) is None):
            sigma = current_sigma(to)
            if self.sigmas.contains(sigma, to.get(SAMPLING_KEY)):
                self._ensure(executor, x, t, c_concat, c_crossattn, to, kwargs, run, sigma)
        return executor(x, t, c_concat, c_crossattn, control, to, **kwargs)

    def _ensure(self, executor, x, t, c_concat, c_crossattn, to, kwargs, run, sigma):
        layout = layout_of(to, x.shape[0])
        total = total_frames_of(to, layout)
        full = run.step_input
        if self.s.mode == "anchor":
            try:
                frame = resolve_anchor(self.s.anchor, self.s.anchor_index, total, layout.frame_index)
            except ValueError:
                return  # the extender reports it, naming the input
        else:
            frame = 0
        if not (torch.is_tensor(full) and full.shape[0] == total and 0 <= frame < total):
            return  # out-of-range anchors are reported by the extender; an unknown layout keeps the window rule
        run.keep_anchors_of(sigma)
        done = (self.uid, "pass", sigma, layout.branches, frame)
        if done in run.anchors:
            return
        rows = write_rows(to, layout.frames)
        pick = [j * layout.frames for j in range(layout.n_branches) for _ in range(rows)]

        def sel(v):
            return v[pick] if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == x.shape[0] else v

        xa = full[frame:frame + 1].to(device=x.device, dtype=x.dtype).expand(len(pick), *x.shape[1:])
        wt = {k: v for k, v in to.items() if k not in ("ad_params", "context_window")}
        wt["patches"] = skip_temporal_layers(wt.get("patches") or {})
        wt["cond_or_uncond"] = list(layout.branches)
        if "sigmas" in wt:
            wt["sigmas"] = sel(wt["sigmas"])
        wt[ANCHOR_WRITING_KEY] = (self.uid, sigma, layout.branches, frame)
        executor(xa, sel(t), sel(c_concat), sel(c_crossattn), None, wt, **{k: sel(v) for k, v in kwargs.items()})
        run.anchors[done] = True


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
    ext = CrossStreamExtender(settings, uuid.uuid4().hex, SigmaRange.of(model, settings.start_percent, settings.end_percent))
    install_extender(m, keys, ext)
    if settings.mode in ("anchor", "sparse_causal"):
        if not m.get_wrappers(WrappersMP.PREDICT_NOISE, STEP_INPUT_KEY):
            m.add_wrapper_with_key(WrappersMP.PREDICT_NOISE, STEP_INPUT_KEY, remember_step_input)
        m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, f"{WRAPPER_KEY}.cross_stream.{ext.uid}", AnchorWriter(ext))
    return m
