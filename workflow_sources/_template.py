"""Build a bundled template (``workflows/<NAME>.json``, UI format) from a compact source script.

Conventions for every template (follow them when adding one):
- one script here per template: ``NAME`` (the file stem; it is the title the Templates dialog shows, so it reads as
  one), ``spec`` (nodes and links, see _builder.py), ``GROUPS``, optional ``MODELS`` and ``NEEDS_PACKS`` (other
  node packs the template uses: tests load them from ../shared/interop/ or skip with the reason);
- ``GROUPS``: one per step, in reading order: ``{"title": ..., "note": one line, "at": (x, y), "cols": [[ids], ...]}``.
  Every group gets a Note node with its one line; the nodes are stacked in columns inside the group. Node
  positions in ``spec`` are ignored;
- ``MODELS``: ``{node id: [{"name", "url", "directory"}]}`` for the weight files, named as ComfyUI's own templates
  name them, so the frontend's missing-models dialog offers the download. Headless tests swap in the random-weight
  checkpoint with ``--set`` (tests/support/testing.py does it for every CheckpointLoaderSimple);
- ``PACK_MODELS``: ``{node id: file name}`` instead, for loaders of the pack's own demonstration models (committed in
  models/, linked into a models folder by ``python -m scripts.demo_models``): nothing to download, so no URL;
- a thumbnail ``workflows/<NAME>.jpg``: real output for model-free templates, a picture of the graph otherwise
  (``make test-browser`` writes both kinds under ``output/browser/``; copy them with
  ``THUMBNAILS=1 make test-browser``);
- regenerate with ``.venv/bin/python -m workflow_sources.<script>`` from the repository root;
  tests/test_workflows_bundled.py checks the JSON matches its script.
"""
from __future__ import annotations

from pathlib import Path

from runner import ROOT, bootstrap, init_all_nodes

SD15 = {"name": "v1-5-pruned-emaonly-fp16.safetensors",
        "url": "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
               "v1-5-pruned-emaonly-fp16.safetensors?download=true",
        "directory": "checkpoints"}

_WAN21 = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
# The Wan 2.1 files as ComfyUI's own Wan 2.1 text-to-video template names them (diffusion model, text encoder, VAE).
WAN21_T2V_1_3B = {"name": "wan2.1_t2v_1.3B_fp16.safetensors",
                  "url": _WAN21 + "diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors?download=true",
                  "directory": "diffusion_models"}
UMT5_XXL_FP8 = {"name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                "url": _WAN21 + "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors?download=true",
                "directory": "text_encoders"}
WAN21_VAE = {"name": "wan_2.1_vae.safetensors", "url": _WAN21 + "vae/wan_2.1_vae.safetensors?download=true",
             "directory": "vae"}

_WAN22 = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
# The Wan 2.2 14B image-to-video files as ComfyUI's own template (video_wan2_2_14B_i2v) names them: two experts
# (high noise, low noise), the Wan 2.1 text encoder, and the Wan 2.1 VAE from the Wan 2.2 repository.
WAN22_I2V_HIGH = {"name": "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                  "url": _WAN22 + "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                  "directory": "diffusion_models"}
WAN22_I2V_LOW = {"name": "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                 "url": _WAN22 + "diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                 "directory": "diffusion_models"}
UMT5_XXL_FP8_WAN22 = {"name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                      "url": _WAN21 + "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                      "directory": "text_encoders"}
WAN22_VAE = {"name": "wan_2.1_vae.safetensors", "url": _WAN22 + "vae/wan_2.1_vae.safetensors", "directory": "vae"}

# The LTX-2 files as ComfyUI's own LTX-2 image-to-video template (video_ltx2_i2v) names them: one checkpoint (the
# video model, video VAE, audio VAE and text projection; LTXVAudioVAELoader and LTXAVTextEncoderLoader read it too)
# and the Gemma 3 12B text encoder.
# MiniMax H3: the files of ComfyUI's own MiniMax H3 templates (comfyui_workflow_templates, video_minimax_h3_t2v)
_H3 = "https://huggingface.co/Comfy-Org/MiniMax-H3/resolve/main/"
MINIMAX_H3_INT8 = {"name": "minimax_h3_fl2va_pruned_int8_convrot.safetensors",
                   "url": _H3 + "diffusion_models/minimax_h3_fl2va_pruned_int8_convrot.safetensors",
                   "directory": "diffusion_models"}
