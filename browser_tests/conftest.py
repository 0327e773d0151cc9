"""ComfyUI first on sys.path before the browser tests import anything (the repository's own ``nodes/`` package
would hide ComfyUI's ``nodes.py``). pyproject.toml's pytest ``pythonpath`` puts the repository root and tests/
(the ``support`` package: the server helper, the fixtures) on the path.

One ComfyUI server and one browser page for the whole browser run (``server``, ``browser_page``: session
fixtures), shared by the template test and the node-docs test: one server start per frontend."""
from runner import comfy_env

comfy_env.bootstrap()

import contextlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from runner import ROOT  # noqa: E402
from support.server import assert_pack_linked, comfy_server  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "output" / "browser"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    from support.fixtures import random_sd15_checkpoint
    from support.trained import demo_models_dir

    ckpt = Path(random_sd15_checkpoint())
    assert demo_models_dir() == ckpt.parent.parent  # the demo template's models, in the same folder
    tmp = tmp_path_factory.mktemp("browser")
    assert_pack_linked()
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: shutil.copy(tmp / "server.log", SHOTS / "server.log") if SHOTS.is_dir() else None)
        srv = stack.enter_context(comfy_server(tmp, models_base=ckpt.parent.parent, user_dir=True,
                                               extra_args=["--disable-auto-launch"]))
        yield srv.base, tmp


@pytest.fixture(scope="session")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    base, _ = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    blocked, console = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        # 1920x1080, the most common desktop screen: frontend 1.49 fits a template to the window when it opens
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080})

        def route(r):
            if r.request.url.startswith(base):
                r.continue_()
            else:  # the frontend asks outside registries (releases, node packs, model sizes): no internet here
                blocked.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page = ctx.new_page()
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(base, wait_until="domcontentloaded")
        page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=180_000)
        page.wait_for_timeout(2000)
        yield page, base, blocked, console
        browser.close()
