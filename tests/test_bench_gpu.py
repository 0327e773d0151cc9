"""bench/gpu.py --dry-run: the GPU benchmark's own code at tiny sizes on the CPU (issue 15: it must run in CI,
so the script is ready when a GPU is lent). It never writes bench/results/gpu.json."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_bench_dry_run(tmp_path):
    gpu_json = ROOT / "bench" / "results" / "gpu.json"
    before = gpu_json.read_bytes() if gpu_json.exists() else None
    out = tmp_path / "gpu_dryrun.json"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu", "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["dry_run"] is True and res["device"].startswith("cpu")
    po = res["patch_overhead"]
    patches = {"ReferenceImageCondition", "CrossStreamAttention", "MotionSmoothingPatch", "BaseResidualNoiseModel"}
    assert set(po["step_ratio"]) == patches
    for s in po["step_ratio"].values():
        assert s["min"] <= s["median"] <= s["max"] and all(math.isfinite(s[k]) and s[k] > 0 for k in ("min", "max"))
    assert set(po["peak_vram_bytes"]) == patches | {"unpatched"}
    core = res["flow"]["core_rife"].startswith("core FrameInterpolate")  # ComfyUI 0.33+: core's node beside ours
    print("core FrameInterpolate in the flow comparison:", res["flow"]["core_rife"])
    for size in ("64x64", "128x72"):
        for method in ("ours_balanced", "rife") + (("core_rife",) if core else ()):
            assert res["flow"][size][method]["new_frames_per_s"] > 0
    assert (gpu_json.read_bytes() if gpu_json.exists() else None) == before
    peers = res["peers_reference"]
    if "skipped" in peers:  # ComfyUI 0.3.75: Advanced-ControlNet v1.5.8 does not load there
        print("peers_reference skipped:", peers["skipped"])
        assert "Advanced-ControlNet" in peers["skipped"]
    else:
        entry = peers["4x4_f2"]
        for key in ("ours_attn_vs_unpatched", "theirs_attn_vs_unpatched", "ours_vs_theirs_attn",
                    "ours_vs_theirs_attn_adain"):
            assert math.isfinite(entry[key]["median"]) and entry[key]["median"] > 0
        assert set(entry["result_check"]["change_norm_rel_to_unpatched"]) == {
            "ours_attn", "ours_attn_adain", "theirs_attn", "theirs_attn_adain"}
