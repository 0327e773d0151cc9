"""Every bundled workflow is UI format, converts to a prompt ComfyUI validates, and matches its source script."""
from __future__ import annotations

import asyncio
import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))


def workflow_signature(data: dict, pack_types: set[str]) -> dict:
    """What a bundled workflow says that is ours to keep stable: every node's type, mode, title and widget
    values; every link by (source node, source slot, target node, target input NAME, type); and the full
    input/output lists of our own nodes. Core nodes' input lists are core's schema (ComfyUI 0.35 added
    inputs to several), so they are compared only through the links and widget values."""
    nodes = {}
    slot_names = {}
    for n in data["nodes"]:
        entry = {"type": n["type"], "mode": n.get("mode", 0), "title": n.get("title"),
                 "widgets_values": n.get("widgets_values")}
        if n["type"] in pack_types:
            entry["inputs"] = [(i["name"], i["type"], (i.get("widget") or {}).get("name")) for i in n["inputs"]]
            entry["outputs"] = [(o["name"], o["type"]) for o in n.get("outputs", [])]
        nodes[n["id"]] = entry
        slot_names[n["id"]] = [i["name"] for i in n.get("inputs", [])]
    links = sorted((src, slot, dst, slot_names[dst][dslot], t) for _, src, slot, dst, dslot, t in data["links"])
    return {"nodes": nodes, "links": links}


def _pack_types() -> set[str]:
    from coherent_video.nodes import all_nodes

    return {cls.GET_SCHEMA().node_id for cls in all_nodes()}


def test_signature_ignores_core_inputs_but_not_ours(comfy, pack):
    data = json.loads(WORKFLOWS[0].read_text())
    pack_types = _pack_types()
    core = next(n for n in data["nodes"] if n["type"] not in pack_types and n.get("inputs"))
    ours = next(n for n in data["nodes"] if n["type"] in pack_types and n.get("outputs"))
    grown = json.loads(json.dumps(data))  # core gains an input in front of the others: link slots shift
    node = next(n for n in grown["nodes"] if n["id"] == core["id"])
    node["inputs"].insert(0, {"name": "new_core_input", "type": "FLOAT", "link": None, "widget": {"name": "x"}})
    for link in grown["links"]:
        if link[3] == core["id"]:
            link[4] += 1
    assert workflow_signature(grown, pack_types) == workflow_signature(data, pack_types)
    changed = json.loads(json.dumps(data))
    mine = next(n for n in changed["nodes"] if n["id"] == ours["id"])
    mine["outputs"][0]["type"] = "RENAMED"  # our node's schema is ours: a change must show
    assert workflow_signature(changed, pack_types) != workflow_signature(data, pack_types)


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_bundled_workflow_matches_source_and_validates(comfy, pack, path, sd15_ckpt):
    from tools import run_workflow
    from tools.ui_workflow import build_ui_workflow

    data = json.loads(path.read_text())
    assert data.get("version") == 0.4 and data["nodes"] and "links" in data
    src = ROOT / "workflows" / "src" / f"{path.stem}.py"
    assert src.is_file(), f"no source script for {path.name}"
    spec = runpy.run_path(str(src), run_name="not_main")["spec"]
    pack_types = _pack_types()
    assert workflow_signature(build_ui_workflow(spec), pack_types) == workflow_signature(data, pack_types), \
        f"{path.name} is out of date: run .venv/bin/python {src.relative_to(ROOT)}"
    run_workflow.setup_comfy(None, str(ROOT / "workflows" / "inputs"), [str(Path(sd15_ckpt).parent.parent)], None)
    prompt, fmt = run_workflow.load_workflow(str(path))
    assert fmt == "ui"
    valid, error, outputs, node_errors = asyncio.run(__import__("execution").validate_prompt("t", prompt, None))
    assert valid, run_workflow.format_validation_errors(prompt, error, node_errors)
    assert outputs
