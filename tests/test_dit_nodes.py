"""Every node on every DiT video family (Wan 2.1, Wan 2.2 A14B and TI2V 5B, HunyuanVideo 1.5, LTXV):
a sampling run on a 5-D [B, C, T, H, W] latent, strength 0 bit-identical to the unpatched model, and
the input model unchanged. Tiny random models of the real ComfyUI classes (tests/support/families.py)."""
from __future__ import annotations

import pytest
import torch

from support import families as F

# + Wan 2.2 I2V A14B (both experts' class), and the audio-video families of ComfyUI 0.33 (skipped on 0.3.75)
FAMILIES = list(F.MAIN_VIDEO_FAMILIES) + ["wan22_ti2v_5b", "wan22_i2v_a14b"] + list(F.AV_FAMILIES)
T = 4  # latent frames of one clip


@pytest.fixture(scope="module", autouse=True)
def _env(comfy, pack):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and steadiest on a shared machine
    yield comfy
    torch.set_num_threads(threads)


@pytest.fixture(params=FAMILIES)
def fx(request):
    return F.build(request.param, frames=T)


def roughness(x: torch.Tensor) -> float:
    """Mean squared second difference along the latent time axis (dim 2)."""
    return float((x[:, :, 2:] - 2 * x[:, :, 1:-1] + x[:, :, :-2]).pow(2).mean())


# ------------------------------------------------------------------------------------- BaseResidualNoise
def test_noise_node_samples_and_base_ratio_zero_is_random_noise(fx):
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    plain = F.sample_custom_advanced(m, pos, neg, lat, seed=3)
    zero = F.run_node("BaseResidualNoise", 3, "shared", 0.0, 1.0, -1, "")[0]
    assert F.same(F.sample_custom_advanced(m, pos, neg, lat, noise=zero), plain)
    noise = F.run_node("BaseResidualNoise", 3, "shared", 0.5, 1.0, -1, "")[0]
    out = F.sample_custom_advanced(m, pos, neg, lat, noise=noise)
    assert F.video_part(out).shape == F.video_part(lat["samples"]).shape
    assert all(torch.isfinite(t).all() for t in F.streams(out))
    assert not torch.equal(F.video_part(out), F.video_part(plain))
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def test_noise_model_patch_matches_noise_node_and_zero_is_identity(fx):
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    plain = F.sample_ksampler(m, pos, neg, lat, seed=3)
    zero = F.run_node("BaseResidualNoiseModel", m, "shared", 0.0, 1.0, -1, True, False, "")[0]
    assert F.same(F.sample_ksampler(zero, pos, neg, lat, seed=3), plain)
    for mode in ("shared", "progressive"):
        patched = F.run_node("BaseResidualNoiseModel", m, mode, 0.5, 1.0, -1, True, False, "")[0]
        noise = F.run_node("BaseResidualNoise", 3, mode, 0.5, 1.0, -1, "")[0]
        a = F.sample_ksampler(patched, pos, neg, lat, seed=3)
        # KSampler + model patch and SamplerCustomAdvanced + NOISE node start from the same noise
        assert F.same(a, F.sample_custom_advanced(m, pos, neg, lat, noise=noise))
        assert not torch.equal(F.video_part(a), F.video_part(plain))
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


# ------------------------------------------------------------------------------------- IterativeReuseSampler
def reuse(model, pos, neg, lat, **kw):
    args = dict(total_frames=2 * T - 1, overlap=1, noise_recycle=4.0, guidance_ratio=0.5, fnr=True,
                overlap_mode="forward", seed=7, steps=2, cfg=2.0, sampler_name="euler", scheduler="simple",
                denoise=1.0)
    args.update(kw)
    return F.run_node("IterativeReuseSampler", model, pos, neg, lat, **args)[0]["samples"]


def skip_av(fx):
    if fx.spec.audio:
        with pytest.raises(Exception, match=r"\[IterativeReuseSampler\] input 'latent_image'.*audio-video.*not implemented"):
            reuse(*fx)
        pytest.skip(f"{fx.spec.label}: IterativeReuseSampler does not split the audio stream into clips yet (named error)")


def test_iterative_reuse_clip_by_clip_on_5d_latents(fx):
    skip_av(fx)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    out = reuse(m, pos, neg, lat)
    b, c, _, h, w = lat["samples"].shape
    assert out.shape == (b, c, 2 * T - 1, h, w) and torch.isfinite(out).all()
    # clip 0 is an ordinary sample of the clip latent (same seed, sampler, sigmas)
    first = F.sample_ksampler(m, pos, neg, lat, seed=7, steps=2, cfg=2.0)
    assert torch.equal(out[:, :, :T], first)
    # one clip ("strength 0" of the clip loop): exactly KSampler
    assert torch.equal(reuse(m, pos, neg, lat, total_frames=T), first)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


