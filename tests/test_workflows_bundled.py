"""Every bundled template is UI format, matches its source script (workflow_sources/), converts to a prompt ComfyUI
validates with an empty input/ folder, has a thumbnail, groups with notes, no overlapping nodes, and declares the
models it needs; workflows/ holds nothing else."""
from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES_DIR = ROOT / "workflow_sources"
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
# model loader -> (its file input, the models/ folder the template declares, the random-weight file the tests use)
MODEL_LOADERS = {"CheckpointLoaderSimple": ("ckpt_name", "checkpoints", "random_sd15.safetensors"),
                 "ADE_LoadAnimateDiffModel": ("model_name", "animatediff_models", "random_mm_sd15_v2.safetensors"),
                 # Wan templates: random files written by support.dit_files.wan_model_files
                 "UNETLoader": ("unet_name", "diffusion_models", None), "CLIPLoader": ("clip_name", "text_encoders", None),
                 "VAELoader": ("vae_name", "vae", None),
                 # LTX-2 templates (ComfyUI 0.33+): the tiny checkpoint of support.dit_files.ltx2_model_files
                 "LTXAVTextEncoderLoader": ("text_encoder", "text_encoders", None),
                 "LTXVAudioVAELoader": ("ckpt_name", "checkpoints", None)}


def skip_missing_core_nodes(data: dict) -> None:
    """A template built on core nodes this ComfyUI lacks (the LTX-2 template's LTXAVTextEncoderLoader etc. exist from
    ComfyUI 0.33 on): skip with the node classes named, by feature detection."""
    import nodes

    missing = sorted({n["type"] for n in data["nodes"] if n["type"] != "Note"} - set(nodes.NODE_CLASS_MAPPINGS))
    if missing:
        pytest.skip(f"this ComfyUI has no node class {', '.join(missing)} (the template needs a newer ComfyUI)")


def load_needed_packs(src: dict) -> None:
    """Templates that use another node pack (``NEEDS_PACKS``): AnimateDiff-Evolved from ../shared/interop/ with the
    random v2 motion module in its model folder, or skip with the reason."""
    from support import ade as ade_support

    for pack in src.get("NEEDS_PACKS") or []:
        assert pack == "ComfyUI-AnimateDiff-Evolved", f"no test loader for {pack}"
        if not ade_support.available():
            pytest.skip(ade_support.MISSING)
        import folder_paths

        from support import motion_module

        ade_support.load_ade()
        folder_paths.add_model_folder_path("animatediff_models", str(motion_module.random_motion_module("v2").parent))


def _sources() -> dict[str, dict]:
    out = {}
    for src in sorted(SOURCES_DIR.glob("[a-z]*.py")):
        g = vars(importlib.import_module(f"workflow_sources.{src.stem}"))
        assert g["NAME"] not in out, f"two sources write {g['NAME']}"
        out[g["NAME"]] = {**g, "path": src}
    return out


def _rects(data: dict) -> list[tuple[int, float, float, float, float]]:
    """(id, x0, y0, x1, y1) of every node, title bar included (LiteGraph draws it above pos)."""
    return [(n["id"], n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
            for n in data["nodes"]]


def overlapping(data: dict) -> list[tuple[int, int]]:
    r = _rects(data)
    return [(a[0], b[0]) for k, a in enumerate(r) for b in r[k + 1:]
            if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]]


