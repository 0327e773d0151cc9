"""ReferenceImageCondition and CrossStreamAttention in real sampling (tiny SD1.5-architecture U-Net,
ComfyUI's KSampler / SamplerCustomAdvanced, real ModelPatcher)."""
from __future__ import annotations

import math

import pytest
import torch

STEPS, FRAMES, SIZE = 2, 4, 8


@pytest.fixture(scope="module")
def nodes_(pack, comfy):
    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    return ReferenceImageCondition, CrossStreamAttention


@pytest.fixture(scope="module")
def H(pack, comfy):
    from types import SimpleNamespace

    from coherent_video.model_patches.hooks import chain, cross_stream, reference, state

    return SimpleNamespace(chain=chain, cross_stream=cross_stream, reference=reference, state=state)


def video(frames=FRAMES, size=SIZE):
    return {"samples": torch.zeros(frames, 4, size, size)}


def ref_latent(size=SIZE, seed=5):
    return {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(seed))}


def ksample(comfy, model, cond, latent, steps=STEPS, cfg=2.0, seed=3):
    pos, neg = cond
    return comfy.KSampler().sample(model, seed, steps, cfg, "euler", "normal", pos, neg, latent)[0]["samples"]


def reference(nodes_, model, **kw):
    kw.setdefault("anchor_first_frame", False)
    m, lat = nodes_[0].execute(model, kw.pop("ref", ref_latent()), kw.pop("video_latent", video()), **kw).args
    return m, lat


def cross(nodes_, model, **kw):
    return nodes_[1].execute(model, **kw).args[0]


def count_writes(H, m):
    """A DIFFUSION_MODEL wrapper on the patched clone that counts forwards (write passes apart)."""
    counts = {"write": 0, "frames": 0}

    def wrapper(executor, *args, **kwargs):
        to = args[5] if len(args) > 5 else kwargs["transformer_options"]
        counts["write" if to.get(H.state.WRITING_KEY) is not None else "frames"] += 1
        return executor(*args, **kwargs)

    from comfy.patcher_extension import WrappersMP

    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "test.count", wrapper)
    return counts


# ------------------------------------------------------------------------------------- identity at strength 0
def test_strength_zero_is_bit_identical(comfy, nodes_, tiny_model, tiny_cond):
    from tools.fixtures import assert_same_fingerprint, model_fingerprint

    fp = model_fingerprint(tiny_model)
    base = ksample(comfy, tiny_model, tiny_cond, video())
    m_ref, lat = reference(nodes_, tiny_model, strength=0.0, adain_weight=1.0)
    m_both = cross(nodes_, m_ref, mode="sparse_causal", strength=0.0)
    assert torch.equal(ksample(comfy, m_ref, tiny_cond, lat), base)
    assert torch.equal(ksample(comfy, m_both, tiny_cond, lat), base)
    assert torch.equal(ksample(comfy, cross(nodes_, tiny_model, mode="anchor", strength=0.0), tiny_cond, video()), base)
    # and the patches are really installed: at strength 1 the result moves
    assert not torch.allclose(ksample(comfy, cross(nodes_, tiny_model, mode="anchor"), tiny_cond, video()), base)
    assert_same_fingerprint(fp, model_fingerprint(tiny_model))


# ------------------------------------------------------------------------------------- write pass
def test_reference_write_pass_once_per_step(comfy, nodes_, H, tiny_model, tiny_cond):
    m, lat = reference(nodes_, tiny_model, adain_weight=0.5)
    counts = count_writes(H, m)
    steps = 3
    ksample(comfy, m, tiny_cond, lat, steps=steps)
    assert counts["write"] == steps
    assert counts["frames"] >= steps


def window_driver(windows, full_length, seen):
    """CALC_COND_BATCH wrapper simulating AnimateDiff-Evolved's context windows: the frames are run
    window by window with ``ad_params["sub_idxs"]`` set, and the results put back."""

    def wrapper(executor, model, conds, x_in, timestep, model_options):
        outs = None
        for idx in windows:
            to = dict(model_options["transformer_options"])
            to["ad_params"] = {"sub_idxs": list(idx), "full_length": full_length}
            seen.append(list(idx))
            res = executor(model, conds, x_in[list(idx)], timestep[list(idx)], {**model_options, "transformer_options": to})
            if outs is None:
                outs = [torch.zeros_like(x_in) for _ in res]
            for o, r in zip(outs, res):
                o[list(idx)] = r
        return outs

    return wrapper


