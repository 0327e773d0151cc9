"""Every bundled template opened the way a user opens it: the real ComfyUI server (`main.py --cpu`, loopback, empty
input/), the real frontend in Debian's Chromium driven by Playwright, the Templates dialog. Run: `make test-browser`.

Per template: opened from the dialog's CoherentVideo category; no missing-nodes dialog; the missing-models dialog
lists exactly the models the template declares; no console error that names the pack; no overlapping nodes; opens
at a zoom where text is drawn; its .jpg thumbnail is served and shown on the card. Model-free templates are queued
from the page and must succeed in /history; one SD1.5 template is queued with the random checkpoint, shrunk in the
page. Screenshots go to output/browser/. Requests to anything but the local server are blocked (no internet).
With THUMBNAILS=1 the thumbnails are (re)written into workflows/: a real output frame for the model-free templates,
a picture of the whole graph for the others.
"""
from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from runner import ROOT, comfy_env

SHOTS = ROOT / "output" / "browser"  # (the server and the page are conftest.py's, shared with the docs test)
TEMPLATES = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
# queued from the page: the model-free templates, and the text-to-video demo (its small trained models are in the
# server's models folder: tests/support/trained.demo_models_dir)
DEMO = "Text-to-video demo - small models trained here"
MODEL_FREE = [t for t in TEMPLATES if t.endswith("no weights")] + [DEMO]


def needs_packs(name: str) -> list[str]:
    """Other node packs a template uses (its workflow_sources script's ``NEEDS_PACKS``)."""
    import importlib

    for src in sorted((ROOT / "workflow_sources").glob("[a-z]*.py")):
        mod = importlib.import_module(f"workflow_sources.{src.stem}")
        if mod.NAME == name:
            return list(getattr(mod, "NEEDS_PACKS", []))
    return []
SD_QUEUED = "Cross-frame attention video - SD1.5"
WRITE_THUMBS = os.environ.get("THUMBNAILS") == "1"
# console errors that come from the blocked outside requests or from the frontend itself before any template loads
NETWORK_NOISE = ("net::ERR_FAILED", "Failed to fetch", "Failed to load resource")


def _get(url: str, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def _dialog_texts(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('.p-dialog')].filter(d => d.offsetParent !== null)"
                         ".map(d => d.innerText)")


def _missing_report(page) -> list[str]:
    """What the frontend reports missing after a load. Frontend 1.32.9 (ComfyUI 0.3.75): dialogs. Frontend 1.49.6
    (ComfyUI 0.33): an error overlay ("X is missing" / "3 errors found", no dialog) whose "View details" opens the
    properties panel's Errors tab, one ``[data-testid=error-group-<kind>]`` per kind (missing-model: every file);
    the panel is toggled shut again, so the next template opens on the whole canvas."""
    texts = _dialog_texts(page)
    overlay = page.locator("[data-testid=error-overlay]")
    if overlay.count() and overlay.first.is_visible():
        texts.append(overlay.first.inner_text())
        overlay.first.get_by_text("View details").click()
        page.locator("[data-testid^=error-group-]").first.wait_for(timeout=15_000)
        texts += page.evaluate("[...document.querySelectorAll('[data-testid^=error-group-]')]"
                               ".filter(e => e.offsetParent !== null).map(e => `[${e.dataset.testid}] ${e.innerText}`)")
        page.get_by_label("Toggle properties panel").first.click()
        page.wait_for_timeout(500)
    return texts


def _close_dialogs(page):
    for _ in range(3):
        if not _dialog_texts(page):
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def _open_from_dialog(page, name: str):
    """Templates dialog -> the pack's category -> the card, as a user clicks them. Returns the card's image src."""
    _close_dialogs(page)
    page.evaluate("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text(comfy_env.PACK_NAME, exact=True).first.click()
    card = page.locator(f"[data-testid='template-workflow-{name}']")
    card.wait_for(timeout=30_000)
    card.scroll_into_view_if_needed()
    img = card.locator("img").first
    img.wait_for(timeout=15_000)
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=10_000)
    src, width = img.evaluate("(el) => [el.src, [el.naturalWidth, el.naturalHeight]]")
    card.click()
    page.wait_for_function(f"app.graph._nodes.length > 0 && app.graph._nodes.some(n => n.type !== 'Note') "
                           f"&& document.querySelectorAll('[data-testid=template-workflow-content]').length == 0",
                           timeout=30_000)
    page.wait_for_timeout(2500)  # the missing-models dialog comes after the graph
    return src, width