def test_iterative_reuse_prompt_travel_on_5d_latents(fx):
    skip_av(fx)
    m, pos, neg, lat = fx
    other = F.conditioning(fx.family, seed=40)
    clips = F.run_node("PerClipConditioning", other, 1, F.run_node("PerClipConditioning", pos, 1)[0])[0]
    same = reuse(m, pos, neg, lat)
    travel = reuse(m, pos, neg, lat, clip_positives=clips)
    assert torch.equal(travel[:, :, :T], same[:, :, :T])  # clip 0 keeps the first prompt
    assert not torch.equal(travel[:, :, T:], same[:, :, T:])  # clip 1 follows the second


# ------------------------------------------------------------------------------------- MotionSmoothingPatch
def test_motion_smoothing_patch_along_t(fx):
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    plain = F.sample_ksampler(m, pos, neg, lat, seed=3)
    zero = F.run_node("MotionSmoothingPatch", m, 0.0, 1.0, 0.0, 1.0)[0]
    assert F.same(F.sample_ksampler(zero, pos, neg, lat, seed=3), plain)
    smooth = F.run_node("MotionSmoothingPatch", m, 1.0, 1.0, 0.0, 1.0)[0]
    out = F.sample_ksampler(smooth, pos, neg, lat, seed=3)
    assert [t.shape for t in F.streams(out)] == [t.shape for t in F.streams(plain)]
    assert all(torch.isfinite(t).all() for t in F.streams(out))
    out, plain = F.video_part(out), F.video_part(plain)
    assert roughness(out) < 0.7 * roughness(plain), (roughness(out), roughness(plain))
    F.assert_same_fingerprint(before, F.model_fingerprint(m))


# ------------------------------------------------------------------------------------- Motion nodes on 5-D LATENTs
def test_motion_nodes_along_t_of_a_sampled_video(fx):
    m, pos, neg, lat = fx
    sampled = F.sample_ksampler(m, pos, neg, lat, seed=3)
    video = {"samples": sampled}
    x, audio = F.video_part(sampled), F.audio_part(sampled)   # audio: LTX-2 / MiniMax H3 (else None)

    def combine(content, motion):
        out = F.run_node("MotionCombiner", content, motion)[0]["samples"]
        if audio is not None:  # the audio stream passes the motion nodes bit for bit
            assert F.is_av(out) and torch.equal(F.audio_part(out), audio)
        return F.video_part(out)

    content, _, motion = F.run_node("MotionDecomposer", video, "first frame")
    c = F.video_part(content["samples"])
    assert c.shape == (x.shape[0], x.shape[1], 1, *x.shape[3:])
    assert torch.equal(c, x[:, :, :1])
    if audio is not None:
        assert torch.equal(F.audio_part(content["samples"]), audio)
    back = combine(content, motion)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-5)
    unchanged = F.run_node("MotionScale", motion, 1.0)[0]
    torch.testing.assert_close(combine(content, unchanged), x, rtol=0, atol=1e-5)
    still = combine(content, F.run_node("MotionScale", motion, 0.0)[0])
    assert torch.equal(still, x[:, :, :1].expand_as(x))  # no motion: every latent frame is the first one
    smoothed = combine(content, F.run_node("MotionSmooth", motion, "gaussian", 1.5)[0])
    assert roughness(smoothed) < roughness(x)
    clamped = combine(content, F.run_node("MotionClamp", motion, 0.5)[0])
    assert clamped.shape == x.shape and torch.isfinite(clamped).all()


# ------------------------------------------------------------------------------------- Wan 2.2 A14B: two experts
@pytest.mark.parametrize("family", ["wan22_t2v", "wan22_i2v_a14b"])
def test_wan22_two_experts_noise_on_the_high_noise_expert(family):
    """Wan 2.2 A14B (T2V, and I2V: the fixture's two experts) samples with a high-noise and a low-noise expert in two
    KSamplerAdvanced (the second with add_noise disabled). BaseResidualNoiseModel on the first shapes the initial
    noise; on the second it has no noise to change and is a no-op."""
    import nodes

    fx = F.build(family, frames=T, seed=0)
    high, pos, neg, lat = fx
    low = fx.experts["low_noise"] if fx.experts else F.build_model(family, seed=1)
    ksa = nodes.KSamplerAdvanced()

    def two_experts(h, lo):
        mid = ksa.sample(h, "enable", 3, 4, 2.0, "euler", "simple", pos, neg, lat, 0, 2, "enable")[0]
        return ksa.sample(lo, "disable", 3, 4, 2.0, "euler", "simple", pos, neg, mid, 2, 4, "disable")[0]["samples"]

    plain = two_experts(high, low)
    patch = lambda m: F.run_node("BaseResidualNoiseModel", m, "shared", 0.5, 1.0, -1, True, False, "")[0]  # noqa: E731
    assert torch.equal(two_experts(high, patch(low)), plain)
    out = two_experts(patch(high), low)
    assert out.shape == plain.shape and not torch.equal(out, plain)


