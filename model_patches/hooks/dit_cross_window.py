"""CrossStreamAttention on DiT video models, as cross-window anchor attention: under core context windows every
window's self-attention also attends to the tokens of an anchor frame (``anchor``) or of the first frame and the
frame before the window (``sparse_causal``), cached from the earlier window's own pass at each step."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import torch

from ..dit_attention import DitExtension, extension_positions, frame_tokens
from ..errors import ParameterError, Reporter
from ..video import percent_sigmas
from .comfy_compat import window_frames
from .dit import (BlockCall, DIT_RUN_KEY, DIT_WRITING_KEY, WRAPPER_KEY, TimeShift, call_in_range, call_of,
                  ensure_scopes, ensure_untouched_parts, install_extender, require_dit, select_block_thirds)
from .core_windows import ensure_windows_guard
from .state import sigma_bounds


@dataclass(frozen=True)
class CrossWindowSettings:
    uid: str
    mode: str            # "anchor" (one anchor frame) | "sparse_causal" (first frame + the frame before the window)
    anchor: str
    anchor_index: int
    strength: float
    start_percent: float
    end_percent: float
    sigma_start: float
    sigma_end: float
    reporter: Reporter = Reporter()   # where errors found while sampling go

    def bounds(self, model_sampling):
        return sigma_bounds(model_sampling, self.start_percent, self.end_percent, (self.sigma_start, self.sigma_end))


def window_of(options: dict):
    """This call's core context window over latent time (``dim == 2``), or None."""
    win = options.get("context_window")
    if win is not None and getattr(win, "dim", None) == 2:
        return window_frames(win)   # with the causal anchor frame in front where core prepends one
    return None


class CrossWindowExtender:
    """Under core context windows, every window's self-attention also attends to the tokens of anchor
    frames computed by earlier windows at this step (cached once per step, no extra forward):

    - ``anchor``: the anchor latent frame (``first`` = 0, ``center``, ``last``, ``index``), i.e. the
      anchor window's frame, for every window that does not hold it;
    - ``sparse_causal``: latent frame 0 (the first window's) and the frame directly before the window
      (the previous window's), after Tune-A-Video's first + previous frame.

    The extra frames get RoPE time positions in front of the window (their true offset when near, else
    packed at ``-n .. -1``: :func:`model_patches.dit_attention.extension_positions`). Outside context
    windows it does nothing: a DiT already attends across all frames it sees."""

    def __init__(self, settings: CrossWindowSettings):
        self.s = settings
        self.shift = TimeShift()

    def __repr__(self):
        return f"CrossWindowExtender({self.s!r})"

    def _anchor_frame(self, total: int | None, window: list[int]) -> int:
        from ..video import anchor_index

        if self.s.anchor == "index":
            a = int(self.s.anchor_index)
        else:
            a = anchor_index(int(total), self.s.anchor) if total else window[0]
        if total is not None and not 0 <= a < total:
            raise self.s.reporter.error(ParameterError(
                "anchor_index", f"latent frame {a} is outside the {total} latent frames being sampled (0..{total - 1})"))
        return a

    def extension(self, ctx: BlockCall, k, v, layout):
        to = ctx.options
        if to.get(DIT_WRITING_KEY) is not None:
            return None
        window = window_of(to)
        run = to.get(DIT_RUN_KEY)
        call = call_of(ctx)
        if window is None or run is None or call is None:
            return None
        if not call_in_range(call, self.s.bounds(call.model_sampling)):
            return None
        tw = len(window)
        if ctx.n_img % tw:
            return None
        tpf = ctx.n_img // tw
        run.keep_anchors_of(call.sigma)
        ck = (self.s.uid, ctx.chain.key, tuple(to.get("cond_or_uncond") or ()), k.shape[0])
        cache = run.anchors.setdefault(ck, {})
        if self.s.mode == "anchor":
            wanted = [self._anchor_frame(run.total_frames, window)]
        else:
            wanted = [0, window[0] - 1]
        want = sorted({a for a in wanted if a >= 0 and a not in window and a < window[0]})
        have = [a for a in want if a in cache]
        ext = self._extension(ctx, k, layout, window, cache, have) if have else None
        # then keep this window's frames that later windows may ask for
        if self.s.mode == "anchor":
            keep = [a for a in wanted if a in window]
        else:
            keep = ([0] if 0 in window else []) + [a for a in window if a != 0]
            for a in [a for a in cache if a != 0]:
                del cache[a]                         # sparse-causal: frame 0 and the last window's frames only
        for a in keep:
            p = window.index(a)
            cache[a] = (frame_tokens(ctx.image_tokens(k, layout), layout, [p], tpf).clone(),
                        frame_tokens(ctx.image_tokens(v, layout), layout, [p], tpf).clone(), p)
        return ext

    def _extension(self, ctx, k, layout, window, cache, have):
        pos = extension_positions(have, window[0])
        ks, vs = [], []
        for a, p_new in zip(have, pos):
            ka, va, p_old = cache[a]
            ks.append(self.shift.rotate(ctx, ka, layout, p_old, p_new).to(k.dtype))
            vs.append(va)
        d = 1 if layout == "bld" else 2
        ek = ks[0] if len(ks) == 1 else torch.cat(ks, dim=d)
        ev = vs[0] if len(vs) == 1 else torch.cat(vs, dim=d)
        return DitExtension(ek, ev, (self.s.strength,) * k.shape[0])


def apply_cross_window(model, mode: str, anchor: str, anchor_index: int, strength: float, first_blocks: bool,
                       middle_blocks: bool, last_blocks: bool, start_percent: float, end_percent: float,
                       reporter: Reporter = Reporter()):
    """Clone ``model`` with cross-window anchor attention on the selected blocks."""
    adapter = require_dit(model, "cross_window")
    if mode not in ("anchor", "sparse_causal"):
        raise ParameterError("mode", f"{mode!r} is a U-Net mode; on DiT video models (which already attend "
                                     "across all frames of a window) use anchor or sparse_causal, which "
                                     "attend across context windows")
    keys = select_block_thirds(adapter, first_blocks, middle_blocks, last_blocks)
    if not keys:
        raise ParameterError("input_blocks", "no transformer block selected")
    ms = model.get_model_object("model_sampling")
    s = CrossWindowSettings(uuid.uuid4().hex, mode, anchor, int(anchor_index), float(strength), float(start_percent),
                            float(end_percent), *percent_sigmas(ms, start_percent, end_percent), reporter)
    m = model.clone()
    ensure_windows_guard(m, adapter, f"{WRAPPER_KEY}.windows.{s.uid}", reporter)
    ensure_scopes(m, adapter)
    install_extender(m, adapter, keys, CrossWindowExtender(s))
    # acts in context windows only (outside them a DiT already attends across all frames)
    ensure_untouched_parts(m, adapter, f"{WRAPPER_KEY}.untouched.{s.uid}", lambda to: window_of(to) is not None)
    return m
