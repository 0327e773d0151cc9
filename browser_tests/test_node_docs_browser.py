"""Every pack node's help doc opened the way a user opens it, in the real frontend: the node is put on the canvas and
clicked, and the selection toolbox's info button (``[data-testid=info-button]``) opens the node documentation panel.
Frontend 1.32.9 (ComfyUI 0.3.75) shows it in the node library sidebar, frontend 1.49.6 (ComfyUI 0.33) in the
properties panel's Info tab; both fetch ``/extensions/<pack folder>/docs/<NodeId>.md`` (the pack's ``web/docs/``)
and render it into ``.node-help-content .markdown-content``, resolving image paths against that folder.

Per node: the panel shows the doc's own heading and its ``Node id`` line (so the doc was fetched and rendered, not
the frontend's fallback built from the node's description), every image the doc has is in the panel and loaded
(``naturalWidth > 0``), and the doc was fetched from the pack's folder with HTTP 200. A screenshot per node goes to
``output/browser/docs/<frontend version>/<NodeId>.png``. Where the frontend has no such button or panel (found in
the page, not from a version), every test skips and says which part is missing.

Uses conftest.py's one server and page (shared with the template test).
"""
from __future__ import annotations

import re
import time

import pytest

from runner import ROOT

DOCS = ROOT / "web" / "docs"
SHOTS = ROOT / "output" / "browser" / "docs"
NODE_IDS = sorted(p.stem for p in DOCS.glob("CoherentVideo_*.md"))
PANEL = ".node-help-content .markdown-content"


def _doc(node_id: str) -> tuple[str, list[str]]:
    text = (DOCS / f"{node_id}.md").read_text(encoding="utf-8")
    return text.splitlines()[0].removeprefix("# ").strip(), re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


@pytest.fixture(scope="module")
def docs_page(browser_page):
    """The shared page with an empty graph; a list of the doc requests the page makes; after the module, the page
    is reloaded so the template test starts from the frontend's own layout (no help panel open)."""
    page, base, _, _ = browser_page
    _close_dialogs(page)
    fetched = []

    def on_response(r):
        if "/docs/" in r.url:
            fetched.append((r.url, r.status))

    page.on("response", on_response)
    page.evaluate("app.graph.clear()")
    version = page.evaluate("window.__COMFYUI_FRONTEND_VERSION__ || 'unknown'")
    started = time.perf_counter()
    yield page, base, fetched, f"frontend-{version}"
    print(f"\nnode docs in the browser (frontend {version}): {len(NODE_IDS)} nodes in "
          f"{time.perf_counter() - started:.1f} s")
    page.remove_listener("response", on_response)
    page.evaluate("app.graph.clear()")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=180_000)
    page.wait_for_timeout(2000)


_OPEN_DIALOG_CLOSE = """() => {
    const dialogs = [...document.querySelectorAll('.p-dialog-mask, [role=dialog]')]
        .filter(d => d.getBoundingClientRect().width > 0);
    if (!dialogs.length) return null;
    for (const d of dialogs) {
        const b = [...d.querySelectorAll('button')].find(b => /close/i.test(b.getAttribute('aria-label') || '')
            || b.querySelector('.pi-times, [class*="lucide--x"]'));
        if (b) return b;
    }
    return dialogs[0];
}"""


def _close_dialogs(page):
    """Close what covers the canvas: a fresh user's start-up Templates dialog (frontend 1.32.9: a PrimeVue dialog
    that does not close on Escape; 1.49.6: a ``role=dialog``), by its close button as a user does, else Escape;
    done when no dialog shows for about a second."""
    quiet = 0
    for _ in range(40):
        handle = page.evaluate_handle(_OPEN_DIALOG_CLOSE).as_element()
        if handle is not None:
            quiet = 0
            if handle.evaluate("e => e.tagName") == "BUTTON":
                handle.click()
            else:
                page.keyboard.press("Escape")
        else:
            quiet += 1
            if quiet >= 4:
                return
        page.wait_for_timeout(300)
    raise AssertionError("a dialog stays open over the canvas")


