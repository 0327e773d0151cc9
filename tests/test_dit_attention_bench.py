"""bench/dit.py (python -m bench.dit) in its quick mode: it runs, checks its invariants, and its targets can fail."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _targets(res: dict) -> dict:
    """bench.dit.targets(res), in a subprocess: bench/ imports the test fixtures as ``tests.support``, a name that
    ComfyUI's own ``tests`` package holds inside this (bootstrapped) test process."""
    code = "import json, sys; from bench.dit import targets; print(json.dumps(targets(json.loads(sys.argv[1]))))"
    p = subprocess.run([sys.executable, "-c", code, json.dumps(res)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_quick_mode_runs_and_reports_every_target(tmp_path):
    out = tmp_path / "dit.json"
    p = subprocess.run([sys.executable, "-m", "bench.dit", "--quick", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["invariants_hold"] and data["pairs"] >= 5 and data["threads"] == 1
    assert set(data["targets"]) == {f"wan21_t2v.tiny.{n}"
                                    for n in ("reference", "cross_window_anchor", "noise", "smoothing")}
    ratios = data["families"]["wan21_t2v"]["tiny"]["ratios"]
    assert all(len(r["pairs"]) >= 5 and r["min"] <= r["median"] <= r["max"] for r in ratios.values())


def test_targets_fail_above_their_limits():
    res = {"ltx2": {"tiny": {"latent": [1, 128, 5, 8, 8], "not_run": {"smoothing": "boom"},
                             "ratios": {"reference": {"median": 1.31}, "cross_window_anchor": {"median": 1.15},
                                        "noise": {"median": 1.03}}}}}
    t = _targets(res)
    assert t["ltx2.tiny.reference"]["target"] == 1.3 and not t["ltx2.tiny.reference"]["pass"]      # 1.10 + 1/5
    assert t["ltx2.tiny.cross_window_anchor"]["pass"] and not t["ltx2.tiny.noise"]["pass"]
    assert not t["ltx2.tiny.smoothing"]["pass"] and t["ltx2.tiny.smoothing"]["why"] == "boom"
