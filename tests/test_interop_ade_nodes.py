"""Interop: every sampling-side pack node beside the real AnimateDiff-Evolved (ADE): BaseResidualNoise (NOISE node and
model patch), MotionSmoothingPatch, IterativeReuseSampler and CrossStreamAttention, in both orders (our node before or
after ADE's Use Evolved Sampling), with ADE's context options (8/4 on 24 frames) and with ADE's FreeNoise; and the
nodes that take no MODEL (the Motion nodes, FlowTemporalUpsample) on a video ADE sampled.

ADE's context windows, FreeNoise and beta schedule work on any SD1.5-architecture model, so these cases use the tiny
random U-Net (no motion module: ADE's modules have full SD1.5 widths; tests/test_interop_ade.py runs them) and one or
two sampling steps, to keep CI time small. Assertions: the noise correlation the node promises, measured in the noise
the sampler receives (or FreeNoise's documented precedence with a warning); the cross-stream anchor taken from the
absolute anchor frame in every window; ADE's windows really ran; the input model unchanged. Skips, with the reason,
when ADE is absent.
"""
from __future__ import annotations

import logging

import pytest
import torch

from support import ade as ade_support
from support import fixtures

pytestmark = pytest.mark.skipif(not ade_support.available(), reason=ade_support.MISSING)

FRAMES, WINDOW, OVERLAP = 24, 8, 4
KEY = (FRAMES - 1) // 2  # BaseResidualNoise's default key frame (-1): the centre
THEORY_KEY, THEORY_OTHER = 0.5 ** 0.5, 0.5  # shared mode, base_ratio 0.5: sqrt(1 * 0.5), sqrt(0.5 * 0.5)


@pytest.fixture(scope="module")
def ade(comfy):
    return ade_support.load_ade()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny U-Net's forwards are too small to share: one torch thread (on a loaded 2-core machine two threads
    made a 16-row forward 7-35x slower). Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def evolved(ade, model, context: bool = False, freenoise: bool = False, uniform: bool = False):
    """ADE's Use Evolved Sampling on ``model``: context options 8/4 (static, or uniform: window order changes
    every step) and/or FreeNoise sample settings; no motion module."""
    ctx = ss = None
    if context:
        if uniform:
            (ctx,) = ade["ADE_StandardUniformContextOptions"]().create_options(WINDOW, 1, OVERLAP)
        else:
            (ctx,) = ade["ADE_StandardStaticContextOptions"]().create_options(WINDOW, OVERLAP)
    if freenoise:
        (ss,) = ade["ADE_AnimateDiffSamplingSettings"]().create_settings(0, "FreeNoise", "comfy", 0)
    (m,) = ade["ADE_UseEvolvedSampling"]().use_evolved_sampling(model, "autoselect", context_options=ctx,
                                                               sample_settings=ss)
    return m


def node_out(result):
    return result.args if hasattr(result, "args") else result.result


def base_residual_model(model):
    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel

    return node_out(BaseResidualNoiseModel.execute(model, "shared", 0.5, 1.0, -1, True, False))[0]


def initial_noise(model, noise_obj, size: int = 16) -> torch.Tensor:
    """The noise the sampler starts from (x / sigma_max), through SamplerCustomAdvanced's path: a recording
    SAMPLER (ComfyUI's KSAMPLER object) returns at once, so no model forward runs."""
    import comfy.samplers

    seen = {}

    def record(model_wrap, x, sigmas, extra_args=None, callback=None, disable=None):
        seen["x"] = (x / sigmas[0]).detach().clone()
        return x

    guider = comfy.samplers.CFGGuider(model)
    cond = fixtures.tiny_cond(seed=1)
    guider.set_conds(cond, cond)
    guider.set_cfg(1.0)
    sigmas = torch.tensor([10.0, 0.0])
    latent = torch.zeros(FRAMES, 4, size, size)
    guider.sample(noise_obj.generate_noise({"samples": latent}), latent, comfy.samplers.KSAMPLER(record), sigmas,
                  seed=noise_obj.seed)
    return seen["x"]


def correlations(x: torch.Tensor) -> tuple[float, float]:
    """Mean correlation of the key frame with the others, and among the other frames."""
    f = x.reshape(x.shape[0], -1).double()
    f = (f - f.mean(1, keepdim=True)) / f.std(1, keepdim=True)
    c = (f @ f.T) / (f.shape[1] - 1)
    others = [i for i in range(x.shape[0]) if i != KEY]
    key = c[KEY, others].mean().item()
    sub = c[others][:, others]
    other = ((sub.sum() - sub.diagonal().sum()) / (len(others) * (len(others) - 1))).item()
    return key, other