def test_write_pass_once_per_step_with_sub_idxs_windows(comfy, nodes_, H, tiny_model, tiny_cond):
    """Windows call the model once per window per step; the reference is still written once per
    step, and a cross-stream anchor outside the later window is taken from the earlier one."""
    from comfy.patcher_extension import WrappersMP

    m, lat = reference(nodes_, tiny_model)
    m = cross(nodes_, m, mode="anchor", anchor="first")
    seen, anchors = [], []

    def spy_anchor_cache(executor, *args, **kwargs):
        to = args[5] if len(args) > 5 else kwargs["transformer_options"]
        run = to.get(H.state.RUN_KEY)
        out = executor(*args, **kwargs)
        if run is not None and to.get(H.state.WRITING_KEY) is None:
            anchors.append(len(run.anchors))
        return out

    m.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, "test.windows",
                           window_driver([(0, 1), (2, 3)], FRAMES, seen))
    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "test.anchors", spy_anchor_cache)
    counts = count_writes(H, m)
    out = ksample(comfy, m, tiny_cond, lat, steps=2)
    assert counts["write"] == 2
    assert counts["frames"] == 2 * 2 and len(seen) == 4  # two windows per step
    assert anchors and max(anchors) > 0  # frame 0's K/V cached for the window that lacks it
    assert torch.isfinite(out).all()
    # windows in the other order: window (2, 3) runs before frame 0 was seen at this step, so it falls
    # back to its nearest frame (2); window (0, 1) is computed exactly as before
    m2, _ = reference(nodes_, tiny_model)
    m2 = cross(nodes_, m2, mode="anchor", anchor="first")
    m2.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, "test.windows",
                            window_driver([(2, 3), (0, 1)], FRAMES, []))
    out_rev = ksample(comfy, m2, tiny_cond, lat, steps=2)
    torch.testing.assert_close(out_rev[:2], out[:2])
    assert not torch.allclose(out_rev[2:], out[2:], atol=1e-4)


# ------------------------------------------------------------------------------------- recorded q/k/v
class Recorder:
    def __init__(self, H, chain):
        self.H, self.chain, self.calls = H, chain, []

    def __call__(self, q, k, v, extra_options):
        out = self.chain(q, k, v, extra_options)
        self.calls.append({"q": q, "k": k, "v": v, "out": out, "heads": extra_options["n_heads"],
                           "writing": extra_options.get(self.H.state.WRITING_KEY) is not None,
                           "branches": list(extra_options["cond_or_uncond"]),
                           "sigma": float(extra_options["sigmas"].max())})
        return out


def _direct(q, k, v, heads):
    d = q.shape[-1] // heads
    qh, kh, vh = (t.reshape(t.shape[0], heads, d).transpose(0, 1).double() for t in (q, k, v))
    w = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
    return (w @ vh).transpose(0, 1).reshape(q.shape[0], heads * d).float()


def test_patched_attention_equals_direct_on_recorded_qkv(comfy, nodes_, H, tiny_model, tiny_cond):
    """Sample with reference + cross-stream (anchor = frame 1); at every patched block the output equals
    softmax attention over [own; reference (recorded in that step's write pass); anchor frame]."""
    sf = 0.5
    m, lat = reference(nodes_, tiny_model, style_fidelity=sf)
    m = cross(nodes_, m, mode="anchor", anchor="index", anchor_index=1)
    replace = m.model_options["transformer_options"]["patches_replace"]["attn1"]
    recorders = {}
    for key, chain in list(replace.items()):
        assert isinstance(chain, H.chain.AttentionChain) and len(chain.extenders) == 2
        recorders[key] = Recorder(H, chain)
        m.set_model_attn1_replace(recorders[key], *key)
    ksample(comfy, m, tiny_cond, lat)
    checked = 0
    for key, rec in recorders.items():
        writes = {c["sigma"]: c for c in rec.calls if c["writing"]}
        reads = [c for c in rec.calls if not c["writing"]]
        assert len(writes) == STEPS and reads
        for c in reads:
            w = writes[c["sigma"]]
            nb = len(c["branches"])
            f = c["q"].shape[0] // nb
            for b in range(nb):
                for fr in range(f):
                    r, a = b * f + fr, b * f + 1
                    joint = _direct(c["q"][r], torch.cat([c["k"][r], w["k"][0], c["k"][a]]),
                                    torch.cat([c["v"][r], w["v"][0], c["v"][a]]), c["heads"])
                    if c["branches"][b] == 1:
                        no_ref = _direct(c["q"][r], torch.cat([c["k"][r], c["k"][a]]),
                                         torch.cat([c["v"][r], c["v"][a]]), c["heads"])
                        joint = sf * no_ref + (1 - sf) * joint
                    torch.testing.assert_close(c["out"][r], joint, atol=1e-4, rtol=1e-3)
                    checked += 1
    assert checked >= STEPS * 2 * FRAMES * len(recorders)


