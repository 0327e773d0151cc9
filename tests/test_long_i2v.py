"""Long image-to-video on Wan I2V (``WAN21_I2V``, the class of Wan 2.2 A14B I2V): IterativeReuseSampler with
``condition_on_previous``, its ``colour_hold`` option, ReferenceImageCondition on the start image for every clip,
and the comparison runs of the benchmark (last-frame chaining, independent clips) through ComfyUI's own nodes with
a tiny random Wan VAE (tests/support/long_i2v.py). Random weights: wiring, not quality."""
from __future__ import annotations

import pytest
import torch

from support import families as F
from support import long_i2v as L

N, M, SIZE, STEPS = 3, 1, 32, 2


@pytest.fixture(scope="module", autouse=True)
def _env(one_thread):
    return one_thread


@pytest.fixture(scope="module")
def setup():
    model, pos, neg = L.build()
    return model, pos, neg, L.tiny_wan_vae(), L.start_image(SIZE)


def reuse_latent(model, pos, neg, lat, **kw):
    args = dict(total_frames=N + 2 * (N - M), overlap=M, noise_recycle=4.0, guidance_ratio=0.4, fnr=True,
                overlap_mode="concat", seed=5, steps=STEPS, cfg=2.0, sampler_name="euler", scheduler="simple",
                denoise=1.0, condition_on_previous=True)
    args.update(kw)
    return F.run_node("IterativeReuseSampler", model, pos, neg, lat, **args)[0]["samples"]


def test_colour_hold_gives_every_clip_the_first_clips_channel_stats(setup):
    """concat mode (every clip's N sampled frames reach the output): with colour_hold 1 each clip's per-channel latent
    mean and std equal clip 0's; off, they differ; 0.5 lands between. Breaks when the hook skips hold_colour (or
    holds before condition_on_previous's record only)."""
    import coherent_video.model_patches.reuse as R

    model, pos, neg, vae, image = setup
    before = F.model_fingerprint(model)
    ipos, ineg, lat = L.i2v_conditioning(pos, neg, vae, image, SIZE, L.pixel_frames(N))
    total = 3 * N
    off = reuse_latent(model, ipos, ineg, lat, total_frames=total, colour_hold=0.0)
    on = reuse_latent(model, ipos, ineg, lat, total_frames=total, colour_hold=1.0)
    half = reuse_latent(model, ipos, ineg, lat, total_frames=total, colour_hold=0.5)
    clips = lambda x: x.split(N, dim=2)  # noqa: E731
    assert torch.equal(on[:, :, :N], off[:, :, :N])  # clip 0 is the reference, untouched
    mu0, sd0 = R.latent_colour_stats(on[:, :, :N])
    for k, (a, b, h) in enumerate(zip(clips(on), clips(off), clips(half))):
        if k == 0:
            continue
        mu, sd = R.latent_colour_stats(a)
        torch.testing.assert_close(mu, mu0, atol=1e-4, rtol=0)
        torch.testing.assert_close(sd, sd0, atol=1e-4, rtol=1e-4)
        mu_off = R.latent_colour_stats(b)[0]
        assert float((mu_off - mu0).abs().max()) > 1e-3, "off: clip k's stats differ from clip 0's"
        assert float((R.latent_colour_stats(h)[0] - mu0).abs().max()) < float((mu_off - mu0).abs().max())
    F.assert_same_fingerprint(before, F.model_fingerprint(model))


def test_colour_hold_is_range_checked(setup):
    model, pos, neg, vae, image = setup
    ipos, ineg, lat = L.i2v_conditioning(pos, neg, vae, image, SIZE, L.pixel_frames(N))
    with pytest.raises(Exception, match=r"\[IterativeReuseSampler\] input 'colour_hold'"):
        reuse_latent(model, ipos, ineg, lat, colour_hold=1.5)


