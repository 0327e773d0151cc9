"""Broken files: malformed workflow JSON given to the headless runner names the node and the problem.
(Broken RIFE weight files are tested with the flow node, tests/test_flow*.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ui(nodes, links):
    return {"version": 0.4, "nodes": nodes, "links": links}


def _node(nid, ctype, widgets=(), inputs=(), outputs=()):
    return {"id": nid, "type": ctype, "mode": 0, "widgets_values": list(widgets), "inputs": list(inputs),
            "outputs": list(outputs)}


def _scale(link):
    return _node(2, "ImageScale", ["bilinear", 32, 32, "disabled"],
                 inputs=[{"name": "image", "type": "IMAGE", "link": link}])


def _empty():
    return _node(1, "EmptyImage", [32, 16, 2, 0], outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [1]}])


BROKEN = [
    ("broken link: missing from links", _ui([_empty(), _scale(7)], [[1, 1, 0, 2, 0, "IMAGE"]]),
     r"node 2 \(ImageScale\) input 'image': broken link 7 is not in the workflow's links"),
    ("broken link: origin node missing", _ui([_scale(1)], [[1, 5, 0, 2, 0, "IMAGE"]]),
     r"node 2 \(ImageScale\) input 'image': broken link 1 comes from node 5, which is not in the workflow"),
    ("unknown node type", _ui([_node(3, "NoSuchNode", [1])], []), r"node 3: unknown node class 'NoSuchNode'"),
    ("too many widget values", _ui([_node(1, "EmptyImage", [32, 16, 2, 0, 9])], []),
     r"node 1 \(EmptyImage\): widgets_values has 5 values but the node's widgets .* take only 4"),
    # too few widget values are filled with the schema defaults, as the frontend does (tests/test_compat_comfy033.py);
    # a required input that is neither linked nor a widget is still named
    ("required input missing", _ui([_node(1, "EmptyImage", [32]), _node(2, "PreviewImage", inputs=[
        {"name": "images", "type": "IMAGE", "link": None}])], []),
     r"node 2 \(PreviewImage\) input 'images'.*[Rr]equired input is missing"),
    ("not JSON", "{nodes: [", r"not valid JSON"),
]


@pytest.mark.parametrize("what,workflow,error", BROKEN, ids=[b[0] for b in BROKEN])
def test_runner_names_node_and_problem(comfy, tmp_path, what, workflow, error):
    from runner import headless as run_workflow

    path = tmp_path / "wf.json"
    path.write_text(workflow if isinstance(workflow, str) else json.dumps(workflow))
    with pytest.raises(run_workflow.RunError, match=error):
        run_workflow.run(str(path), output_dir=str(tmp_path / "out"), quiet=True)


def test_runner_cli_exit_code_and_message_for_broken_link(tmp_path):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(BROKEN[0][1]))
    proc = subprocess.run([sys.executable, "-m", "runner", str(path), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "broken link 7" in proc.stderr, proc.stderr[-2000:]
