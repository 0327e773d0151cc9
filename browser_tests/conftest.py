"""The repository root is a package (the pack's __init__.py imports comfy_api): put ComfyUI on sys.path first."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import comfy_env  # noqa: E402

comfy_env.bootstrap()
