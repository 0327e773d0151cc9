"""Docs where ComfyUI users read them: search aliases in /object_info, one help-panel doc per node in the pack's
web directory (``web/docs/<NodeId>.md``), generated from the node schemas by ``scripts/make_docs.py``.

The frontend (1.32.9 with 0.3.75, 1.49.6 with 0.33) fetches a custom node's help from
``/extensions/<pack folder>/docs/<NodeId>/<locale>.md``, then ``/extensions/<pack folder>/docs/<NodeId>.md``; the
pack folder is the second part of the node's ``python_module`` (``custom_nodes.<folder>``), and ComfyUI serves
``/extensions/<folder>/`` from ``nodes.EXTENSION_WEB_DIRS[<folder>]``, the pack's ``WEB_DIRECTORY``.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from scripts import make_docs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "web" / "docs"
PREFIX = "CoherentVideo_"


def pack_ids(comfy) -> list[str]:
    ids = sorted(k for k in comfy.NODE_CLASS_MAPPINGS if k.startswith(PREFIX))
    assert len(ids) >= 15, ids
    return ids


def object_info(comfy, node_id: str) -> dict:
    """What ``GET /object_info`` serves for a node: server.py's ``node_info`` returns a V3 node's
    ``GET_NODE_INFO_V1()`` (both versions), and ``web.json_response`` sends it as JSON."""
    from comfy_api.internal import _ComfyNodeInternal

    cls = comfy.NODE_CLASS_MAPPINGS[node_id]
    assert issubclass(cls, _ComfyNodeInternal), f"{node_id} is not a V3 node"
    return json.loads(json.dumps(cls.GET_NODE_INFO_V1()))


def section(doc: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    assert m, f"no '## {title}' section"
    return m.group(1)


def table_rows(text: str) -> list[list[str]]:
    rows = [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in text.splitlines() if line.startswith("| `")]
    return [[c.strip() for c in row] for row in rows]


# --- search aliases ------------------------------------------------------------------------------------------

def test_every_pack_node_reports_search_aliases_in_object_info(comfy):
    from comfy_api.latest import io

    if "search_aliases" not in {f.name for f in dataclasses.fields(io.Schema)}:
        pytest.skip("this ComfyUI's io.Schema has no search_aliases and its /object_info serves none (0.3.75); "
                    "the nodes are found by name there")
    missing = {}
    for node_id in pack_ids(comfy):
        aliases = object_info(comfy, node_id).get("search_aliases")
        if not aliases or not all(isinstance(a, str) and a.strip() for a in aliases):
            missing[node_id] = aliases
    assert not missing, f"pack nodes without search aliases in /object_info: {missing}"


def test_search_aliases_helper_follows_the_schema_field(comfy, pack):
    """On a ComfyUI without the field the helper passes nothing (io.Schema would reject the keyword)."""
    from comfy_api.latest import io

    from coherent_video.nodes._common import search_aliases  # noqa: F401  (imported as the pack)

    has_field = "search_aliases" in {f.name for f in dataclasses.fields(io.Schema)}
    got = search_aliases("a", "b")
    assert got == ({"search_aliases": ["a", "b"]} if has_field else {})
    io.Schema(node_id="x", **got)  # accepted by this version's Schema


# --- docs ----------------------------------------------------------------------------------------------------

def test_pack_web_directory_is_registered_and_holds_a_doc_per_node(comfy):
    """The folder ComfyUI serves as /extensions/<folder>/ is the one the frontend asks for: the folder named in
    our nodes' python_module, holding docs/<NodeId>.md for every pack node."""
    ids = pack_ids(comfy)
    modules = {object_info(comfy, i)["python_module"] for i in ids}
    assert len(modules) == 1, modules
    parts = modules.pop().split(".")
    assert parts[0] == "custom_nodes" and len(parts) == 2, f"the frontend reads the folder from {parts}"
    folder = parts[1].split("@")[0]  # the frontend's normalizePackId
    assert folder in comfy.EXTENSION_WEB_DIRS, (folder, sorted(comfy.EXTENSION_WEB_DIRS))
    web = Path(comfy.EXTENSION_WEB_DIRS[folder])
    assert web.resolve() == (ROOT / "web").resolve()
    missing = [i for i in ids if not (web / "docs" / f"{i}.md").is_file()]
    assert not missing, f"no web/docs/<NodeId>.md for {missing}"
    extra = sorted(p.stem for p in (web / "docs").glob("*.md") if p.stem not in ids)
    assert not extra, f"docs for nodes that are not registered: {extra}"


