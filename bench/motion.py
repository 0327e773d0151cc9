"""Benchmark: DSDN motion streams (MotionDecomposer/MotionCombiner) and in-sampler motion smoothing.

    .venv/bin/python bench/motion.py [--quick] [--sd15-frames 16] [--steps 3] [--repeats 3]

Writes bench/results/motion.json:
- roundtrip_max_err: max |combine(decompose(x)) - x| over anchor first/centre/last and mean mode, float32;
- decompose_combine_ms_per_frame at 16x4x64x64 and 256x4x96x96 (baseline in the same run: one copy
  of the video, ``x.clone()``, per frame);
- insampler_step_ratio: per-step time of ComfyUI's KSampler with MotionSmoothingPatch / without (steps
  2..N, timed from ComfyUI's progress hook, so model loading is left out), runs interleaved in pairs
  (same seed), median of the pair ratios of process CPU time (wall-time
  ratios are kept too; on a shared machine they carry other processes' load); full-size SD1.5 U-Net (random
  weights, tools.fixtures.sd15_model) at a small latent. Also the hook's own cost measured alone
  (hook_ms_per_step at the sampled size and at 16x4x64x64, and its fraction of the U-Net step);
- flicker_reduction: flicker metric (mean |second temporal difference|) of the sampled frames with the
  patch at default strength / without, tiny U-Net, averaged over seeds.
"""
from __future__ import annotations

import argparse
import json
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


def bench_math(mm, repeats: int, quick: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, 64, 64, generator=g) * 3
    err = 0.0
    exact = True
    for mode, anchor in (("anchor", "first"), ("anchor", "center"), ("anchor", "last"), ("mean", "first")):
        c, m = mm.decompose_motion(x, anchor, mode)
        y = mm.combine_motion(c, m)
        err = max(err, float((y - x).abs().max()))
        exact = exact and torch.equal(y, x)
    out = {"roundtrip_max_err": err, "roundtrip_bit_exact_all_modes": exact, "decompose_combine_ms_per_frame": {},
           "baseline_clone_ms_per_frame": {}}
    shapes = [(16, 4, 64, 64)] + ([] if quick else [(256, 4, 96, 96)])
    for shape in shapes:
        v = torch.randn(shape, generator=g)

        def round_trip():
            c, m = mm.decompose_motion(v, "center")
            mm.combine_motion(c, m)

        round_trip()
        t = _timeit(round_trip, repeats)
        base = _timeit(lambda: v.clone(), repeats)
        key = "x".join(map(str, shape))
        out["decompose_combine_ms_per_frame"][key] = 1000 * t / shape[0]
        out["baseline_clone_ms_per_frame"][key] = 1000 * base / shape[0]
    return out


def _sample(comfy, model, cond, frames: int, size: int, steps: int, seed: int):
    pos, neg = cond
    latent = {"samples": torch.zeros(frames, 4, size, size)}
    return comfy.KSampler().sample(model, seed, steps, 5.0, "euler", "normal", pos, neg, latent, 1.0)[0]["samples"]


def bench_step_ratio(comfy, N, model, cond, frames: int, size: int, steps: int, repeats: int) -> dict:
    from coherent_video.model_patches.motion_hooks import MotionSmoothingPostCFG

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
            for m, acc, acc_cpu in ((model, plain_t, plain_cpu), (patched, patch_t, patch_cpu)):
                stamps.clear()
                _sample(comfy, m, cond, frames, size, steps, 1)
                # step k ends at stamps[k-1]; timing from the end of step 1 leaves model loading out
                n = len(stamps) - 1
                acc.append((stamps[-1][0] - stamps[0][0]) / n)
                acc_cpu.append((stamps[-1][1] - stamps[0][1]) / n)
    finally:
        set_progress_bar_global_hook(None)
    hook = MotionSmoothingPostCFG(0.5, 1.0, 1e9, 0.0)
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
            "pair_ratios": pair_ratios, "ratio_of_mins": patch / plain,
            "wall_ratio": statistics.median(pair_ratios),
            "plain_cpu_s_per_step_runs": plain_cpu, "patched_cpu_s_per_step_runs": patch_cpu,
            "cpu_pair_ratios": cpu_ratios, "ratio": statistics.median(cpu_ratios),
            "hook_ms_per_step_16x4x64x64": 1000 * hook_big_s,
            "plain_s_per_step": plain, "patched_s_per_step": patch,
            "plain_s_per_step_median": statistics.median(plain_t), "patched_s_per_step_median": statistics.median(patch_t),
            "hook_ms_per_step": 1000 * hook_s, "hook_fraction_of_step": hook_s / plain}


