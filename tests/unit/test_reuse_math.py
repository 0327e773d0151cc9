"""VidRD math (model_patches/reuse.py): noise reuse (FNR, PNS), the staged guidance schedule and the clip plan.
Pure math: torch only, no ComfyUI."""
from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture(scope="module")
def reuse(pack):
    import coherent_video.model_patches.reuse as m

    return m

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


@pytest.mark.parametrize("shape", [(1, 16, 5, 6, 6), (6, 4, 5, 5)])
def test_hold_colour_matches_the_first_clips_channel_stats(reuse, shape):
    """x' = (x - mu_k)/sigma_k * sigma_1 + mu_1 per channel: the held clip has clip 1's channel means and stds;
    strength 0.5 goes half way on the mean; strength 0 is the input itself."""
    g = torch.Generator().manual_seed(3)
    first = torch.randn(*shape, generator=g)
    later = torch.randn(*shape, generator=g) * 1.7 + 0.8
    mu1, sd1 = reuse.latent_colour_stats(first)
    held = reuse.hold_colour(later, mu1, sd1, 1.0)
    mu, sd = reuse.latent_colour_stats(held)
    torch.testing.assert_close(mu, mu1, atol=1e-5, rtol=0)
    torch.testing.assert_close(sd, sd1, atol=1e-5, rtol=1e-5)
    assert mu.shape == ((1, shape[1], 1, 1, 1) if len(shape) == 5 else (1, shape[1], 1, 1))
    half_mu, _ = reuse.latent_colour_stats(reuse.hold_colour(later, mu1, sd1, 0.5))
    torch.testing.assert_close(half_mu, (reuse.latent_colour_stats(later)[0] + mu1) / 2, atol=1e-5, rtol=0)
    assert reuse.hold_colour(later, mu1, sd1, 0.0) is later