# ------------------------------------------------------------------------------------- composition, anchor, AdaIN
def test_nodes_compose_and_input_model_unchanged(comfy, nodes_, H, tiny_model, tiny_cond):
    from tools.fixtures import assert_same_fingerprint, model_fingerprint

    fp = model_fingerprint(tiny_model)
    m_ref, lat = reference(nodes_, tiny_model, adain_weight=1.0)
    fp_ref = model_fingerprint(m_ref)
    m_both = cross(nodes_, m_ref, mode="mutual")
    fp_both = model_fingerprint(m_both)
    m_cross = cross(nodes_, tiny_model, mode="mutual")
    replace = m_both.model_options["transformer_options"]["patches_replace"]["attn1"]
    kinds = {key: [type(e).__name__ for e in c.extenders] for key, c in replace.items()}
    assert kinds and all(v == ["ReferenceExtender", "CrossStreamExtender"] for v in kinds.values())
    r_ref = ksample(comfy, m_ref, tiny_cond, lat)
    r_both = ksample(comfy, m_both, tiny_cond, lat)
    r_cross = ksample(comfy, m_cross, tiny_cond, lat)
    assert torch.isfinite(r_both).all()
    assert not torch.allclose(r_both, r_ref) and not torch.allclose(r_both, r_cross)
    # the reference's own chains are untouched by the second node
    assert all(len(c.extenders) == 1 for c in m_ref.model_options["transformer_options"]["patches_replace"]["attn1"].values())
    assert_same_fingerprint(fp, model_fingerprint(tiny_model))
    assert_same_fingerprint(fp_ref, model_fingerprint(m_ref))
    assert_same_fingerprint(fp_both, model_fingerprint(m_both))
    # deterministic: the same graph gives the same frames (fresh run state every run)
    assert torch.equal(ksample(comfy, m_both, tiny_cond, lat), r_both)


def test_first_frame_anchor_and_adain(comfy, nodes_, tiny_model, tiny_cond):
    ref = ref_latent()
    m, lat = reference(nodes_, tiny_model, ref=ref, anchor_first_frame=True, adain_weight=1.0)
    assert lat["noise_mask"].shape == (FRAMES, 1, SIZE, SIZE) and torch.equal(lat["samples"][0], ref["samples"][0])
    out = ksample(comfy, m, tiny_cond, lat)
    torch.testing.assert_close(out[0], ref["samples"][0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[1], ref["samples"][0], atol=1e-2)
    # anchor only over the first half: frame 0 moves away from the reference afterwards
    m2, lat2 = reference(nodes_, tiny_model, ref=ref, anchor_first_frame=True, end_percent=0.4)
    out2 = ksample(comfy, m2, tiny_cond, lat2, steps=3)
    assert not torch.allclose(out2[0], ref["samples"][0], atol=1e-3)


def test_sampler_custom_advanced_with_both(comfy, nodes_, tiny_model, tiny_cond):
    from comfy_extras import nodes_custom_sampler as ncs

    m, lat = reference(nodes_, tiny_model, anchor_first_frame=True)
    m = cross(nodes_, m, mode="sparse_causal")
    pos, neg = tiny_cond
    guider = ncs.CFGGuider.execute(m, pos, neg, 2.0).args[0]
    sampler = ncs.KSamplerSelect.execute("euler").args[0]
    sigmas = ncs.BasicScheduler.execute(m, "normal", 2, 1.0).args[0]
    noise = ncs.RandomNoise.execute(1).args[0]
    out = ncs.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, lat).args[0]["samples"]
    assert out.shape == (FRAMES, 4, SIZE, SIZE) and torch.isfinite(out).all()