def bench_flicker(comfy, N, mm, seeds=(0, 1, 2), frames=8, steps=8) -> dict:
    model = fixtures.tiny_model(0)
    cond = (fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2))
    default = N.MotionSmoothingPatch.GET_SCHEMA().inputs[1].default
    patched = N.MotionSmoothingPatch.execute(model, default).args[0]
    ratios, rows = [], []
    for s in seeds:
        base = mm.flicker_metric(_sample(comfy, model, cond, frames, 8, steps, s))
        smooth = mm.flicker_metric(_sample(comfy, patched, cond, frames, 8, steps, s))
        ratios.append(smooth / base)
        rows.append({"seed": s, "flicker_plain": base, "flicker_patched": smooth})
    return {"flicker_reduction": statistics.mean(ratios), "strength": default, "frames": frames, "steps": steps,
            "latent": f"{frames}x4x8x8", "per_seed": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small shapes, tiny model for the step ratio")
    ap.add_argument("--sd15-frames", type=int, default=16)
    ap.add_argument("--sd15-size", type=int, default=8, help="latent side (8 = 64 px)")
    ap.add_argument("--steps", type=int, default=3, help=">= 2: the first step is not timed")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    import nodes as comfy

    comfy_env.load_pack_module()
    import coherent_video.model_patches.motion as mm
    import coherent_video.nodes.motion as N

    torch.manual_seed(0)
    res = {"device": str(comfy_env_device()), "torch": torch.__version__, "machine": platform.machine(),
           "threads": torch.get_num_threads()}
    res.update(bench_math(mm, a.repeats, a.quick))
    if a.quick:
        model, label = fixtures.tiny_model(0), "tiny SD1.5-arch U-Net (context 32)"
        cond = (fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2))
    else:
        model, label = fixtures.sd15_model(0), "full-size SD1.5 U-Net, random weights"
        g = torch.Generator().manual_seed(1)
        cond = ([[torch.randn(1, 77, 768, generator=g), {}]], [[torch.randn(1, 77, 768, generator=g), {}]])
    step = bench_step_ratio(comfy, N, model, cond, a.sd15_frames, a.sd15_size, a.steps, a.repeats)
    step["model"] = label
    del model
    res["insampler_step_ratio"] = step["ratio"]
    res["insampler"] = step
    fl = bench_flicker(comfy, N, mm)
    res["flicker_reduction"] = fl["flicker_reduction"]
    res["flicker"] = fl

    print(f"{'metric':<44}{'value':>14}{'baseline':>14}{'ratio':>10}")
    print(f"{'roundtrip_max_err (float32)':<44}{res['roundtrip_max_err']:>14.3g}{'':>14}{'':>10}")
    for k, v in res["decompose_combine_ms_per_frame"].items():
        b = res["baseline_clone_ms_per_frame"][k]
        print(f"{'decompose+combine ms/frame ' + k:<44}{v:>14.4f}{b:>14.4f}{v / b:>10.2f}")
    print(f"{'in-sampler wall s/step (' + step['latent'] + ')':<44}{step['patched_s_per_step']:>14.3f}"
          f"{step['plain_s_per_step']:>14.3f}{step['wall_ratio']:>10.4f}")
    print(f"{'in-sampler CPU s/step (' + step['latent'] + ')':<44}"
          f"{statistics.median(step['patched_cpu_s_per_step_runs']):>14.3f}"
          f"{statistics.median(step['plain_cpu_s_per_step_runs']):>14.3f}{step['ratio']:>10.4f}")
    print(f"{'hook alone ms/step 16x4x64x64':<44}{step['hook_ms_per_step_16x4x64x64']:>14.3f}{'':>14}{'':>10}")
    print(f"{'hook alone ms/step':<44}{step['hook_ms_per_step']:>14.3f}{1000 * step['plain_s_per_step']:>14.1f}"
          f"{1 + step['hook_fraction_of_step']:>10.4f}")
    print(f"{'flicker (tiny U-Net, strength ' + str(fl['strength']) + ')':<44}"
          f"{statistics.mean(r['flicker_patched'] for r in fl['per_seed']):>14.3f}"
          f"{statistics.mean(r['flicker_plain'] for r in fl['per_seed']):>14.3f}{fl['flicker_reduction']:>10.4f}")
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
