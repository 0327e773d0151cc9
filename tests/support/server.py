"""The real ComfyUI server (``main.py --cpu`` on a loopback port) for the tests that talk to it over HTTP.

    with comfy_server(tmp, models_base=ckpt.parent.parent) as srv:
        get_json(srv.base + "/object_info")

One start-up for every server test (tests/test_server.py, tests/test_reliability_soak.py,
browser_tests/test_templates_browser.py): an ``extra_model_paths.yaml`` that adds the random-weight
checkpoint's models folder (and optionally a custom_nodes folder), private output/input/temp folders under
``tmp``, wait until ``/system_stats`` answers, and stop the server it started (by its own process) on exit.
"""
from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from runner.comfy_env import PACK_NAME, ROOT, comfyui_path


@dataclass
class Server:
    base: str                # http://127.0.0.1:PORT
    proc: subprocess.Popen
    tmp: Path                # holds out/, in/, temp/ (and user/), server.log

    @property
    def log(self) -> str:
        return (self.tmp / "server.log").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def post_json(url: str, body: dict, timeout: float = 30):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def assert_pack_linked() -> None:
    """`make setup` links this repository into ComfyUI's custom_nodes/ (the server loads the pack from there)."""
    link = comfyui_path() / "custom_nodes" / PACK_NAME
    assert link.exists() and link.resolve() == ROOT.resolve(), f"`make setup` links the pack at {link}"


@contextlib.contextmanager
def comfy_server(tmp: Path, models_base: Path | None = None, custom_nodes: Path | None = None,
                 input_dir: Path | None = None, user_dir: bool = False, extra_args=(), start_timeout: float = 300):
    """Start ComfyUI's ``main.py --cpu`` on a free loopback port; yield a :class:`Server` once it answers.

    ``models_base``: a folder laid out like ``models/`` (its ``checkpoints/``, ``diffusion_models/``, ``vae/``
    and ``text_encoders/`` are added); ``custom_nodes``: one more folder of node packs; ``input_dir``: ComfyUI's
    input folder (default an empty ``tmp/in``);
    ``user_dir``: give the server a private user folder (the frontend writes settings there)."""
    tmp = Path(tmp)
    yaml = tmp / "extra_model_paths.yaml"
    lines = ["coherent_video_tests:", f"  base_path: {models_base or tmp}"]
    if models_base is not None:  # the random checkpoint and the demonstration models (tests/support/trained.py)
        lines += [f"  {sub}: {sub}" for sub in ("checkpoints", "diffusion_models", "vae", "text_encoders")]
    if custom_nodes is not None:
        lines.append(f"  custom_nodes: {custom_nodes}")
    yaml.write_text("\n".join(lines) + "\n")
    for d in ("out", "in", "temp") + (("user",) if user_dir else ()):
        (tmp / d).mkdir(exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--extra-model-paths-config", str(yaml), "--output-directory", str(tmp / "out"),
           "--input-directory", str(input_dir or tmp / "in"), "--temp-directory", str(tmp / "temp")]
    if user_dir:
        cmd += ["--user-directory", str(tmp / "user")]
    cmd += list(extra_args)
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=comfyui_path(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    srv = Server(f"http://127.0.0.1:{port}", proc, tmp)
    try:
        deadline = time.time() + start_timeout
        while True:
            assert proc.poll() is None, "server exited:\n" + srv.log[-4000:]
            try:
                get_json(srv.base + "/system_stats", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert time.time() < deadline, "server did not come up:\n" + srv.log[-4000:]
                time.sleep(1)
        yield srv
    finally:
        proc.terminate()  # only the server this helper started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