def _place_and_click(page, node_id: str):
    """A fresh graph holding only this node, drawn at scale 1 in the middle of the canvas (clear of the top bar,
    so the selection toolbox above it can be clicked), then a real mouse click on its title; the mouse then moves
    away (its hover tooltip would cover the toolbox)."""
    x, y = page.evaluate("""(type) => {
        app.graph.clear();
        const n = LiteGraph.createNode(type); n.pos = [700, 400]; app.graph.add(n);
        app.canvas.ds.scale = 1; app.canvas.ds.offset = [0, 0];
        app.canvas.deselectAll?.(); app.canvas.setDirty(true, true); app.canvas.draw(true, true);
        const r = app.canvas.canvas.getBoundingClientRect();
        return [r.left + n.pos[0] + 40, r.top + n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2];
    }""", node_id)
    page.mouse.click(x, y)
    page.mouse.move(1500, 900)
    page.wait_for_function("(type) => app.canvas.selected_nodes && Object.values(app.canvas.selected_nodes)"
                           ".some(n => n.type === type)", arg=node_id, timeout=10_000)


def _info_button(page):
    btn = page.locator("[data-testid=info-button]")
    try:
        btn.first.wait_for(state="visible", timeout=5_000)
    except Exception:  # playwright's TimeoutError
        return None
    return btn.first


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_doc_renders_in_the_help_panel(docs_page, node_id):
    page, base, fetched, frontend = docs_page
    heading, images = _doc(node_id)
    _place_and_click(page, node_id)
    btn = _info_button(page)
    if btn is None:
        pytest.skip(f"{frontend}: a selected node shows no info button ([data-testid=info-button]) in the "
                    f"selection toolbox, the way this test opens the node documentation panel")
    before = len(fetched)
    btn.click()
    panel = page.locator(PANEL)
    try:
        page.wait_for_function("([sel, h]) => [...document.querySelectorAll(sel + ' h1')]"
                               ".some(e => e.offsetParent !== null && e.innerText.trim() === h)",
                               arg=[PANEL, heading], timeout=15_000)
    except Exception:
        shown = page.evaluate("(sel) => [...document.querySelectorAll(sel)].map(e => e.innerText.slice(0, 300))",
                              PANEL)
        if not page.locator(".node-help-content").count():
            pytest.skip(f"{frontend}: the info button opens no node documentation panel (.node-help-content)")
        raise AssertionError(f"{node_id}: the panel does not show the doc's heading {heading!r}: {shown}")
    text = panel.first.inner_text()
    assert f"Node id {node_id}" in " ".join(text.split()), f"{node_id}: not the doc (fallback?): {text[:300]}"
    # the doc came from the pack's web/docs/, not a fallback
    docs = [(u, s) for u, s in fetched[before:] if u.endswith(f"/docs/{node_id}.md")]
    assert docs and docs[-1][1] == 200 and "/extensions/" in docs[-1][0], fetched[before:]
    # every image the doc has is shown and loaded
    page.wait_for_function("(sel) => [...document.querySelectorAll(sel + ' img')].every(i => i.complete)",
                           arg=PANEL, timeout=15_000)
    imgs = page.evaluate("(sel) => [...document.querySelectorAll(sel + ' img')]"
                         ".map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight}))", PANEL)
    assert [i["src"].rsplit("/", 1)[-1] for i in imgs] == [s.rsplit("/", 1)[-1] for s in images], (imgs, images)
    assert all(i["w"] > 0 and i["h"] > 0 for i in imgs), f"{node_id}: an image did not load: {imgs}"
    out = SHOTS / frontend
    out.mkdir(parents=True, exist_ok=True)
    if imgs:
        panel.first.locator("img").first.scroll_into_view_if_needed()
    page.screenshot(path=str(out / f"{node_id}.png"))