QWEN3VL_32B_H3 = {"name": "qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors",
                  "url": _H3 + "text_encoders/qwen3vl_32b_minimax_h3_nvfp4_awq.safetensors",
                  "directory": "text_encoders"}
MINIMAX_H3_VIDEO_VAE = {"name": "minimax_h3_video_vae_fp16.safetensors",
                        "url": _H3 + "vae/minimax_h3_video_vae_fp16.safetensors", "directory": "vae"}
MINIMAX_H3_AUDIO_VAE = {"name": "minimax_h3_audio_vae_fp32.safetensors",
                        "url": _H3 + "vae/minimax_h3_audio_vae_fp32.safetensors", "directory": "vae"}
LTX2_19B_DEV_FP8 = {"name": "ltx-2-19b-dev-fp8.safetensors",
                    "url": "https://huggingface.co/Lightricks/LTX-2/resolve/main/ltx-2-19b-dev-fp8.safetensors",
                    "directory": "checkpoints"}
GEMMA3_12B_FP4 = {"name": "gemma_3_12B_it_fp4_mixed.safetensors",
                  "url": "https://huggingface.co/Comfy-Org/ltx-2/resolve/main/split_files/text_encoders/"
                         "gemma_3_12B_it_fp4_mixed.safetensors",
                  "directory": "text_encoders"}

COL_W, COL_GAP, ROW_GAP, TITLE_H = 340, 50, 40, 30
WIDE = {"CLIPTextEncode": 400}
GROUP_PAD, GROUP_TITLE = 20, 40
NOTE_H = 88  # the frontend's height for a one-line Note
VIEW = {"scale": 0.8, "offset": [90, 150]}  # the zoom the template opens with: titles and widgets readable


# Widgets that newer ComfyUI added to core nodes at the end of their inputs: a template saved with the 0.3.75 values
# still opens there, and a 0.33 frontend shows these too (with their defaults), so their room is kept free.
NEWER_WIDGETS = {"WanContextWindowsManual": 3,   # 0.33: freenoise, retain_first_frame, split_conds_to_windows
                 "ContextWindowsManual": 4}      # 0.33: freenoise, cond/latent_retain_index_list, causal_window_fix


def node_height(node: dict) -> int:
    """The body height (without the title bar) the frontend (1.32) gives a node: 20 px per slot row, 24 px per
    widget (a seed's control_after_generate is one more), 14 px margin; a multiline prompt box is 136 px."""
    if node["type"] == "CLIPTextEncode":
        return 136
    n_in = sum(1 for i in node["inputs"] if "widget" not in i)
    widgets = len(node["widgets_values"]) + NEWER_WIDGETS.get(node["type"], 0)
    return max(n_in, len(node["outputs"])) * 20 + widgets * 24 + 14


def build(name: str, spec: list[dict], groups: list[dict], models: dict | None = None) -> dict:
    from workflow_sources._builder import build_ui_workflow

    wf = build_ui_workflow(spec)
    by_id = {n["id"]: n for n in wf["nodes"]}
    placed = [i for g in groups for col in g["cols"] for i in col]
    assert sorted(placed) == sorted(by_id), f"{name}: every node in exactly one group ({sorted(placed)})"
    next_id = max(by_id) + 1
    out_groups = []
    for g in groups:
        x0, y0 = g["at"]
        top = y0 + GROUP_TITLE + TITLE_H
        note = {"id": next_id, "type": "Note", "pos": [x0 + GROUP_PAD, top], "flags": {}, "order": 0, "mode": 0,
                "inputs": [], "outputs": [], "properties": {"text": ""}, "widgets_values": [g["note"]],
                "color": "#432", "bgcolor": "#653"}
        next_id += 1
        width_all = len(g["cols"]) * COL_W + (len(g["cols"]) - 1) * COL_GAP
        note["size"] = [max(width_all, 300), NOTE_H]
        wf["nodes"].append(note)
        bottom = top + NOTE_H
        x = x0 + GROUP_PAD
        for col in g["cols"]:
            y = top + NOTE_H + ROW_GAP + TITLE_H
            col_w = max(WIDE.get(by_id[i]["type"], COL_W) for i in col)
            for i in col:
                n = by_id[i]
                n["pos"] = [x, y]
                n["size"] = [col_w, node_height(n)]
                y += n["size"][1] + ROW_GAP + TITLE_H
                bottom = max(bottom, n["pos"][1] + n["size"][1])
            x += col_w + COL_GAP
        right = max(x - COL_GAP, x0 + GROUP_PAD + note["size"][0])
        out_groups.append({"title": g["title"], "bounding": [x0, y0, right + GROUP_PAD - x0, bottom + GROUP_PAD - y0],
                           "color": g.get("color", "#3f789e"), "font_size": 24, "flags": {}})
    for nid, entries in (models or {}).items():
        by_id[nid]["properties"]["models"] = entries
    order = {n["id"]: k for k, n in enumerate(wf["nodes"])}
    wf["nodes"].sort(key=lambda n: order[n["id"]])
    wf["last_node_id"] = next_id - 1
    wf["groups"] = out_groups
    wf["extra"] = {"ds": dict(VIEW)}
    if models:
        unique = {e["name"]: e for entries in models.values() for e in entries}  # a file several loaders read: once
        wf["models"] = list(unique.values())
    return wf


