"""The one attn1 replace per self-attention block: our K/V extenders in order, then one attention call.

``set_model_attn1_replace`` on every selected block: one :class:`AttentionChain` per block runs the K/V
extenders of all our patches on that model in the order they were applied (reference, cross-stream, ...) and
then one attention call through ComfyUI's ``optimized_attention`` (or the replace patch that was there before
ours, which then receives the extended K/V). Applying a second patch replaces the chain by a longer copy;
nothing is mutated.
"""
from __future__ import annotations

from functools import partial

import comfy.ldm.modules.attention as comfy_attention

from ..attention import chained_attention
from .state import current_sigma, layout_of


class AttentionChain:
    """attn1 replace patch for one block: our K/V extenders in order, then one attention call.

    Immutable; ``with_extender`` returns a longer copy. ``fallback`` is a replace patch that was on
    the block before ours (from another pack); it then does the attention, on the extended K/V.
    """

    def __init__(self, key: tuple, extenders: tuple = (), fallback=None):
        self.key, self.extenders, self.fallback = key, tuple(extenders), fallback

    def with_extender(self, ext) -> "AttentionChain":
        return AttentionChain(self.key, self.extenders + (ext,), self.fallback)

    def __repr__(self):
        return f"AttentionChain({self.key}, {list(self.extenders)!r}, fallback={self.fallback!r})"

    def attention(self, q, k, v, extra_options):
        if self.fallback is not None:
            return self.fallback(q, k, v, extra_options)
        return comfy_attention.optimized_attention(q, k, v, extra_options["n_heads"],
                                                   attn_precision=extra_options.get("attn_precision"),
                                                   transformer_options=extra_options)

    def __call__(self, q, k, v, extra_options):
        layout = layout_of(extra_options, q.shape[0])
        sigma = current_sigma(extra_options)
        exts = []
        for e in self.extenders:
            x = e.extension(self.key, k, v, extra_options, layout, sigma)
            if x is not None:
                exts.append(x)
        return chained_attention(partial(self.attention, extra_options=extra_options), q, k, v, exts, layout)


def install_extender(m, keys: list[tuple], extender) -> None:
    """Add ``extender`` to the chain of every block in ``keys`` on the clone ``m``."""
    replace = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn1", {})
    for key in keys:
        current = replace.get(key, replace.get(key[:2]))
        if isinstance(current, AttentionChain):
            chain = current.with_extender(extender)
        else:
            chain = AttentionChain(key, (extender,), fallback=current)
        m.set_model_attn1_replace(chain, key[0], key[1], key[2])
