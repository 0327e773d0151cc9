"""The bundled motion workflows run headless through python -m runner (made tiny with --set)."""
from __future__ import annotations

from pathlib import Path

from support.testing import run_workflow_cli, webp_frames, workflow_node_types


def _run(workflow, tmp_path, sets, models_dir=None):
    return [p for p in run_workflow_cli(workflow, tmp_path / "out", sets, models_dir) if p.suffix == ".webp"]


def test_motion_transfer_workflow_runs_headless(tmp_path):
    assert {"CoherentVideo_LoadBundledClip", "CoherentVideo_MotionDecomposer", "CoherentVideo_MotionCombiner"} <= workflow_node_types("Motion transfer between two clips - no weights.json")
    files = _run("Motion transfer between two clips - no weights.json", tmp_path,
                 ["3.length=4", "7.length=5", "4.width=64", "4.height=36", "8.width=64", "8.height=36"])
    assert len(files) == 1
    assert webp_frames(files[0]) == (5, (64, 36))  # B's frame count (its motion), A's/B's size


def test_dual_stream_workflow_runs_headless(tmp_path, sd15_ckpt):
    types = workflow_node_types("DSDN dual-stream video - SD1.5.json")
    assert {"CheckpointLoaderSimple", "CoherentVideo_CrossStreamAttention", "CoherentVideo_MotionSmoothingPatch",
            "CoherentVideo_MotionDecomposer", "CoherentVideo_MotionCombiner"} <= types
    files = _run("DSDN dual-stream video - SD1.5.json", tmp_path,
                 ["4.width=64", "4.height=64", "9.width=64", "9.height=64", "8.length=3", "5.steps=1", "16.steps=1"],
                 models_dir=Path(sd15_ckpt).parent.parent)
    assert len(files) == 1
    assert webp_frames(files[0]) == (3, (64, 64))
