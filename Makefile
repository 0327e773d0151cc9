# ComfyUI-CoherentVideo - the README's commands.
VENV   := .venv
PY     := $(VENV)/bin/python
RUNNER := tools/run_workflow.py
PYTEST_ARGS ?=
CHROMIUM ?= chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup test test-browser demo run bench models clean
setup:            ## venv, pinned torch trio, ComfyUI 0.3.75 (or $$COMFYUI_PATH), deps; idempotent
	bash tools/setup.sh

test:             ## the whole test suite inside real ComfyUI (pytest exit 5 = no tests = failure)
	$(PY) -m pytest $(PYTEST_ARGS)

test-browser:     ## every template opened in the real frontend (Debian chromium + Playwright); screenshots in output/browser/
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { echo "installing Debian's chromium (apt-get)"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q -c .ci/constraints.txt $$(grep -i '^playwright' requirements-dev.txt)
	CHROMIUM=$$(command -v $(CHROMIUM)) $(PY) -m pytest browser_tests $(PYTEST_ARGS)

demo:             ## weight-free demo: bundled clip -> FlowTemporalUpsample x4 -> output/
	$(PY) $(RUNNER) "workflows/Frame interpolation x4 - no weights.json" --output-dir output

run:              ## any workflow: make run WORKFLOW=workflows/x.json ARGS="--set 3.seed=7"
	@test -n "$(WORKFLOW)" || { echo "usage: make run WORKFLOW=file.json [ARGS=...]" >&2; exit 2; }
	$(PY) $(RUNNER) $(WORKFLOW) $(ARGS)

models:           ## write (once) the random-weight SD1.5 checkpoint used by tests and workflows; prints its path
	$(PY) -c "import sys; sys.path.insert(0, '.'); from tools.fixtures import random_sd15_checkpoint as r; print(r())"

bench:            ## every benchmark; each writes bench/results/*.json
	for b in bench/noise.py bench/interpolation.py bench/iterative.py bench/attention.py bench/motion.py bench/dit.py; do \
	  [ -f $$b ] && $(PY) $$b || exit 1; done

clean:
	rm -rf output .pytest_cache