@pytest.mark.parametrize("family", F.MAIN_VIDEO_FAMILIES)
@pytest.mark.parametrize("mode,back", [("forward", 0), ("reversed_drop", 2)])
def test_iterative_reuse_seam_direction_on_time_ordered_noise(family, mode, back):
    """Forward continuity on 5-D latents: with time-ordered (progressive) noise, the first latent frame after a
    seam is closest to the last one before it in forward mode; the paper's reversed drop jumps back M frames."""
    n, m = 6, 2
    model, pos, neg, lat = F.build(family, frames=n)
    noise = F.run_node("BaseResidualNoise", 4, "progressive", 0.5, 3.0, -1, "")[0]
    out = reuse(model, pos, neg, lat, total_frames=2 * n - m, overlap=m, overlap_mode=mode, noise=noise, steps=3,
                guidance_ratio=0.4)
    dist = [(out[:, :, n] - out[:, :, i]).pow(2).mean().item() for i in range(n)]
    assert dist.index(min(dist)) == n - 1 - back, dist


@pytest.mark.parametrize("family", ["wan21_t2v", "ltxv"])
def test_dsg_replays_the_recorded_trajectory_on_latent_frames(family):
    """DSG on dim 2: while guided, the re-traced overlap latent frames of clip 1 equal the recorded states of the
    latent frames they re-trace (N-M+k in forward order) bit for bit; afterwards they evolve freely."""
    import coherent_video.model_patches.reuse as reuse_math

    n, m, steps, g = 4, 2, 4, 0.75
    model, pa, neg, lat = F.build(family, frames=n)
    pb = F.conditioning(family, seed=40)
    clips = F.run_node("PerClipConditioning", pb, 1, F.run_node("PerClipConditioning", pa, 1)[0])[0]
    states = {}
    import coherent_video.model_patches.hooks.reuse as hooks

    settings = hooks.ReuseSettings(total_frames=2 * n - m, overlap=m, noise_recycle=4.0, guidance_ratio=g, seed=3,
                                   steps=steps, cfg=2.0, sampler_name="euler", scheduler="simple",
                                   overlap_mode="forward")
    hooks.run(model, pa, neg, lat, settings, clip_positives=clips,
              step_callback=lambda c, s, x0, x: states.__setitem__((c, s), x.detach().clone()))
    stage = reuse_math.staged_guidance_steps(steps, m, g)
    assert stage == [3, 2]
    for k, src in enumerate([n - m + k for k in range(m)]):
        for s in range(steps):
            ours, record = states[(1, s)][:, :, k], states[(0, s)][:, :, src]
            if s < stage[k]:
                assert torch.equal(ours, record), (k, s)
            else:
                assert float((ours - record).abs().max()) > 1e-4, (k, s)


