"""Benchmark IterativeReuseSampler (VidRD) on the tiny SD1.5-architecture U-Net.

    .venv/bin/python bench/iterative.py            # writes bench/results/iterative.json

- wall_ratio      : wall time of an 8-clip run / a block of 8 one-clip runs, both through the node (target
                    <= 1.05); blocks interleaved, minimum of each (shared machine); one torch thread;
                    CPU-time ratio reported beside it.
                    Also reported: one clip through the node / the same clip through SamplerCustomAdvanced.
- peak_mem_ratio  : peak memory growth of a 256-frame run / a one-clip run (target <= 1.1). On CUDA: peak
                    allocated bytes; on CPU: peak RSS growth (VmHWM after the run - VmRSS before it, the
                    peak reset through /proc/self/clear_refs), each run in its own subprocess.
- seam_ratio      : {defaults, independent}: mean |z_{t+1} - z_t| across clip seams / within clips, for the
                    default settings (M=4, sigma=4, g=0.4) and for naive independent clips (fnr off, sigma=0,
                    g=0), same clip plan. The tiny U-Net is an image model with random weights, so frames are
                    only related through their noise: these runs use BaseResidualNoise (shared base) as the
                    NOISE input; ``seam_ratio_plain_noise`` repeats them with ComfyUI's plain noise.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import comfy_env, fixtures  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "iterative.json"
SETTINGS = dict(noise_recycle=4.0, guidance_ratio=0.4, fnr=True, overlap_mode="drop", seed=0, cfg=2.0,
                sampler_name="euler", scheduler="normal", denoise=1.0)


def setup():
    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    comfy_env.load_pack_module()
    import torch

    torch.set_num_threads(1)  # shared 2-core machine: no OpenMP spinning against other processes
    from coherent_video.nodes.iterative_reuse import IterativeReuseSampler

    return IterativeReuseSampler


def run(node, model, cond, frames, size, total, overlap, steps, **kw):
    import torch

    args = dict(SETTINGS, total_frames=total, overlap=overlap, steps=steps)
    args.update(kw)
    lat = {"samples": torch.zeros(frames, 4, size, size)}
    return node.execute(model, cond[0], cond[1], lat, **args).result[0]["samples"]


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def bench_wall(node, model, cond, n=8, m=4, size=16, steps=4, rounds=3):
    """An 8-clip run against a block of 8 one-clip runs, interleaved over ``rounds``; the machine is
    shared, so the least disturbed (minimum) block of each kind is compared. Process CPU time is
    reported beside the wall time."""
    from comfy_extras.nodes_custom_sampler import (BasicScheduler, CFGGuider, KSamplerSelect, RandomNoise,
                                                   SamplerCustomAdvanced)
    import torch

    total8 = n + 7 * (n - m)
    guider = CFGGuider.execute(model, cond[0], cond[1], SETTINGS["cfg"]).result[0]
    sampler = KSamplerSelect.execute("euler").result[0]
    sigmas = BasicScheduler.execute(model, "normal", steps, 1.0).result[0]
    lat = {"samples": torch.zeros(n, 4, size, size)}

    def one_block():
        for _ in range(8):
            run(node, model, cond, n, size, n, m, steps)

    def plain_block():
        for c in range(8):
            SamplerCustomAdvanced.execute(RandomNoise.execute(c).result[0], guider, sampler, sigmas, lat)

    eight_run = lambda: run(node, model, cond, n, size, total8, m, steps)  # noqa: E731
    run(node, model, cond, n, size, n, m, steps)  # warm-up
    one, eight, plain = [], [], []
    for _ in range(rounds):
        one.append(timed(one_block))
        eight.append(timed(eight_run))
        plain.append(timed(plain_block))
    one_w, eight_w, plain_w = (min(w for w, _ in v) for v in (one, eight, plain))
    one_c, eight_c, plain_c = (min(c for _, c in v) for v in (one, eight, plain))
    return dict(clip_frames=n, overlap=m, latent=f"{size}x{size}", steps=steps, total_frames_8_clips=total8,
                rounds=rounds, eight_one_clip_runs_s=one_w, eight_clips_s=eight_w, eight_plain_clips_s=plain_w,
                eight_one_clip_runs_cpu_s=one_c, eight_clips_cpu_s=eight_c, eight_plain_clips_cpu_s=plain_c,
                wall_ratio=eight_w / one_w, cpu_ratio=eight_c / one_c, node_vs_plain_per_clip=one_w / plain_w,
                node_vs_plain_per_clip_cpu=one_c / plain_c,
                all_wall_s={"8x_one_clip": [w for w, _ in one], "eight_clips": [w for w, _ in eight],
                            "8x_plain": [w for w, _ in plain]},
                load_average_after=os.getloadavg())


def _proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def mem_child(kind: str, n: int, m: int, size: int, steps: int) -> dict:
    import gc

    import torch

    node = setup()
    model = fixtures.tiny_model()
    cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    cuda = torch.cuda.is_available()
    run(node, model, cond, n, size, n, m, 1)  # warm-up: load the model, lazy imports
    gc.collect()
    total = n if kind == "one" else 256
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _proc_kb("VmRSS") * 1024
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    t = time.perf_counter()
    out = run(node, model, cond, n, size, total, m, steps)
    wall = time.perf_counter() - t
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _proc_kb("VmHWM") * 1024
    return dict(kind=kind, frames=int(out.shape[0]), device="cuda" if cuda else "cpu", before_bytes=before,
                peak_bytes=peak, growth_bytes=peak - before, wall_s=wall)


def bench_mem(n=16, m=4, size=16, steps=2):
    res = {}
    for kind in ("one", "long"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--mem-child", kind, "--mem-n", str(n), "--mem-m", str(m),
               "--mem-size", str(size), "--mem-steps", str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        res[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return dict(clip_frames=n, overlap=m, latent=f"{size}x{size}", steps=steps, one=res["one"], long=res["long"],
                peak_mem_ratio=res["long"]["growth_bytes"] / res["one"]["growth_bytes"], measure=res["one"]["device"])


def bench_seams(node, model, cond, n=8, m=4, size=16, steps=4, total=24):
    from coherent_video.model_patches.reuse import plan_clips, seam_ratio
    from coherent_video.nodes.base_residual_noise import BaseResidualNoise

    plan = plan_clips(total, n, m, "drop")
    independent = dict(fnr=False, noise_recycle=0.0, guidance_ratio=0.0)
    out = {}
    for label, noise in (("base_residual", BaseResidualNoise.execute(0, "shared", 0.5, 1.0, -1).result[0]),
                         ("plain", None)):
        extra = {"noise": noise} if noise is not None else {}
        d = run(node, model, cond, n, size, total, m, steps, **extra)
        i = run(node, model, cond, n, size, total, m, steps, **extra, **independent)
        out[label] = dict(defaults=seam_ratio(d, plan), independent=seam_ratio(i, plan))
    return dict(clip_frames=n, overlap=m, latent=f"{size}x{size}", steps=steps, total_frames=total, clips=len(plan), **out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem-child", choices=["one", "long"])
    ap.add_argument("--mem-n", type=int, default=16)
    ap.add_argument("--mem-m", type=int, default=4)
    ap.add_argument("--mem-size", type=int, default=16)
    ap.add_argument("--mem-steps", type=int, default=2)
    a = ap.parse_args()
    if a.mem_child:
        print(json.dumps(mem_child(a.mem_child, a.mem_n, a.mem_m, a.mem_size, a.mem_steps)))
        return

    load_start = os.getloadavg()
    node = setup()
    import torch

    model = fixtures.tiny_model()
    cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    wall = bench_wall(node, model, cond)
    seams = bench_seams(node, model, cond)
    mem = bench_mem()
    result = {
        "wall_ratio": wall["wall_ratio"],
        "peak_mem_ratio": mem["peak_mem_ratio"],
        "seam_ratio": seams["base_residual"],
        "seam_ratio_plain_noise": seams["plain"],
        "details": {"wall": wall, "memory": mem, "seams": seams},
        "model": "tiny SD1.5-architecture U-Net (tools/fixtures.tiny_model), random weights",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_start,
        "command": ".venv/bin/python bench/iterative.py",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(f"{'measure':<34}{'value':>12}  baseline / note")
    print(f"{'8 x one-clip run (node), s':<34}{wall['eight_one_clip_runs_s']:>12.3f}  8 x plain SamplerCustomAdvanced "
          f"{wall['eight_plain_clips_s']:.3f} s (node/plain x{wall['node_vs_plain_per_clip']:.3f}, "
          f"CPU time x{wall['node_vs_plain_per_clip_cpu']:.3f})")
    print(f"{'one 8-clip run (node), s':<34}{wall['eight_clips_s']:>12.3f}  baseline: 8 x one-clip run above")
    print(f"{'wall_ratio':<34}{wall['wall_ratio']:>12.3f}  target <= 1.05 (CPU-time ratio {wall['cpu_ratio']:.3f})")
    print(f"{'peak growth one clip, MiB':<34}{mem['one']['growth_bytes'] / 2**20:>12.1f}  ({mem['measure']})")
    print(f"{'peak growth 256 frames, MiB':<34}{mem['long']['growth_bytes'] / 2**20:>12.1f}  ({mem['long']['frames']} frames)")
    print(f"{'peak_mem_ratio':<34}{mem['peak_mem_ratio']:>12.3f}  target <= 1.1")
    for label in ("base_residual", "plain"):
        s = seams[label]
        print(f"{'seam_ratio defaults (' + label + ')':<34}{s['defaults']:>12.3f}  independent clips {s['independent']:.3f}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