NOISE_CASES = [  # (who makes the noise, ADE context options, FreeNoise: ADE applies it with context options)
    ("node", False, False), ("node", True, False), ("node", True, True),
    ("patch-before", True, False), ("patch-before", True, True),
    ("patch-after", True, False), ("patch-after", True, True),
]


@pytest.mark.parametrize("who,context,freenoise", NOISE_CASES,
                         ids=[f"{w}-{'ctx' if c else 'noctx'}{'-freenoise' if f else ''}" for w, c, f in NOISE_CASES])
def test_base_residual_noise_under_ade(ade, pack, tiny_model, caplog, who, context, freenoise):
    """Correlation near the theory (key frame 0.707, other pairs 0.5) wherever our noise reaches the sampler.
    With FreeNoise (ADE re-creates the noise from the seed) the README's precedence holds: ours wins only with the
    model patch applied after ADE; the model patch warns in either order. The NOISE node never sees the model,
    so it cannot warn: FreeNoise silently wins over it (documented)."""
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise

    from coherent_video.model_patches.hooks.noise import FREENOISE_WARNING
    from coherent_video.nodes.base_residual_noise import BaseResidualNoise

    before = fixtures.model_fingerprint(tiny_model)
    if who == "node":
        model, noise = evolved(ade, tiny_model, context, freenoise), node_out(BaseResidualNoise.execute(5, "shared", 0.5, 1.0, -1))[0]
    elif who == "patch-before":
        model, noise = evolved(ade, base_residual_model(tiny_model), context, freenoise), Noise_RandomNoise(5)
    else:
        model, noise = base_residual_model(evolved(ade, tiny_model, context, freenoise)), Noise_RandomNoise(5)
    with caplog.at_level(logging.WARNING):
        x = initial_noise(model, noise)
    key, other = correlations(x)
    if not freenoise:
        assert key == pytest.approx(THEORY_KEY, abs=0.05) and other == pytest.approx(THEORY_OTHER, abs=0.05), (key, other)
    elif who == "patch-after":  # ours, made from FreeNoise's noise as the residual: eps_i = sqrt(.5) b + sqrt(.5) r_i
        # with r = FreeNoise's (8 noises x 3 copies: 22 of the 253 non-key pairs are copies) -> 0.5 + 0.5 * 22/253
        assert key == pytest.approx(THEORY_KEY, abs=0.05), (key, other)
        assert other == pytest.approx(THEORY_OTHER + 0.5 * 22 / 253, abs=0.05), (key, other)
    else:  # FreeNoise's noise: 8 independent frames, each repeated 3 times (shuffled): ~0.09, no shared base
        assert key < 0.3 and other < 0.3, (key, other)
    if freenoise and who != "node":
        assert FREENOISE_WARNING in caplog.text
    else:
        assert FREENOISE_WARNING not in caplog.text
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(tiny_model), before)


def ksample(model, latent_frames: int = FRAMES, seed: int = 3, steps: int = 1, size: int = 8):
    import nodes

    cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    return nodes.common_ksampler(model, seed, steps, 2.0, "euler", "normal", *cond,
                                 {"samples": torch.zeros(latent_frames, 4, size, size)})[0]["samples"]


ORDER_CASES = [(b, True, f) for b in (True, False) for f in (False, True)]
ORDER_IDS = [f"{'before' if b else 'after'}-ctx{'-freenoise' if f else ''}" for b, c, f in ORDER_CASES]


