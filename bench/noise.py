"""BaseResidualNoise.generate_noise against ComfyUI's Noise_RandomNoise, same shapes, same run.

    python -m bench.noise [--pairs 7] [--threads 1]   -> bench/results/noise.json

Every ratio is {median, min, max, pairs} over interleaved pairs: in each pair ComfyUI's noise and the
mode are timed back to back (order alternating), each as the process CPU time per call over enough calls
to last 100 ms (one thread, so other processes' load stays out).
``ratio_vs_comfy`` is the shared (default) mode's median at the shape where it is larger.
"""
from __future__ import annotations

import torch
import statistics
import time

from bench._common import comfy_env, load_pack_module, write_results

comfy_env.bootstrap()
pack = load_pack_module()
from comfy_extras.nodes_custom_sampler import Noise_RandomNoise  # noqa: E402

from coherent_video.nodes.base_residual_noise import BaseResidualNoise  # noqa: E402

SHAPES = [(16, 4, 64, 64), (256, 4, 96, 96)]


def _per_call(fn, inner: int) -> float:
    """Process CPU seconds per call (one torch thread: the work of this process only, so other
    processes' load on the shared machine does not enter, as it does in wall time)."""
    t = time.process_time()
    for _ in range(inner):
        fn()
    return (time.process_time() - t) / inner


def _inner(fn, min_sample_s: float = 0.1) -> int:
    fn()
    t = time.process_time()
    fn()
    return max(1, int(min_sample_s / max(time.process_time() - t, 1e-6)))


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "pairs": [round(v, 4) for v in values]}


def profile_top(shape, calls: int = 100, top: int = 10) -> dict:
    """cProfile of ``calls`` calls each of ComfyUI's noise and ours (shared mode) at ``shape``: the top functions by
    cumulative time, so a missed target comes with where the time goes."""
    import cProfile
    import pstats

    latent = {"samples": torch.zeros(shape)}
    gen = BaseResidualNoise.execute(1, "shared", 0.5, 1.0, -1, "").result[0].generate_noise
    out = {}
    for name, fn in (("comfy", Noise_RandomNoise(1).generate_noise), ("ours_shared", gen)):
        fn(latent)
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(calls):
            fn(latent)
        pr.disable()
        st = pstats.Stats(pr)
        rows = sorted(st.stats.items(), key=lambda kv: -kv[1][3])[:top]
        out[name] = [{"function": f"{k[0].split('/')[-1]}:{k[1]}({k[2]})", "cum_ms_per_call": round(v[3] / calls * 1e3, 3),
                      "self_ms_per_call": round(v[2] / calls * 1e3, 3)} for k, v in rows]
    out["shape"] = "x".join(map(str, shape))
    out["note"] = "cProfile (adds its own overhead); per call of generate_noise"
    return out


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared 2-core machine multi-threaded elementwise "
                         "kernels time thread contention, not the work)")
    ap.add_argument("--pairs", type=int, default=9)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ratios, ms = {}, {}
    for shape in SHAPES:
        latent = {"samples": torch.zeros(shape)}
        comfy = (lambda f=Noise_RandomNoise(1).generate_noise: f(latent))
        key = "x".join(map(str, shape))
        ratios[key], ms[key] = {}, {}
        n_comfy = _inner(comfy)
        comfy_ms = []
        for mode in ("shared", "mixed", "progressive"):
            gen = BaseResidualNoise.execute(1, mode, 0.5, 1.0, -1, "").result[0].generate_noise
            ours = (lambda f=gen: f(latent))
            n_ours = _inner(ours)
            pair, ours_ms = [], []
            for i in range(a.pairs):
                if i % 2 == 0:
                    tc, to = _per_call(comfy, n_comfy), _per_call(ours, n_ours)
                else:
                    to, tc = _per_call(ours, n_ours), _per_call(comfy, n_comfy)
                pair.append(to / tc)
                ours_ms.append(to * 1e3)
                comfy_ms.append(tc * 1e3)
            ratios[key][mode] = spread(pair)
            ms[key][mode] = round(statistics.median(ours_ms), 3)
        ms[key]["comfy"] = round(statistics.median(comfy_ms), 3)
    print(f"torch threads {a.threads}; ratio = mode / ComfyUI noise, median [min, max] of {a.pairs} interleaved pairs")
    for key, r in ratios.items():
        print(f"{key:>16} comfy {ms[key]['comfy']:8.2f} ms  " + "  ".join(
            f"{m} {ms[key][m]:.2f} ms x{v['median']:.3f} [{v['min']:.3f}, {v['max']:.3f}]" for m, v in r.items()))
    worst = max(ratios, key=lambda k: ratios[k]["shared"]["median"])
    print(f"ratio_vs_comfy (shared mode, larger of the two shapes: {worst}): {ratios[worst]['shared']['median']:.3f}"
          f"  (target <= 1.2)")
    prof = profile_top(SHAPES[0])
    write_results("noise", {
        "profile": prof,
        "ratio_vs_comfy": ratios[worst]["shared"],
        "ratio_vs_comfy_shape": worst,
        "ratios": ratios,
        "ms_median": ms,
        "target": "<= 1.2",
        "threads": a.threads,
        "clock": "process CPU time (time.process_time), one torch thread",
    })


if __name__ == "__main__":
    main()
