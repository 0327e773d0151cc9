"""The weight-free demo (`make demo`): workflows/flow_upsample_demo.json runs headless through the lead's
runner (in-process), with no model weights, and writes an MP4 with 4x-3 frames whose every 4th frame
is the bundled clip's frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "workflows" / "Frame interpolation x4 - no weights.json"
INPUTS = ROOT / "clips"  # the template reads it through LoadBundledClip; input/ may be empty
CLIP = INPUTS / "bbb_flow_demo.mp4"


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], rate


def test_flow_upsample_demo_writes_4x_video(comfy, tmp_path):
    import folder_paths

    from runner import headless as run_workflow

    src, src_fps = decode(CLIP)
    old_out, old_in = folder_paths.get_output_directory(), folder_paths.get_input_directory()
    try:
        res = run_workflow.run(str(WORKFLOW), output_dir=str(tmp_path), input_dir=str(INPUTS), quiet=True)
    finally:
        folder_paths.set_output_directory(old_out)
        folder_paths.set_input_directory(old_in)

    videos = [Path(f) for f in res["files"] if f.endswith(".mp4")]
    assert len(videos) == 1 and videos[0].is_file() and videos[0].is_relative_to(tmp_path)
    assert videos[0].name.startswith("flow_upsample_x4")
    out, out_fps = decode(videos[0])
    assert len(out) == 4 * len(src) - 3, (len(out), len(src))
    assert abs(out_fps - 4 * src_fps) < 1e-3
    assert out[0].shape == src[0].shape
    # every 4th output frame is an original (up to the MP4 re-encode)
    f = [x.astype(np.float64) for x in out]
    s = [x.astype(np.float64) for x in src]
    kept = np.mean([np.abs(f[4 * i] - s[i]).mean() for i in range(len(s))])
    assert kept < 4.0, kept

    def d(a, b):
        return float(np.abs(a - b).mean())

    # the new frames follow time (issue 10: the old `blend > 0` could not fail): over the pairs that move,
    # t = 1/4 is nearer to frame i than t = 3/4 is, and t = 3/4 nearer to frame i+1 than t = 1/4 is
    # (fails if the new frames are copies of one neighbour, or in the wrong order) ...
    moving = [i for i in range(len(s) - 1) if d(s[i], s[i + 1]) > 2.0]
    assert len(moving) >= 5, moving
    order_ok = [d(f[4 * i + 1], s[i]) < d(f[4 * i + 3], s[i]) and d(f[4 * i + 3], s[i + 1]) < d(f[4 * i + 1], s[i + 1])
                for i in moving]
    assert all(order_ok), order_ok
    # ... and the middle frame is a new frame between them, not a copy of either neighbour (fails when every pair
    # is treated as a scene cut and filled by repetition)
    for i in moving:
        step = d(s[i], s[i + 1])
        assert d(f[4 * i + 2], s[i]) > 0.25 * step and d(f[4 * i + 2], s[i + 1]) > 0.25 * step, i
