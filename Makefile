# Two set-up commands for a fresh machine with Python 3.11, pip and make:
#   make demo   build the default recipe into build/digits-small-cnn
#   make test   run the test suite
#   make test-arm   the runtime's tests on aarch64, in an emulated arm64 Debian root (root, apt, binfmt;
#                   root cached in ~/.cache/edgeship/arm64-root or $EDGESHIP_ARM64_ROOT; EDGESHIP_SKIP_ARM=1 skips)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= build/digits-small-cnn

.PHONY: demo test test-arm arm-root lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.build-installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[build]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[build,dev,serve]"
	touch $(VENV)/.build-installed $@

demo: $(VENV)/.build-installed
	$(VENV)/bin/edgeship build --out $(OUT)

test: $(VENV)/.dev-installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-arm: $(VENV)/.dev-installed
	$(PY) .ci/test_arm.py

arm-root: $(VENV)/.dev-installed
	$(PY) -m edgeship.platforms setup

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/run.py

clean:
	rm -rf build .pytest_cache