INTEROP = ROOT.parent / "shared" / "interop"  # unmodified third-party packs the interop tests use


def load_packs(packs) -> None:
    """Load other node packs a template needs (``NEEDS_PACKS``) that ComfyUI's custom_nodes/ does not hold, from
    ``../shared/interop/<pack>``; a clear error when neither has it."""
    import asyncio

    import folder_paths
    import nodes

    for pack in packs or []:
        if any((Path(d) / pack).is_dir() for d in folder_paths.get_folder_paths("custom_nodes")):
            continue  # init_all_nodes loaded it
        where = INTEROP / pack
        if not (where / "__init__.py").is_file():
            raise SystemExit(f"this template needs the node pack {pack}: install it in ComfyUI's custom_nodes/ "
                             f"or put it at {where}")
        if str(where) not in nodes.LOADED_MODULE_DIRS.values():
            asyncio.run(nodes.load_custom_node(str(where)))


def write(name: str, spec: list[dict], groups: list[dict], models: dict | None = None, packs=()) -> Path:
    """Boot ComfyUI, load every node (and the other packs the template needs), write ``workflows/<name>.json``."""
    import json

    bootstrap()
    init_all_nodes()
    load_packs(packs)
    path = ROOT / "workflows" / f"{name}.json"
    path.write_text(json.dumps(build(name, spec, groups, models), indent=1) + "\n")
    return path


def write_graph_thumbnail(name: str, width: int = 768) -> Path:
    """``workflows/<name>.jpg``: a picture of the template's graph (groups, nodes and their titles) drawn from its
    JSON, for templates the browser test cannot open (they need another node pack); the browser test draws the
    others (``THUMBNAILS=1 make test-browser``)."""
    import json

    from PIL import Image, ImageDraw

    wf = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    boxes = [g["bounding"] for g in wf["groups"]]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    s = width / (x1 - x0 + 40)
    img = Image.new("RGB", (width, int((y1 - y0 + 40) * s)), "#202020")
    d = ImageDraw.Draw(img)

    def xy(x, y):
        return (x - x0 + 20) * s, (y - y0 + 20) * s

    for g in wf["groups"]:
        gx, gy, gw, gh = g["bounding"]
        d.rectangle([*xy(gx, gy), *xy(gx + gw, gy + gh)], outline=g.get("color", "#3f789e"), width=2)
        d.text(xy(gx + 8, gy + 6), g["title"], fill="#dddddd")
    for n in wf["nodes"]:
        (nx, ny), (nw, nh) = n["pos"], n["size"]
        fill = "#653" if n["type"] == "Note" else ("#335" if n["type"].startswith("CoherentVideo_") else "#353535")
        d.rectangle([*xy(nx, ny - TITLE_H), *xy(nx + nw, ny + nh)], fill=fill, outline="#666666")
        d.text(xy(nx + 6, ny - TITLE_H + 6), n.get("title") or n["type"], fill="#eeeeee")
    path = ROOT / "workflows" / f"{name}.jpg"
    img.save(path, quality=90)
    return path