# ------------------------------------------------------------------------------------- bad input
def test_bad_inputs_name_node_and_input(comfy, nodes_, tiny_model, tiny_cond):
    from coherent_video.nodes._common import NodeInputError
    from tools.fixtures import assert_same_fingerprint, model_fingerprint

    fp = model_fingerprint(tiny_model)
    R, C = nodes_
    with pytest.raises(NodeInputError, match=r"\[ReferenceImageCondition\] input 'reference':.*channels"):
        R.execute(tiny_model, {"samples": torch.zeros(1, 3, SIZE, SIZE)}, video())
    with pytest.raises(NodeInputError, match=r"\[ReferenceImageCondition\] input 'reference':.*same size"):
        R.execute(tiny_model, ref_latent(size=SIZE * 2), video())
    with pytest.raises(NodeInputError, match=r"\[ReferenceImageCondition\] input 'start_percent'"):
        R.execute(tiny_model, ref_latent(), video(), start_percent=0.8, end_percent=0.2)
    with pytest.raises(NodeInputError, match=r"\[ReferenceImageCondition\] input 'concat_reference'"):
        R.execute(tiny_model, ref_latent(), video(), concat_reference=True)
    with pytest.raises(NodeInputError, match=r"\[ReferenceImageCondition\] input 'strength'"):
        R.execute(tiny_model, ref_latent(), video(), strength=1.5)
    with pytest.raises(NodeInputError, match=r"\[CrossStreamAttention\] input 'start_percent'"):
        C.execute(tiny_model, start_percent=0.9, end_percent=0.1)
    with pytest.raises(NodeInputError, match=r"\[CrossStreamAttention\] input 'mode'"):
        C.execute(tiny_model, mode="nope")
    with pytest.raises(NodeInputError, match=r"\[CrossStreamAttention\] input 'min_level'"):
        C.execute(tiny_model, min_level=8)
    # an anchor outside the frames is only known when sampling: the error comes from the first step
    m = cross(nodes_, tiny_model, mode="anchor", anchor="index", anchor_index=FRAMES)
    with pytest.raises(NodeInputError, match=r"\[CrossStreamAttention\] input 'anchor_index':.*outside the 4 frames"):
        ksample(comfy, m, tiny_cond, video())
    assert_same_fingerprint(fp, model_fingerprint(tiny_model))


def test_concat_reference_on_a_concat_model(comfy, nodes_, tiny_cond):
    """An 8-channel-input U-Net (4 latent + 4 image-concat): the reference becomes c_concat."""
    from comfy.model_management import get_torch_device, unet_offload_device
    from comfy.model_patcher import ModelPatcher
    from comfy.patcher_extension import WrappersMP
    from tools import fixtures

    cfg = fixtures.tiny_unet_config()
    cfg["in_channels"] = 8
    model = fixtures._build_base_model(cfg, seed=0)
    patcher = ModelPatcher(model, load_device=get_torch_device(), offload_device=unet_offload_device())
    seen = []

    def spy(executor, x, *args, **kwargs):
        seen.append(x.detach().clone())
        return executor(x, *args, **kwargs)

    ref = ref_latent(seed=9)
    m, lat = reference(nodes_, patcher, ref=ref, concat_reference=True, attention_weight=0.0)
    m.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, "test.spy", spy)
    out = ksample(comfy, m, tiny_cond, lat, steps=2)
    assert torch.isfinite(out).all() and len(seen) == 2
    # channels 4..7 of every row of every call are the reference latent (in the model's latent space)
    want = model.latent_format.process_in(ref["samples"].float())
    for x in seen:
        assert x.shape[1] == 8
        torch.testing.assert_close(x[:, 4:], want.expand(x.shape[0], -1, -1, -1).to(x), rtol=0, atol=1e-6)
