"""The bundled motion workflows run headless through tools/run_workflow.py (made tiny with --set)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tools" / "run_workflow.py"
INPUTS = ROOT / "workflows" / "inputs"


def _run(workflow: str, tmp_path: Path, sets: list[str], models_dir: Path | None = None, timeout=600):
    cmd = [sys.executable, str(RUNNER), str(ROOT / "workflows" / workflow), "--input-dir", str(INPUTS),
           "--output-dir", str(tmp_path / "out"), "--quiet"]
    if models_dir is not None:
        cmd += ["--models-dir", str(models_dir)]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted((tmp_path / "out").rglob("*.webp"))


def _frames(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        return im.n_frames, im.size


def _node_types(workflow: str) -> set[str]:
    return {n["type"] for n in json.loads((ROOT / "workflows" / workflow).read_text())["nodes"]}


def test_motion_transfer_workflow_runs_headless(tmp_path):
    assert {"LoadVideo", "MotionDecomposer", "MotionCombiner"} <= _node_types("motion_transfer.json")
    files = _run("motion_transfer.json", tmp_path,
                 ["3.length=4", "7.length=5", "4.width=64", "4.height=36", "8.width=64", "8.height=36"])
    assert len(files) == 1
    assert _frames(files[0]) == (5, (64, 36))  # B's frame count (its motion), A's/B's size


def test_dual_stream_workflow_runs_headless(tmp_path, sd15_ckpt):
    types = _node_types("dual_stream_video.json")
    assert {"CheckpointLoaderSimple", "CrossStreamAttention", "MotionSmoothingPatch", "MotionDecomposer",
            "MotionCombiner"} <= types
    files = _run("dual_stream_video.json", tmp_path,
                 ["4.width=64", "4.height=64", "9.width=64", "9.height=64", "8.length=3", "5.steps=1", "16.steps=1"],
                 models_dir=Path(sd15_ckpt).parent.parent)
    assert len(files) == 1
    assert _frames(files[0]) == (3, (64, 64))
