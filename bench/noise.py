"""BaseResidualNoise.generate_noise against ComfyUI's Noise_RandomNoise, same shapes, same run.

    python bench/noise.py          -> bench/results/noise.json (key ratio_vs_comfy = the larger ratio)
"""
from __future__ import annotations

import _common  # noqa: F401  (puts the repo on sys.path)
import torch
from _common import timeit_many, write_results

from tools import comfy_env

comfy_env.bootstrap()
pack = comfy_env.load_pack_module()
from comfy_extras.nodes_custom_sampler import Noise_RandomNoise  # noqa: E402

from coherent_video.nodes.base_residual_noise import BaseResidualNoise  # noqa: E402

SHAPES = [(16, 4, 64, 64), (256, 4, 96, 96)]


def main():
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared 2-core machine multi-threaded elementwise "
                         "kernels time thread contention, not the work)")
    threads = ap.parse_args().threads
    torch.set_num_threads(threads)
    rows, ratios = [], {}
    for shape in SHAPES:
        latent = {"samples": torch.zeros(shape)}
        fns = {"comfy": Noise_RandomNoise(1).generate_noise}
        for mode in ("shared", "mixed", "progressive"):
            fns[mode] = BaseResidualNoise.execute(1, mode, 0.5, 1.0, -1, "").result[0].generate_noise
        times = timeit_many({k: (lambda f=f: f(latent)) for k, f in fns.items()}, repeat=15)
        t_comfy = times.pop("comfy")
        per_mode = times
        key = "x".join(map(str, shape))
        ratios[key] = {m: t / t_comfy for m, t in per_mode.items()}
        rows.append((key, t_comfy, per_mode))
    print(f"{'shape':>16} {'comfy ms':>9} " + " ".join(f"{m + ' ms':>14} {'ratio':>6}" for m in per_mode))
    for key, tc, pm in rows:
        print(f"{key:>16} {tc * 1e3:9.2f} " + " ".join(f"{t * 1e3:14.2f} {t / tc:6.3f}" for t in pm.values()))
    worst_shared = max(r["shared"] for r in ratios.values())
    worst_any = max(max(r.values()) for r in ratios.values())
    print(f"ratio_vs_comfy (shared mode, larger of the two shapes): {worst_shared:.3f}  (target <= 1.2)")
    write_results("noise", {
        "ratio_vs_comfy": round(worst_shared, 4),
        "ratio_vs_comfy_any_mode": round(worst_any, 4),
        "ratios": {k: {m: round(v, 4) for m, v in r.items()} for k, r in ratios.items()},
        "ms": {k: {"comfy": round(tc * 1e3, 3), **{m: round(t * 1e3, 3) for m, t in pm.items()}} for k, tc, pm in rows},
        "target": "<= 1.2",
        "threads": threads,
    })


if __name__ == "__main__":
    main()