@pytest.mark.parametrize("before,context,freenoise", ORDER_CASES, ids=ORDER_IDS)
def test_motion_smoothing_patch_under_ade(ade, pack, tiny_model, before, context, freenoise):
    """MotionSmoothingPatch changes ADE's sampling (in its windows too), strength 0 is bit-identical to ADE alone,
    both orders sample the same (its percent range is resolved at sampling time, against ADE's schedule), and the
    input model is unchanged."""
    from coherent_video.nodes.motion import MotionSmoothingPatch

    before_fp = fixtures.model_fingerprint(tiny_model)

    def smooth(m, strength):
        return node_out(MotionSmoothingPatch.execute(m, strength, 1.0, 0.0, 0.6))[0]

    def build(strength):
        if before:
            return evolved(ade, smooth(tiny_model, strength), context, freenoise)
        return smooth(evolved(ade, tiny_model, context, freenoise), strength)

    alone = ksample(evolved(ade, tiny_model, context, freenoise), steps=2)
    out = ksample(build(0.8), steps=2)
    assert torch.isfinite(out).all() and not torch.equal(out, alone)
    assert torch.equal(ksample(build(0.0), steps=2), alone)
    other_order = ksample(smooth(evolved(ade, tiny_model, context, freenoise), 0.8) if before
                          else evolved(ade, smooth(tiny_model, 0.8), context, freenoise), steps=2)
    torch.testing.assert_close(other_order, out, atol=1e-5, rtol=1e-5)
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(tiny_model), before_fp)


@pytest.mark.parametrize("context,freenoise", [(True, False), (True, True)], ids=["ctx", "ctx-freenoise"])
def test_iterative_reuse_sampler_on_ade_model(ade, pack, tiny_model, context, freenoise):
    """IterativeReuseSampler samples ADE's model (with context options: each 8-frame clip in windows of 8/4; with
    FreeNoise): 12 frames as clips of 8 with overlap 4, finite, and neither the input model nor ADE's is changed."""
    from coherent_video.nodes.iterative_reuse import IterativeReuseSampler

    base_fp = fixtures.model_fingerprint(tiny_model)
    m = evolved(ade, tiny_model, context, freenoise)
    ade_fp = fixtures.model_fingerprint(m)
    pos, neg = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    out = node_out(IterativeReuseSampler.execute(m, pos, neg, {"samples": torch.zeros(8, 4, 8, 8)}, 12, 4, 4.0, 0.4,
                                                 True, "forward", 3, 1, 2.0, "euler", "normal", 1.0))[0]["samples"]
    assert out.shape[0] == 12 and torch.isfinite(out).all()
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(m), ade_fp)
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(tiny_model), base_fp)


class AnchorSpy:
    """Wraps our cross-stream K/V extender and records, for every context-window call, the extra K it returns."""

    def __init__(self, inner, log: list):
        self.inner, self.log = inner, log

    def extension(self, key, k, v, options, layout, sigma):
        out = self.inner.extension(key, k, v, options, layout, sigma)
        sub = (options.get("ad_params") or {}).get("sub_idxs")
        if out is not None and sub is not None:
            self.log.append((sigma, key, tuple(int(i) for i in sub), out.ks[0].detach().clone()))
        return out


def spied(model, log: list):
    """A clone of ``model`` whose attention chains run :class:`AnchorSpy` around our extenders."""
    from coherent_video.model_patches.hooks.chain import AttentionChain

    m = model.clone()
    chains = m.model_options["transformer_options"]["patches_replace"]["attn1"]
    for key, chain in list(chains.items()):
        if isinstance(chain, AttentionChain):
            m.set_model_attn1_replace(AttentionChain(chain.key, tuple(AnchorSpy(e, log) for e in chain.extenders),
                                                     chain.fallback), *key)
    return m


def cross_stream(model, anchor: str, index: int = 0, strength: float = 1.0):
    from coherent_video.nodes.cross_stream import CrossStreamAttention

    return node_out(CrossStreamAttention.execute(model, "anchor", anchor, index, strength))[0]


ANCHOR_CASES = [("first", 0, True), ("index", 20, False), ("center", 0, True)]


@pytest.mark.parametrize("anchor,index,before", ANCHOR_CASES,
                         ids=[f"{a}{i if a == 'index' else ''}-{'before' if b else 'after'}" for a, i, b in ANCHOR_CASES])