def test_doc_inputs_match_the_schema(comfy):
    """Each doc's input table lists the node's inputs in order, with required/optional and the default as
    /object_info serves them (parsed back from the doc, not re-rendered)."""
    for node_id in pack_ids(comfy):
        info = object_info(comfy, node_id)
        doc = (DOCS / f"{node_id}.md").read_text(encoding="utf-8")
        rows = table_rows(section(doc, "Inputs"))
        want = [(name, sec) for sec in ("required", "optional") for name in info["input_order"].get(sec, [])]
        assert [r[0].strip("`") for r in rows] == [n for n, _ in want], node_id
        for row, (name, sec) in zip(rows, want):
            spec = info["input"][sec][name]
            opts = spec[1] if len(spec) > 1 else {}
            assert row[2] == ("yes" if sec == "required" else "no"), f"{node_id}.{name} required"
            if "default" in opts:
                assert row[3].startswith("`"), f"{node_id}.{name}: no default in the doc ({row[3]})"
                assert json.loads(row[3].strip("`")) == opts["default"], f"{node_id}.{name} default {row[3]}"
            else:
                assert row[3] == "–", f"{node_id}.{name} has no default but the doc says {row[3]}"
            if opts.get("tooltip"):
                assert row[5].startswith(opts["tooltip"].replace("|", "\\|")), f"{node_id}.{name} tooltip"
        outs = [r[0].strip("`") for r in table_rows(section(doc, "Outputs"))]
        assert outs == info["output_name"], node_id


def test_docs_are_what_the_generator_writes(comfy, tmp_path):
    infos = {i: comfy.NODE_CLASS_MAPPINGS[i].GET_NODE_INFO_V1() for i in pack_ids(comfy)}
    make_docs.write_docs(tmp_path, infos)
    fresh, have = make_docs.doc_files(tmp_path), make_docs.doc_files(DOCS)  # the docs and their images, as bytes
    assert sorted(fresh) == sorted(have)
    stale = [n for n in fresh if fresh[n] != have[n]]
    assert not stale, f"web/docs is out of date for {stale}: run .venv/bin/python -m scripts.make_docs"


def test_docs_quote_readme_figures_and_commands():
    """Measured figures are copied from README.md or the node details in scripts/doc_sources/ (moved there from
    README.md; both quote bench/results/*.json), never made up: every decimal number and every bench command in a
    doc's Measured section appears in README.md or in a detail file. (Fails when a PROSE figure is edited to a
    number that neither holds.)"""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sources = "\n".join(p.read_text(encoding="utf-8") for p in sorted(make_docs.SOURCES.glob("*.md")))
    quoted = readme + "\n" + sources
    flat = " ".join(quoted.split())
    numbers = set(re.findall(r"\d+\.\d+", quoted))
    for path in sorted(DOCS.glob("*.md")):
        measured = section(path.read_text(encoding="utf-8"), "Measured")
        unknown = sorted(set(re.findall(r"\d+\.\d+", measured)) - numbers)
        assert not unknown, f"{path.name}: figures in neither README.md nor scripts/doc_sources/: {unknown}"
        for cmd in re.findall(r"Command: `([^`]+)`", measured):
            if "-m bench." in cmd:  # README writes some as `python -m bench.x`, most with `.venv/bin/`
                assert cmd.removeprefix(".venv/bin/") in flat, f"{path.name}: command quoted nowhere: {cmd}"
    for name, prose in make_docs.PROSE.items():
        for line in ("when", "summary"):
            assert prose[line].strip(), f"{name}: empty {line}"


def test_every_detail_file_reaches_a_doc_and_readme_indexes_every_doc():
    """What moved from README.md into scripts/doc_sources/ is in the docs (no detail file is left out of DETAILS,
    each doc holds its details verbatim), and README's node index links every doc. (Fails when a DETAILS entry
    drops a file, or a README index line is removed.)"""
    used = {f for files in make_docs.DETAILS.values() for f in files}
    files = {p.name for p in make_docs.SOURCES.glob("*.md")}
    assert files == used, f"detail files no doc uses: {sorted(files - used)}; named but missing: {sorted(used - files)}"
    for name, fnames in make_docs.DETAILS.items():
        doc = (DOCS / f"{PREFIX}{name}.md").read_text(encoding="utf-8")
        for fname in fnames:
            assert (make_docs.SOURCES / fname).read_text(encoding="utf-8").strip() in section(doc, "Details"), \
                f"{name}: {fname} not in its doc"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = section(readme, "Nodes")
    missing = [p.name for p in DOCS.glob("*.md") if f"](web/docs/{p.name})" not in index]
    assert not missing, f"README's node index does not link {missing}"


def test_doc_model_rows_come_from_readme():
    """The model-support row of a doc is README's row for that node (read by the generator)."""
    rows = make_docs.model_rows((ROOT / "README.md").read_text(encoding="utf-8"))
    for name, prose in make_docs.PROSE.items():
        if prose["models"] is None:
            assert prose["models_text"], name
            continue
        doc = (DOCS / f"{PREFIX}{name}.md").read_text(encoding="utf-8")
        assert "| " + " | ".join(rows[prose["models"]].values()) + " |" in doc, name


def test_readme_first_screen_is_setup_main_job_and_node_index():
    """README's first screen (its first 60 lines) holds, in this order, the set-up commands, the main jobs and the
    node index with every doc linked; the detail (demo, runner) comes after the index. (Fails when the demo or the
    runner paragraph moves back above the node index, or a section is reordered.)"""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    first = "\n".join(lines[:60])
    order = [first.find(s) for s in ("make setup", "make test", "make demo ", "make demo-video", "python -m runner",
                                     "## Nodes")]
    assert -1 not in order and order == sorted(order), f"first screen out of order: {order}"
    assert all(f"](web/docs/{p.name})" in first for p in DOCS.glob("*.md")), "node index not on the first screen"