def test_reference_on_the_start_image_composes_with_condition_on_previous(setup):
    """ReferenceImageCondition (the VAE-encoded start image) upstream of IterativeReuseSampler on Wan I2V: one
    batch-1, one-latent-frame reference write pass per step of every clip, and the output changes. Breaks when the
    sampler's clone drops the reference patch (e.g. a fresh model instead of model.clone())."""
    model, pos, neg, vae, image = setup
    before = F.model_fingerprint(model)
    clips = 3
    calls = []
    with_ref = L.run_reuse(model, pos, neg, vae, image, N, M, clips, SIZE, STEPS, seed=2, reference=True, calls=calls)
    plain = L.run_reuse(model, pos, neg, vae, image, N, M, clips, SIZE, STEPS, seed=2)
    writes = [c for c in calls if c[0] == 1 and c[2] == 1]
    assert len(writes) == clips * STEPS, calls
    assert [c.shape[0] for c in with_ref] == L.clip_lengths(N, M, clips)
    assert not torch.equal(torch.cat(with_ref), torch.cat(plain))
    F.assert_same_fingerprint(before, F.model_fingerprint(model))


def test_chain_and_independent_give_the_same_clip_lengths(setup):
    """The benchmark's baselines: last-frame chaining re-encodes the previous clip's last decoded frame (so clip 1
    starts from it: its conditioning image differs from the start image's), independent clips all start from the
    start image; both cut to the reuse run's clip lengths."""
    model, pos, neg, vae, image = setup
    chain = L.run_chain(model, pos, neg, vae, image, N, 3, SIZE, STEPS, seed=1)
    indep = L.run_independent(model, pos, neg, vae, image, N, M, 3, SIZE, STEPS, seed=1)
    want = L.clip_lengths(N, M, 3)
    assert [c.shape[0] for c in chain] == want and [c.shape[0] for c in indep] == want
    assert torch.equal(chain[0], L.decode(vae, F.sample_ksampler(
        model, *L.i2v_conditioning(pos, neg, vae, image, SIZE, L.pixel_frames(N)), seed=1, steps=STEPS,
        cfg=2.0, sampler_name="euler", scheduler="simple")))
    assert not torch.equal(chain[1], indep[1])


def test_two_experts_split_the_steps_like_ksampler_advanced(setup):
    """Wan 2.2 A14B: model_low_noise samples steps low_noise_start_step.. of every clip. With the same weights as
    both experts the split run equals the one-model run (the first pass hands over its leftover noise, the second
    adds none); with another low-noise model exactly (steps - switch) model calls per clip go to it. Breaks when
    the second pass gets fresh noise or the first denoises to 0."""
    model, pos, neg, vae, image = setup
    steps, switch, clips = 4, 2, 3
    ipos, ineg, lat = L.i2v_conditioning(pos, neg, vae, image, SIZE, L.pixel_frames(N))
    kw = dict(total_frames=N + (clips - 1) * (N - M), overlap_mode="forward", steps=steps)
    one = reuse_latent(model, ipos, ineg, lat, **kw)
    split = reuse_latent(model, ipos, ineg, lat, model_low_noise=model.clone(), low_noise_start_step=switch, **kw)
    torch.testing.assert_close(split, one, atol=1e-4, rtol=1e-4)
    low, _, _ = L.build(seed=1)
    low_rec, low_calls = F.count_model_calls(low)
    high_rec, high_calls = F.count_model_calls(model)
    two = reuse_latent(high_rec, ipos, ineg, lat, model_low_noise=low_rec, low_noise_start_step=switch, **kw)
    assert len(low_calls) == clips * (steps - switch) and len(high_calls) == clips * switch, (low_calls, high_calls)
    assert float((two - one).abs().max()) > 1e-3
    all_low = reuse_latent(model, ipos, ineg, lat, model_low_noise=low, low_noise_start_step=0, **kw)
    torch.testing.assert_close(all_low, reuse_latent(low, ipos, ineg, lat, **kw), atol=1e-5, rtol=0)