def test_cross_stream_anchor_is_the_absolute_frame_in_every_window(ade, pack, tiny_model, anchor, index, before):
    """ADE's uniform context windows (8/4 on 24 frames, the window order changes every step): in every window of a
    step, the anchor K/V are the same tensors, computed for the absolute anchor frame itself (they depend on that
    frame's input alone: changing every other frame leaves them bit-identical, changing the anchor frame changes
    them). Issue 9 measured 6/14 (first), 7/14 (index 20), 2/14 (centre) windows with another frame's K/V."""
    a = {"first": 0, "center": (FRAMES - 1) // 2, "index": index}[anchor]
    before_fp = fixtures.model_fingerprint(tiny_model)

    def build(strength=1.0):
        if before:
            return evolved(ade, cross_stream(tiny_model, anchor, index, strength), True, uniform=True)
        return cross_stream(evolved(ade, tiny_model, True, uniform=True), anchor, index, strength)

    def run(latent_shift=None):
        log = []
        lat = torch.zeros(FRAMES, 4, 8, 8)
        if latent_shift is not None:
            lat[latent_shift] += 0.5
        import nodes

        cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
        out = nodes.common_ksampler(spied(build(), log), 3, 2, 2.0, "euler", "normal", *cond,
                                    {"samples": lat})[0]["samples"]
        return out, log

    out, log = run()
    assert torch.isfinite(out).all()
    sigmas = sorted({s for s, *_ in log}, reverse=True)
    assert len(sigmas) == 2
    windows = {(s, w) for s, _, w, _ in log}
    assert any(a not in w for _, w in windows), "some windows do not contain the anchor frame"
    by_block = {}
    for s, key, w, k in log:
        by_block.setdefault((s, key), []).append((w, k))
    for (s, key), got in by_block.items():
        ref = got[0][1]
        wrong = [w for w, k in got if not torch.equal(k, ref)]
        assert not wrong, f"sigma {s:.3f} block {key}: windows {wrong} got other anchor K/V than window {got[0][0]}"

    def first_step(log_):
        return {key: k for s, key, w, k in log_ if s == sigmas[0]}

    others = [f for f in range(FRAMES) if f != a]
    _, log_others = run(others)
    _, log_anchor = run([a])
    step1, step1_others, step1_anchor = first_step(log), first_step(log_others), first_step(log_anchor)
    assert all(torch.equal(step1[k], step1_others[k]) for k in step1), "the anchor K/V depend on other frames"
    assert any(not torch.equal(step1[k], step1_anchor[k]) for k in step1), "the anchor K/V ignore the anchor frame"
    # strength 0 is ADE alone, bit for bit; the input model is unchanged
    import nodes

    cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    lat = {"samples": torch.zeros(FRAMES, 4, 8, 8)}
    alone = nodes.common_ksampler(evolved(ade, tiny_model, True, uniform=True), 3, 2, 2.0, "euler", "normal", *cond, lat)[0]
    zero = nodes.common_ksampler(build(0.0), 3, 2, 2.0, "euler", "normal", *cond, lat)[0]
    assert torch.equal(zero["samples"], alone["samples"])
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(tiny_model), before_fp)


def test_post_sampling_nodes_take_ade_output(ade, pack, tiny_model):
    """The nodes that take no MODEL (MotionDecomposer / Scale / Smooth / Clamp / Combiner, FlowTemporalUpsample)
    work on a video ADE sampled in its context windows: the motion round trip gives the latent back, an identity
    edit (scale 1) changes nothing, smoothing keeps the shape, and the flow upsampler keeps every original latent
    frame at the even output indices; neither model is changed."""
    from coherent_video.nodes.flow_upsample import FlowTemporalUpsample
    from coherent_video.nodes.motion import (MotionClamp, MotionCombiner, MotionDecomposer, MotionScale,
                                             MotionSmooth)

    base_fp = fixtures.model_fingerprint(tiny_model)
    m = evolved(ade, tiny_model, context=True)
    ade_fp = fixtures.model_fingerprint(m)
    video = {"samples": ksample(m)}
    out = node_out(MotionDecomposer.execute(video))
    content, motion = out[0], out[2]  # (content latent, content image: blocked for a LATENT, motion)

    def combined(mo):
        return node_out(MotionCombiner.execute(content, mo))[0]["samples"]

    torch.testing.assert_close(combined(motion), video["samples"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(combined(node_out(MotionScale.execute(motion, 1.0))[0]), video["samples"],
                               atol=1e-5, rtol=1e-5)
    smoothed = combined(node_out(MotionSmooth.execute(motion))[0])
    clamped = combined(node_out(MotionClamp.execute(motion))[0])
    assert smoothed.shape == clamped.shape == video["samples"].shape
    assert torch.isfinite(smoothed).all() and not torch.equal(smoothed, video["samples"])
    up = node_out(FlowTemporalUpsample.execute(latent=video, multiplier=2))[1]["samples"]
    assert up.shape[0] == 2 * FRAMES - 1
    assert torch.equal(up[::2], video["samples"])
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(m), ade_fp)
    fixtures.assert_same_fingerprint(fixtures.model_fingerprint(tiny_model), base_fp)
