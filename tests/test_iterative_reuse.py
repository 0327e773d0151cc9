"""IterativeReuseSampler (VidRD): FNR/PNS/DSG math, exact clip planning, and the real sampling loop
on the tiny U-Net through ComfyUI's own CFGGuider, samplers and wrappers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tools import fixtures
from tools.testing import run_workflow_cli, webp_frames

ROOT = Path(__file__).resolve().parent.parent
NODE = "IterativeReuseSampler"


@pytest.fixture(scope="module")
def reuse(pack):
    import coherent_video.model_patches.reuse as m

    return m


@pytest.fixture(scope="module")
def hooks(pack, comfy):
    import coherent_video.model_patches.hooks.reuse as m

    return m


@pytest.fixture(scope="module")
def node(pack, comfy):
    from coherent_video.nodes import iterative_reuse as m

    return m


def latent(frames: int, size: int = 8) -> dict:
    return {"samples": torch.zeros(frames, 4, size, size)}


def run_node(node, model, cond, frames=3, size=8, **kw):
    args = dict(total_frames=5, overlap=1, noise_recycle=4.0, guidance_ratio=0.4, fnr=True, overlap_mode="forward",
                seed=7, steps=2, cfg=2.0, sampler_name="euler", scheduler="normal", denoise=1.0)
    args.update(kw)
    return node.IterativeReuseSampler.execute(model, cond[0], cond[1], latent(frames, size), **args).result[0]


# --------------------------------------------------------------------------------------------- math
def test_fnr_noise_equality(reuse):
    g = torch.Generator().manual_seed(0)
    prev, fresh = torch.randn(6, 4, 5, 5, generator=g), torch.randn(6, 4, 5, 5, generator=g)
    out = reuse.reverse_reuse_noise(prev, fresh, overlap=3, noise_recycle=4.0, fnr=True)
    for k in range(3):
        assert torch.equal(out[k], prev[5 - k])  # eps^{c+1}_k = eps^c_{N-1-k}
    a, b = 4 / math.sqrt(17), 1 / math.sqrt(17)
    for k in range(3, 6):
        torch.testing.assert_close(out[k], a * prev[5 - k] + b * fresh[k], rtol=0, atol=1e-6)
    off = reuse.reverse_reuse_noise(prev, fresh, overlap=3, noise_recycle=4.0, fnr=False)
    torch.testing.assert_close(off[0], a * prev[5] + b * fresh[0], rtol=0, atol=1e-6)
    # video latents [B, C, T, H, W]: frames on axis 2
    prev5, fresh5 = prev.permute(1, 0, 2, 3)[None], fresh.permute(1, 0, 2, 3)[None]
    out5 = reuse.reverse_reuse_noise(prev5, fresh5, overlap=3, noise_recycle=4.0)
    assert torch.equal(out5[0].permute(1, 0, 2, 3), out)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 4.0])
def test_pns_unit_variance_and_correlation(reuse, sigma):
    g = torch.Generator().manual_seed(1)
    prev, fresh = torch.randn(8, 4, 96, 96, generator=g), torch.randn(8, 4, 96, 96, generator=g)
    out = reuse.reverse_reuse_noise(prev, fresh, overlap=2, noise_recycle=sigma)
    pns, rev = out[2:], prev.flip(0)[2:]
    assert abs(float(pns.var()) - 1.0) < 0.01
    corr = float(((pns - pns.mean()) * (rev - rev.mean())).mean() / (pns.std() * rev.std()))
    assert abs(corr - sigma / math.sqrt(1 + sigma**2)) < 0.01
    a, b = reuse.pns_weights(sigma)
    assert a * a + b * b == pytest.approx(1.0, abs=1e-12)


def test_staged_guidance_schedule_matches_official_rule(reuse):
    assert reuse.staged_guidance_steps(50, 4, 0.4) == [20, 15, 10, 5]  # paper defaults, S = 50
    assert reuse.staged_guidance_steps(20, 4, 0.0) == [0, 0, 0, 0]
    assert reuse.staged_guidance_steps(20, 4, 1.0) == [20, 15, 10, 5]
    assert reuse.staged_guidance_steps(10, 0, 0.4) == []
    for steps, m, g in [(7, 3, 0.33), (13, 5, 0.8), (4, 2, 0.75), (1, 1, 0.5)]:
        stage = reuse.staged_guidance_steps(steps, m, g)
        for k in range(m):
            for s in range(steps):
                assert (s < stage[k]) == (s < (m - k) * (steps / m) * g)  # official pipeline test


def test_forward_noise_reuse_and_pns(reuse):
    """Forward FNR copies eps^c_{N-M+k}; forward PNS gives frame k >= M the correlation a^(k-M+1) with the
    last past frame eps^c_{N-1}, none with the other past frames, and unit variance (numbers computed
    here from the definition, not taken from the module)."""
    g = torch.Generator().manual_seed(3)
    n, m, s = 6, 2, 1.5
    prev, fresh = torch.randn(n, 2, 64, 64, generator=g), torch.randn(n, 2, 64, 64, generator=g)
    out = reuse.forward_reuse_noise(prev, fresh, overlap=m, noise_recycle=s, fnr=True)
    for k in range(m):
        assert torch.equal(out[k], prev[n - m + k])
    a = s / math.sqrt(1 + s * s)
    for k in range(m, n):
        w = a ** (k - m + 1)
        torch.testing.assert_close(out[k], w * prev[n - 1] + math.sqrt(1 - w * w) * fresh[k], rtol=0, atol=1e-5)
    big_prev, big_fresh = torch.randn(n, 4, 128, 128, generator=g), torch.randn(n, 4, 128, 128, generator=g)
    big = reuse.forward_reuse_noise(big_prev, big_fresh, overlap=m, noise_recycle=s)
    for k in range(m, n):
        assert abs(float(big[k].var()) - 1.0) < 0.02
        corr_last = float((big[k] * big_prev[n - 1]).mean())
        assert abs(corr_last - a ** (k - m + 1)) < 0.02, k
        assert abs(float((big[k] * big_prev[0]).mean())) < 0.02
    off = reuse.forward_reuse_noise(prev, fresh, overlap=m, noise_recycle=s, fnr=False)
    torch.testing.assert_close(off[0], a * prev[n - m] + fresh[0] / math.sqrt(1 + s * s), rtol=0, atol=1e-5)
    assert reuse.overlap_sources(8, 3, "forward") == [5, 6, 7] and reuse.overlap_sources(8, 3, "reverse") == [7, 6, 5]


def test_output_frame_count_exact_for_every_combination(reuse):
    for n in range(2, 9):
        for m in range(n):
            for total in range(n, 41):
                for mode in ("forward", "concat", "reversed_drop"):
                    plan = reuse.plan_clips(total, n, m, mode)
                    assert sum(p.length for p in plan) == total
                    assert [p.dst_start for p in plan] == [sum(q.length for q in plan[:i]) for i in range(len(plan))]
                    skip = 0 if mode == "concat" else m
                    assert all(p.src_start == skip and p.src_end <= n for p in plan[1:])
                    assert len(plan) == (math.ceil(total / n) if mode == "concat" else 1 + math.ceil((total - n) / (n - m)))
                    clips = [torch.arange(n, dtype=torch.float32).view(n, 1) + 100 * c for c in range(len(plan))]
                    out = torch.full((total, 1), -1.0)
                    for c, p in zip(clips, plan):
                        reuse.place_clip(out, c, p)
                    want = torch.cat([c[p.src_start:p.src_end] for c, p in zip(clips, plan)])
                    assert torch.equal(out, want)


# ------------------------------------------------------------------------------------ real sampling
def dsg_states(hooks, node, model, n=4, m=2, steps=4, g=0.75, mode="forward", sampler_name="euler", lat=None,
               denoise=1.0):
    """Sampler state x at every step of a 2-clip run (sampler callback), clip 1 with its own prompt."""
    pa, pb, neg = fixtures.tiny_cond(seed=11), fixtures.tiny_cond(seed=12), fixtures.tiny_cond(seed=2)
    clip_pos = node.PerClipConditioning.execute(pb, 1, node.PerClipConditioning.execute(pa, 1).result[0]).result[0]
    states = {}
    lat = lat if lat is not None else latent(n)
    total = 2 * n - m if mode != "concat" else 2 * n
    settings = hooks.ReuseSettings(total_frames=total, overlap=m, noise_recycle=4.0, guidance_ratio=g, seed=3,
                                   steps=steps, cfg=2.0, sampler_name=sampler_name, scheduler="normal",
                                   overlap_mode=mode, denoise=denoise)
    out = hooks.run(model, pa, neg, lat, settings, clip_positives=clip_pos,
                    step_callback=lambda c, s, x0, x: states.__setitem__((c, s), x.detach().clone()))
    assert out["samples"].shape[0] == total
    return states


def assert_guided_then_free(states, stage, sources, steps):
    """Guided steps equal the re-traced frame's recorded state bit for bit; after its stage the frame
    evolves on its own (clip 1 has its own prompt, so a free frame diverges)."""
    for k, src in enumerate(sources):
        assert stage[k] >= 2  # at least one guided step after step 0, where the noise alone would agree
        for s in range(steps):
            ours, record = states[(1, s)][k], states[(0, s)][src]
            if s < stage[k]:
                assert torch.equal(ours, record), (k, s)
            else:
                assert float((ours - record).abs().max()) > 1e-4, (k, s)


@pytest.mark.parametrize("mode", ["forward", "concat"])
@pytest.mark.parametrize("sampler_name", ["euler", "heun"])  # heun: two model calls per step
def test_dsg_overlap_frames_follow_the_stored_trajectory_then_evolve_freely(hooks, node, reuse, tiny_model,
                                                                          sampler_name, mode):
    n, m, steps, g = 4, 2, 4, 0.75
    stage = reuse.staged_guidance_steps(steps, m, g)
    assert stage == [3, 2]
    states = dsg_states(hooks, node, tiny_model, n, m, steps, g, mode, sampler_name)
    sources = [2, 3] if mode == "forward" else [3, 2]
    assert_guided_then_free(states, stage, sources, steps)
    # the non-overlap frames were never overwritten
    assert float((states[(1, 1)][m:] - states[(0, 1)][m:]).abs().max()) > 1e-4


def test_dsg_exact_with_denoise_below_one(hooks, node, reuse, tiny_model):
    """denoise < 1: every frame starts from its own latent frame; a re-traced frame starts from the latent
    frame it re-traces, so the guided states still equal the record bit for bit."""
    n, m, steps, g = 4, 2, 4, 0.75
    lat = {"samples": torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(5)) * 2}
    states = dsg_states(hooks, node, tiny_model, n, m, steps, g, "forward", lat=lat, denoise=0.6)
    assert_guided_then_free(states, reuse.staged_guidance_steps(steps, m, g), [2, 3], steps)


def test_dsg_exact_with_a_noise_mask(hooks, node, reuse, tiny_model):
    """A per-frame noise_mask: the sampler pins the unmasked part of each frame to its latent frame, so a
    re-traced frame takes the mask and latent of the frame it re-traces."""
    n, m, steps, g = 4, 2, 4, 0.75
    gen = torch.Generator().manual_seed(6)
    mask = (torch.rand(n, 1, 8, 8, generator=gen) > 0.5).float()
    lat = {"samples": torch.randn(n, 4, 8, 8, generator=gen), "noise_mask": mask}
    states = dsg_states(hooks, node, tiny_model, n, m, steps, g, "concat", lat=lat)
    assert_guided_then_free(states, reuse.staged_guidance_steps(steps, m, g), [3, 2], steps)


@pytest.mark.parametrize("mode,back", [("forward", 0), ("reversed_drop", 2)])
def test_seam_direction_on_time_ordered_noise(node, tiny_model, tiny_cond, mode, back):
    """Progressive (time-ordered) noise on the frame-independent tiny model: the first frame after the seam
    is closest to the last frame before it in forward mode; the old reversed drop jumps back M frames."""
    brn = pytest.importorskip("coherent_video.nodes.base_residual_noise")
    n, m = 6, 2
    noise = brn.BaseResidualNoise.execute(4, "progressive", 0.5, 1.0, -1).result[0]
    out = run_node(node, tiny_model, tiny_cond, frames=n, total_frames=2 * n - m, overlap=m, overlap_mode=mode,
                   noise=noise, steps=3)["samples"]
    dist = [(out[n] - out[i]).pow(2).mean().item() for i in range(n)]
    assert dist.index(min(dist)) == n - 1 - back, dist


def test_concat_mode_keeps_the_retraced_overlap(node, tiny_model, tiny_cond):
    out = run_node(node, tiny_model, tiny_cond, frames=3, total_frames=5, overlap=1, overlap_mode="concat")["samples"]
    assert out.shape == (5, 4, 8, 8)
    # clip 1 = all 3 frames; its frame 0 re-traces clip 0's last frame exactly (FNR + DSG, same prompt,
    # frame-independent image model; the last guided step uses the model's own prediction, so equal up to
    # batch-position rounding)
    torch.testing.assert_close(out[3], out[2], rtol=1e-4, atol=1e-3)
    assert not torch.equal(out[4], out[1])  # PNS mixes fresh noise into the rest


def test_same_seed_same_output_progress_and_offload(node, tiny_model, tiny_cond):
    import comfy.model_management
    import comfy.utils

    ticks = []
    old = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda v, t, p, node_id=None, **kw: ticks.append((v, t)))
    try:
        a = run_node(node, tiny_model, tiny_cond, total_frames=5, overlap=1, steps=2)["samples"]
    finally:
        comfy.utils.set_progress_bar_global_hook(old)
    b = run_node(node, tiny_model, tiny_cond, total_frames=5, overlap=1, steps=2)["samples"]
    c = run_node(node, tiny_model, tiny_cond, total_frames=5, overlap=1, steps=2, seed=8)["samples"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.device == comfy.model_management.intermediate_device()
    clips = 2
    assert ticks[-1] == (clips * 2, clips * 2)  # one bar over clips x steps
    assert all(t == clips * 2 for _, t in ticks) and [v for v, _ in ticks] == sorted(v for v, _ in ticks)


def test_fnr_off_no_pns_no_dsg_equals_independent_clips(node, comfy, tiny_model, tiny_cond):
    from comfy_extras.nodes_custom_sampler import (BasicScheduler, CFGGuider, KSamplerSelect, RandomNoise,
                                                   SamplerCustomAdvanced)

    seed, n = 21, 3
    out = run_node(node, tiny_model, tiny_cond, frames=n, total_frames=5, overlap=1, noise_recycle=0.0,
                   guidance_ratio=0.0, fnr=False, seed=seed, steps=2)["samples"]
    guider = CFGGuider.execute(tiny_model, tiny_cond[0], tiny_cond[1], 2.0).result[0]
    sampler = KSamplerSelect.execute("euler").result[0]
    sigmas = BasicScheduler.execute(tiny_model, "normal", 2, 1.0).result[0]
    clips = [SamplerCustomAdvanced.execute(RandomNoise.execute(seed + c).result[0], guider, sampler, sigmas,
                                           latent(n)).result[0]["samples"] for c in range(2)]
    expected = torch.cat([clips[0], clips[1][1:]])
    assert torch.equal(out, expected)


class CountingNoise:
    """Wraps a NOISE object; counts generate_noise calls (copies share the counter)."""

    def __init__(self, inner, counter):
        self.inner, self.counter, self.seed = inner, counter, inner.seed

    def generate_noise(self, latent_dict):
        self.counter.append(self.seed)
        inner = self.inner
        if self.seed != inner.seed:
            import copy

            inner = copy.copy(inner)
            inner.seed = self.seed
        return inner.generate_noise(latent_dict)


def counting_outer_sample(calls):
    def wrapper(executor, *args, **kwargs):
        calls.append(1)
        return executor(*args, **kwargs)

    return wrapper


def test_composes_with_base_residual_noise_and_outer_sample_wrappers(node, comfy, tiny_model, tiny_cond):
    import comfy.patcher_extension
    from comfy_extras.nodes_custom_sampler import BasicScheduler, CFGGuider, KSamplerSelect, SamplerCustomAdvanced

    brn = pytest.importorskip("coherent_video.nodes.base_residual_noise")
    before = fixtures.model_fingerprint(tiny_model)
    outer_calls, noise_calls = [], []
    m = tiny_model.clone()
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "test.counter", counting_outer_sample(outer_calls))
    noise = CountingNoise(brn.BaseResidualNoise.execute(5, "shared", 0.5, 1.0, -1).result[0], noise_calls)
    out = run_node(node, m, tiny_cond, frames=3, total_frames=5, overlap=1, noise=noise)["samples"]
    assert out.shape[0] == 5 and bool(torch.isfinite(out).all())
    assert len(outer_calls) == 2 and noise_calls == [5, 6]  # once per clip, clip c seeded seed + c
    # clip 0 is exactly what SamplerCustomAdvanced makes from the same NOISE
    guider = CFGGuider.execute(tiny_model, tiny_cond[0], tiny_cond[1], 2.0).result[0]
    ref = SamplerCustomAdvanced.execute(noise.inner, guider, KSamplerSelect.execute("euler").result[0],
                                        BasicScheduler.execute(tiny_model, "normal", 2, 1.0).result[0],
                                        latent(3)).result[0]["samples"]
    assert torch.equal(out[:3], ref)

    # a model patched by BaseResidualNoiseModel (its own OUTER_SAMPLE wrapper) plus the counter
    outer_calls.clear()
    patched = brn.BaseResidualNoiseModel.execute(tiny_model, "shared", 0.5, 1.0, -1, True, False).result[0]
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "test.counter",
                                 counting_outer_sample(outer_calls))
    out2 = run_node(node, patched, tiny_cond, frames=3, total_frames=5, overlap=1)["samples"]
    assert len(outer_calls) == 2 and bool(torch.isfinite(out2).all()) and not torch.equal(out2, out)
    fixtures.assert_same_fingerprint(before, fixtures.model_fingerprint(tiny_model))


def test_interrupt_stops_cleanly_and_model_unchanged(node, comfy, tiny_model, tiny_cond):
    import comfy.model_management
    import comfy.patcher_extension

    before = fixtures.model_fingerprint(tiny_model)
    m = tiny_model.clone()
    calls = []

    def interrupt_on_second_clip(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            comfy.model_management.interrupt_current_processing(True)
        return executor(*args, **kwargs)

    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "test.interrupt", interrupt_on_second_clip)
    m_before = fixtures.model_fingerprint(m)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        run_node(node, m, tiny_cond, frames=3, total_frames=7, overlap=1)
    comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 2
    fixtures.assert_same_fingerprint(before, fixtures.model_fingerprint(tiny_model))
    fixtures.assert_same_fingerprint(m_before, fixtures.model_fingerprint(m))


@pytest.mark.parametrize("frames,kw,bad_input", [
    (4, dict(overlap=4), "overlap"),
    (4, dict(overlap=6), "overlap"),
    (4, dict(total_frames=3), "total_frames"),
    (1, dict(overlap=0, total_frames=4), "latent_image"),
    (4, dict(total_frames=10, overlap=2, clip_positives=["a", "b"]), "clip_positives"),
])
def test_bad_inputs_name_node_and_input(node, tiny_cond, frames, kw, bad_input):
    model = fixtures.tiny_model()
    if "clip_positives" in kw:
        kw["clip_positives"] = [tiny_cond[0]] * len(kw["clip_positives"])  # 4 clips needed, 2 given
    with pytest.raises(ValueError) as err:
        run_node(node, model, tiny_cond, frames=frames, **kw)
    msg = str(err.value)
    assert msg.startswith(f"[{NODE}] input '{bad_input}':"), msg


def test_per_clip_conditioning_list(node, tiny_cond):
    a = node.PerClipConditioning.execute(tiny_cond[0], 2).result[0]
    b = node.PerClipConditioning.execute(tiny_cond[1], 3, a).result[0]
    assert len(b) == 5 and b[0] is tiny_cond[0] and b[4] is tiny_cond[1] and len(a) == 2


def test_workflow_runs_headless_on_random_sd15(sd15_ckpt, tmp_path):
    wf = ROOT / "workflows" / "VidRD long video clip by clip - SD1.5.json"
    data = json.loads(wf.read_text())
    sampler = next(n for n in data["nodes"] if n["type"] == "CoherentVideo_" + NODE)
    latent_node = next(n for n in data["nodes"] if n["type"] == "EmptyLatentImage")
    assert next(n for n in data["nodes"] if n["type"] == "CheckpointLoaderSimple")["widgets_values"] == ["v1-5-pruned-emaonly-fp16.safetensors"]
    s, lt = sampler["id"], latent_node["id"]
    files = run_workflow_cli("VidRD long video clip by clip - SD1.5.json", tmp_path, models_dir=Path(sd15_ckpt).parent.parent,
                             sets=[f"{lt}.width=64", f"{lt}.height=64", f"{lt}.batch_size=4",
                                   f"{s}.total_frames=6", f"{s}.overlap=2", f"{s}.steps=1"])
    webps = [f for f in files if f.suffix == ".webp"]
    assert len(webps) == 1
    assert webp_frames(webps[0]) == (6, (64, 64))
