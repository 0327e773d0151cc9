"""Every bundled workflow is UI format, converts to a prompt ComfyUI validates, and matches its source script."""
from __future__ import annotations

import asyncio
import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_bundled_workflow_matches_source_and_validates(comfy, path, sd15_ckpt):
    from tools import run_workflow
    from tools.ui_workflow import build_ui_workflow

    data = json.loads(path.read_text())
    assert data.get("version") == 0.4 and data["nodes"] and "links" in data
    src = ROOT / "workflows" / "src" / f"{path.stem}.py"
    assert src.is_file(), f"no source script for {path.name}"
    spec = runpy.run_path(str(src), run_name="not_main")["spec"]
    assert build_ui_workflow(spec) == data, f"{path.name} is out of date: run .venv/bin/python {src.relative_to(ROOT)}"
    run_workflow.setup_comfy(None, str(ROOT / "workflows" / "inputs"), [str(Path(sd15_ckpt).parent.parent)], None)
    prompt, fmt = run_workflow.load_workflow(str(path))
    assert fmt == "ui"
    valid, error, outputs, node_errors = asyncio.run(__import__("execution").validate_prompt("t", prompt, None))
    assert valid, run_workflow.format_validation_errors(prompt, error, node_errors)
    assert outputs