# ------------------------------------------------------------------------------------- I2V: condition on the previous clip
@pytest.mark.parametrize("family", ["wan21_i2v", "hunyuan15_t2v"])
def test_iterative_reuse_conditions_each_clip_on_the_previous_clips_frames(family):
    """condition_on_previous: clip c > 0 gets the previous clip's re-traced latent frames as known frames of the
    model's image-to-video input (concat image + mask), in the model calls themselves."""
    import comfy.patcher_extension

    model, pos, neg, lat = F.build(family, frames=T)
    before = F.model_fingerprint(model)
    pos_before = [[e.clone(), dict(o)] for e, o in pos]
    calls = []
    rec = model.clone()
    rec.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test.concat",
                             lambda ex, x, t, *a, **kw: (calls.append(a[0] if a else kw.get("c_concat")), ex(x, t, *a, **kw))[1])
    m = 2
    off = reuse(model, pos, neg, lat, overlap=m, total_frames=2 * T - m)
    on = reuse(rec, pos, neg, lat, overlap=m, total_frames=2 * T - m, condition_on_previous=True)
    assert torch.equal(on[:, :, :T], off[:, :, :T])  # clip 0: the conditioning as given
    assert not torch.equal(on[:, :, T:], off[:, :, T:])
    c = lat["samples"].shape[1]
    image = (lambda cc: cc[:, 4:4 + c]) if family.startswith("wan") else (lambda cc: cc[:, :c])
    mask = (lambda cc: cc[:, :1]) if family.startswith("wan") else (lambda cc: cc[:, c:])
    first, last = calls[0], calls[-1]
    assert float(image(first).abs().max()) == 0 and float(mask(first).abs().max()) == 0  # no start image: all unknown
    want = model.model.process_latent_in(on[:, :, T - m:T])
    torch.testing.assert_close(image(last)[:, :, :m], want.to(last)[: image(last).shape[0]].expand_as(image(last)[:, :, :m]))
    assert float(image(last)[:, :, m:].abs().max()) == 0
    assert bool((mask(last)[:, :, :m] == 1).all()) and bool((mask(last)[:, :, m:] == 0).all())  # model side: 1 = known
    assert all(torch.equal(a[0], b[0]) and a[1].keys() == b[1].keys() for a, b in zip(pos, pos_before))
    F.assert_same_fingerprint(before, F.model_fingerprint(model))


def test_condition_on_previous_needs_an_image_to_video_model():
    model, pos, neg, lat = F.build("wan21_t2v", frames=T)
    with pytest.raises(Exception, match=r"\[IterativeReuseSampler\] input 'condition_on_previous'.*image-to-video"):
        reuse(model, pos, neg, lat, condition_on_previous=True)


# ------------------------------------------------------------------------------------- LTX-2 / MiniMax H3: audio untouched
@pytest.mark.parametrize("family", list(F.AV_FAMILIES))
def test_video_only_patches_hand_the_audio_stream_through_bit_identical(family):
    """On an audio-video latent our noise and smoothing act on the video stream only: the audio noise is ComfyUI's
    own for the seed, and at every model call the smoothing returns the audio part of the packed denoised latent
    unchanged while its video part changes. (The SAMPLED audio does change with the video: both models attend
    across the streams.) Fails if noise.py / motion.py treat the flat pack as one tensor (comfy_compat.latent_streams)."""
    import comfy.patcher_extension
    import comfy.utils

    fx = F.build(family, frames=T)
    m, pos, neg, lat = fx
    before = F.model_fingerprint(m)
    ours = F.run_node("BaseResidualNoise", 3, "progressive", 0.5, 1.0, -1, "")[0].generate_noise(lat)
    random = F._unwrap(F._custom_sampler_nodes().RandomNoise.execute(3))[0].generate_noise(lat)
    assert torch.equal(F.audio_part(ours), F.audio_part(random))
    assert not torch.equal(F.video_part(ours), F.video_part(random))

    seen = []   # the noise the sampler gets from the model patch, unpacked
    patched = F.run_node("BaseResidualNoiseModel", m, "progressive", 0.5, 1.0, -1, True, False, "")[0].clone()
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "test.noise",
                                 lambda ex, noise, *a, **kw: (seen.append(comfy.utils.unpack_latents(
                                     noise, kw["latent_shapes"])), ex(noise, *a, **kw))[1])
    F.sample_ksampler(patched, pos, neg, lat, seed=3)
    assert torch.equal(seen[0][1], F.audio_part(random)) and torch.equal(seen[0][0], F.video_part(ours))

    calls = []
    probe = m.clone()
    probe.set_model_sampler_post_cfg_function(lambda a: (calls.append(["in", a["denoised"].clone()]), a["denoised"])[1])
    smooth = F.run_node("MotionSmoothingPatch", probe, 1.0, 1.0, 0.0, 1.0)[0]
    smooth.set_model_sampler_post_cfg_function(lambda a: (calls[-1].append(a["denoised"]), a["denoised"])[1])
    F.sample_ksampler(smooth, pos, neg, lat, seed=3)
    shapes = [t.shape for t in F.streams(lat["samples"])]
    for _, x_in, x_out in calls:
        (v_in, a_in), (v_out, a_out) = comfy.utils.unpack_latents(x_in, shapes), comfy.utils.unpack_latents(x_out, shapes)
        assert torch.equal(a_out, a_in)
    assert any(not torch.equal(comfy.utils.unpack_latents(i, shapes)[0], comfy.utils.unpack_latents(o, shapes)[0])
               for _, i, o in calls)
    F.assert_same_fingerprint(before, F.model_fingerprint(m))