def _graph(page) -> dict:
    return page.evaluate("""(() => ({
        scale: app.canvas.ds.scale,
        nodes: app.graph._nodes.map(n => ({id: n.id, type: n.type, rect: [...n.boundingRect]})),
        groups: app.graph._groups.map(g => [...g._bounding]),
    }))()""")


def _overlaps(nodes) -> list[tuple]:
    out = []
    for k, a in enumerate(nodes):
        ax, ay, aw, ah = a["rect"]
        for b in nodes[k + 1:]:
            bx, by, bw, bh = b["rect"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append((a["id"], a["type"], b["id"], b["type"]))
    return out


def _server_has(base, model: dict) -> bool:
    """Whether the server lists this declared model in its folder (``GET /models/<directory>``, the lists the
    loaders offer; the test server has the random checkpoint and the demonstration models)."""
    try:
        return model["name"] in json.loads(_get(f"{base}/models/{urllib.parse.quote(model['directory'])}")[2])
    except urllib.error.HTTPError:  # a folder this ComfyUI does not know (404): nothing in it
        return False


def _history_ids(base) -> set[str] | None:
    try:  # a busy CPU server can be slow to answer while it samples
        return set(json.loads(_get(base + "/history?max_items=1000", timeout=60)[2]))
    except (TimeoutError, urllib.error.URLError):
        return None


def _queue_and_wait(page, base, timeout=600) -> dict:
    before = _history_ids(base)
    assert before is not None, "/history did not answer"
    page.evaluate("app.extensionManager.command.execute('Comfy.QueuePrompt')")
    deadline = time.time() + timeout
    while time.time() < deadline:
        new = (_history_ids(base) or before) - before
        if new:
            entry = json.loads(_get(base + f"/history/{new.pop()}", timeout=60)[2])
            return next(iter(entry.values()))
        time.sleep(1)
    raise AssertionError("the queued prompt did not finish")


def _shot_whole_graph(page, path: Path):
    """Screenshot with the viewport and zoom fitted to the whole graph (text drawn): the graph's picture."""
    g = _graph(page)
    rects = [n["rect"] for n in g["nodes"]] + g["groups"]
    x0 = min(r[0] for r in rects) - 20
    y0 = min(r[1] for r in rects) - 20
    x1 = max(r[0] + r[2] for r in rects) + 20
    y1 = max(r[1] + r[3] for r in rects) + 20
    size = page.viewport_size
    page.set_viewport_size({"width": int(x1 - x0), "height": int(y1 - y0) + 80})
    page.evaluate("([x, y]) => { app.canvas.ds.scale = 1; app.canvas.ds.offset = [x, y];"
                  " app.canvas.setDirty(true, true); app.canvas.draw(true, true); }", [-x0, -y0 + 40])
    page.wait_for_timeout(800)
    import base64

    data = page.evaluate("document.getElementById('graph-canvas').toDataURL('image/png')")  # canvas only, no UI
    path.write_bytes(base64.b64decode(data.split(",", 1)[1]))
    page.set_viewport_size(size)


def _save_thumbnail(png_or_frame, name: str):
    from PIL import Image

    im = png_or_frame if isinstance(png_or_frame, Image.Image) else Image.open(png_or_frame)
    im = im.convert("RGB")
    im.thumbnail((768, 512))
    im.save(ROOT / "workflows" / f"{name}.jpg", quality=85)


def _output_frame(tmp: Path, outputs: dict):
    """The middle frame of the first video/animation the prompt wrote (the template's real output)."""
    import av
    from PIL import Image

    for out in outputs.values():
        for key in ("images", "animated", "video", "gifs"):
            for item in out.get(key) or []:
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                path = tmp / "out" / item.get("subfolder", "") / item["filename"]
                if path.suffix == ".webp":
                    im = Image.open(path)
                    im.seek(im.n_frames // 2)
                    return im.copy()
                if path.suffix == ".mp4":
                    with av.open(str(path)) as c:
                        frames = [f.to_image() for f in c.decode(video=0)]
                    return frames[len(frames) // 2] if frames[0].width >= 256 else frame_grid(frames)
    return None


def frame_grid(frames: list, cols: int = 4, rows: int = 2, side: int = 192):
    """Small video (the 64 px demo): ``cols x rows`` frames evenly spaced over the clip, each scaled to ``side``."""
    from PIL import Image

    n = cols * rows
    pick = [frames[round(i * (len(frames) - 1) / (n - 1))] for i in range(n)]
    grid = Image.new("RGB", (cols * side, rows * side))
    for i, f in enumerate(pick):
        grid.paste(f.convert("RGB").resize((side, side), Image.BICUBIC), ((i % cols) * side, (i // cols) * side))
    return grid


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_opens_clean_from_the_templates_dialog(browser_page, server, name):
    if needs_packs(name):  # decided: not installed into the browser's ComfyUI; tested headless instead
        pytest.skip(f"needs {needs_packs(name)}, which this test's ComfyUI does not load (the frontend would show "
                    f"missing nodes); tests/test_interop_ade.py runs it headless with AnimateDiff-Evolved")
    page, base, blocked, console = browser_page
    types = sorted({n["type"] for n in json.loads((ROOT / "workflows" / f"{name}.json").read_text())["nodes"]})
    lacking = page.evaluate("(types) => types.filter(t => !LiteGraph.registered_node_types[t])", types)
    if lacking:  # feature detection: e.g. the LTX-2 template's core nodes exist from ComfyUI 0.33 on
        pytest.skip(f"this ComfyUI/frontend has no node class {lacking} (the template needs a newer ComfyUI)")
    declared = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    declared = sorted({m["name"] for n in declared["nodes"] for m in n.get("properties", {}).get("models", [])
                       if not _server_has(base, m)})  # missing: what the server lacks (it has the demo's models)
    errors_before = len(console)
    src, width = _open_from_dialog(page, name)
    page.screenshot(path=str(SHOTS / f"{name}.png"))

    # thumbnail: served by ComfyUI as a JPEG, and the card shows it (not the frontend's placeholder)
    if not WRITE_THUMBS:  # (being written now otherwise)
        status, ctype, body = _get(f"{base}/api/workflow_templates/{urllib.parse.quote(comfy_env.PACK_NAME)}/"
                                   f"{urllib.parse.quote(name)}.jpg")
        assert status == 200 and ctype == "image/jpeg" and body[:2] == b"\xff\xd8"
        from PIL import Image

        # the card shows our picture (the frontend caches it as a blob:), not its default-template.png placeholder
        assert "default-template" not in src and list(Image.open(io.BytesIO(body)).size) == width, (src, width)

    # dialogs (or 1.49's error overlay and panel): never missing nodes; missing models exactly the declared ones
    # (none installed under those names)
    dialogs = _missing_report(page)
    assert not any("missing" in d.lower() and "node" in d.lower() and "model" not in d.lower() for d in dialogs), dialogs
    if declared:
        text = "\n".join(dialogs)
        assert all(m in text for m in declared), (declared, dialogs)
        named = {w for w in text.split() if w.endswith((".safetensors", ".ckpt", ".pth"))}
        assert named <= set(declared), (named, declared)
    else:
        assert not dialogs, dialogs

    g = _graph(page)
    assert len(g["groups"]) >= 2 and any(n["type"] == "Note" for n in g["nodes"])
    assert not _overlaps(g["nodes"]), _overlaps(g["nodes"])
    # LiteGraph stops drawing text below min_font_size_for_lod / NODE_TEXT_SIZE (8 / 14 by default in frontend 1.32.9
    # and 1.49.6, not the deprecated 0.6 setting); the canvas says whether it is in that low-quality mode
    low, threshold = page.evaluate("[app.canvas.low_quality, app.canvas._lowQualityZoomThreshold]")
    assert not low, f"opens at zoom {g['scale']} (low quality below {threshold}): node text is not drawn"

    new_errors = console[errors_before:]
    pack_errors = [e for e in new_errors if not any(s in e for s in NETWORK_NOISE)
                   and any(k in e for k in ("CoherentVideo", "coherent_video", name))]
    assert not pack_errors, pack_errors
    if WRITE_THUMBS and declared:
        _close_dialogs(page)
        _shot_whole_graph(page, SHOTS / f"{name} - graph.png")
        _save_thumbnail(SHOTS / f"{name} - graph.png", name)


@pytest.mark.parametrize("name", MODEL_FREE)
def test_model_free_template_runs_from_the_page(browser_page, server, name):
    page, base, _, _ = browser_page
    _, tmp = server
    assert not [p for p in (tmp / "in").rglob("*") if p.is_file()], "input/ must stay empty: nothing to copy"
    _open_from_dialog(page, name)
    _close_dialogs(page)
    entry = _queue_and_wait(page, base)
    assert entry["status"]["status_str"] == "success", entry["status"]
    frame = _output_frame(tmp, entry["outputs"])
    assert frame is not None, entry["outputs"]
    page.screenshot(path=str(SHOTS / f"{name} - after run.png"))
    if WRITE_THUMBS:
        _save_thumbnail(frame, name)


def test_sd15_template_runs_with_the_random_checkpoint_shrunk(browser_page, server):
    page, base, _, _ = browser_page
    _open_from_dialog(page, SD_QUEUED)
    _close_dialogs(page)
    page.evaluate("""(() => {
        const set = (type, name, value) => app.graph._nodes.filter(n => n.type === type).forEach(n => {
            const w = n.widgets.find(w => w.name === name); w.value = value; w.callback?.(value); });
        set('CheckpointLoaderSimple', 'ckpt_name', 'random_sd15.safetensors');
        set('EmptyLatentImage', 'width', 64); set('EmptyLatentImage', 'height', 64);
        set('EmptyLatentImage', 'batch_size', 2); set('KSampler', 'steps', 1);
        app.graph.setDirtyCanvas(true, true);
    })()""")
    entry = _queue_and_wait(page, base)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert any(out.get("images") for out in entry["outputs"].values()), entry["outputs"]
    page.screenshot(path=str(SHOTS / f"{SD_QUEUED} - after run.png"))


NEW_WIDGET_NODES = {"ColorToRGBInt": "color", "CurveEditor": "curve"}  # ComfyUI 0.33's COLOR and CURVE widgets


def test_new_widget_types_saved_by_the_page_run_headless(browser_page, server, tmp_path):
    """A graph of core nodes with the V3 widget types (COLOR, CURVE) built in the page, saved as the frontend saves
    a workflow (``app.graph.serialize()``), converted by runner.workflow_format.ui_to_api with the server's
    /object_info (must equal the page's own ``graphToPrompt``), then run by ``python -m runner saved.json``."""
    page, base, _, _ = browser_page
    _close_dialogs(page)
    missing = page.evaluate("(types) => types.filter(t => !LiteGraph.registered_node_types[t])",
                            [*NEW_WIDGET_NODES, "PreviewAny"])
    if missing:
        pytest.skip(f"this ComfyUI/frontend has no {missing} (ComfyUI 0.33 with frontend 1.49 has them): "
                    f"no COLOR/CURVE widget to save")
    curve = {"points": [[0, 0], [0.4, 0.7], [1, 1]], "interpolation": "monotone_cubic"}
    got = page.evaluate("""async ([widgets, curve]) => {
        app.graph.clear();
        const add = (type, x, y) => { const n = LiteGraph.createNode(type); n.pos = [x, y]; app.graph.add(n); return n; };
        const color = add('ColorToRGBInt', 50, 50), curveNode = add('CurveEditor', 50, 300);
        color.connect(0, add('PreviewAny', 450, 50), 0);      // rgb_int
        curveNode.connect(0, add('PreviewAny', 450, 300), 0); // curve
        const set = (node, name, value) => { const w = node.widgets.find(w => w.name === name); w.value = value; w.callback?.(value); };
        set(color, widgets.ColorToRGBInt, '#ff8000'); set(curveNode, widgets.CurveEditor, curve);
        app.graph.setDirtyCanvas(true, true);
        return {widgetTypes: [color, curveNode].map(n => n.widgets.map(w => [w.name, w.type])),
                saved: app.graph.serialize(), prompt: (await app.graphToPrompt()).output};
    }""", [NEW_WIDGET_NODES, curve])
    # the frontend shows them as widgets (their values are in widgets_values), not as sockets
    assert got["widgetTypes"] == [[["color", "color"]], [["curve", "curve"]]], got["widgetTypes"]
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(got["saved"]))

    from runner.workflow_format import ui_to_api

    info = json.loads(_get(base + "/object_info", timeout=60)[2])
    prompt = ui_to_api(got["saved"], lambda c: (info.get(c) or {}).get("input"))
    assert {k: v["inputs"] for k, v in prompt.items()} == {k: v["inputs"] for k, v in got["prompt"].items()}
    color_id = next(k for k, v in prompt.items() if v["class_type"] == "ColorToRGBInt")
    assert prompt[color_id]["inputs"] == {"color": "#ff8000"}

    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "runner", str(saved), "--quiet", "--output-dir", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_outside_requests_were_blocked(browser_page):
    _, base, blocked, _ = browser_page
    assert all(not u.startswith(base) for u in blocked)
    (SHOTS / "blocked_requests.txt").write_text("\n".join(sorted(set(blocked))) + "\n")