def test_workflows_folder_holds_only_templates_and_thumbnails():
    files = sorted(p.name for p in (ROOT / "workflows").iterdir())
    assert all(f.endswith((".json", ".jpg")) for f in files), files
    stems = {Path(f).stem for f in files}
    assert stems == {p.stem for p in WORKFLOWS}, "every template has a .jpg thumbnail and every .jpg a template"
    assert set(_sources()) == stems, "every template has exactly one source script"


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
            # an input of several types lists the ones this ComfyUI has (FlowTemporalUpsample's rife_model adds
            # core's INTERP_MODEL from 0.33 on; the frontend takes input types from the node definition on load):
            # its first type, ours, is what the template keeps stable
            entry["inputs"] = [(i["name"], i["type"].split(",")[0], (i.get("widget") or {}).get("name"))
                               for i in n["inputs"]]
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
def test_bundled_workflow_matches_source_and_validates(comfy, pack, path, sd15_ckpt, tmp_path):
    from runner import headless as run_workflow

    data = json.loads(path.read_text())
    assert data.get("version") == 0.4 and data["nodes"] and "links" in data
    from workflow_sources._template import build

    src = _sources()[path.stem]
    load_needed_packs(src)
    skip_missing_core_nodes(data)
    built = build(src["NAME"], src["spec"], src["GROUPS"], src.get("MODELS"))
    pack_types = _pack_types()
    assert workflow_signature(built, pack_types) == workflow_signature(data, pack_types), \
        f"{path.name} is out of date: run {sys.executable} -m workflow_sources.{src['path'].stem}"
    # groups with a one-line Note each; no overlapping nodes; opens at a zoom where text is drawn
    notes = [n for n in data["nodes"] if n["type"] == "Note"]
    assert len(data["groups"]) >= 2 and len(notes) == len(data["groups"])
    assert all("\n" not in n["widgets_values"][0] and len(n["widgets_values"][0]) <= 80 for n in notes)
    assert not overlapping(data)
    assert data["extra"]["ds"]["scale"] >= 0.6
    # every model file a loader names is declared (name, url, directory), as ComfyUI's own templates do
    # (except the pack's own demonstration models, ``PACK_MODELS``: committed in models/, nothing to download)
    pack_models = src.get("PACK_MODELS", {})
    for n in data["nodes"]:
        if n["type"] in MODEL_LOADERS and n["id"] in pack_models:
            assert n["widgets_values"][0] == pack_models[n["id"]] and not n["properties"].get("models")
        elif n["type"] in MODEL_LOADERS:
            declared = n["properties"].get("models") or []
            assert [m["name"] for m in declared] == n["widgets_values"][:1]
            assert all(m["url"].startswith("https://") and m["directory"] == MODEL_LOADERS[n["type"]][1] for m in declared)
    # validates with an empty input/ folder (the random checkpoint swapped in, as the headless tests do)
    empty = tmp_path / "input"
    empty.mkdir()
    run_workflow.setup_comfy(None, str(empty), [str(Path(sd15_ckpt).parent.parent)], None)
    prompt, fmt = run_workflow.load_workflow(str(path))
    assert fmt == "ui"
    from support.dit_files import wan_model_files  # the random Wan files (tests/test_dit_attention_workflows.py)

    swap = {"CheckpointLoaderSimple": "random_sd15.safetensors"}
    if any(node["class_type"] in ("UNETLoader", "CLIPLoader", "VAELoader") for node in prompt.values()):
        files = wan_model_files(sd15_ckpt)
        swap.update({"UNETLoader": files["unet_name"], "CLIPLoader": files["clip_name"], "VAELoader": files["vae_name"]})
    if any(node["class_type"] in ("LTXAVTextEncoderLoader", "LTXVAudioVAELoader") for node in prompt.values()):
        from support.dit_files import ltx2_model_files

        ltx2 = ltx2_model_files(sd15_ckpt)
        swap.update({"CheckpointLoaderSimple": ltx2["ckpt_name"], "LTXVAudioVAELoader": ltx2["ckpt_name"],
                     "LTXAVTextEncoderLoader": ltx2["clip_name"]})
    if pack_models:  # validated with the pack's files themselves, in the same models folder
        from support.trained import demo_models_dir

        assert demo_models_dir() == Path(sd15_ckpt).parent.parent
    for nid, node in prompt.items():
        if int(nid) in pack_models:
            continue
        if node["class_type"] == "LTXAVTextEncoderLoader":
            node["inputs"]["ckpt_name"] = swap["CheckpointLoaderSimple"]
        if node["class_type"] in MODEL_LOADERS:
            name, _, random_file = MODEL_LOADERS[node["class_type"]]
            node["inputs"][name] = swap.get(node["class_type"], random_file)
    valid, error, outputs, node_errors = asyncio.run(__import__("execution").validate_prompt("t", prompt, None))
    assert valid, run_workflow.format_validation_errors(prompt, error, node_errors)
    assert outputs
