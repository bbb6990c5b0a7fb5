# Two set-up commands for a fresh machine with Python 3.11, pip and make:
#   make demo   build the default recipe into build/digits-small-cnn
#   make test   run the test suite
#   make docs   build the documentation site into site/ (mkdocs build --strict: a broken link fails)
#   make test-arm   the runtime's tests on aarch64, in an emulated arm64 Debian root (root, apt, binfmt;
#                   root cached in ~/.cache/edgeship/arm64-root or $EDGESHIP_ARM64_ROOT; EDGESHIP_SKIP_ARM=1 skips)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= build/digits-small-cnn
# setuptools reports every editable install of a package-dir mapping (edgeship.train = train/, ...) with a
# 10-line "Editable installation" notice, whatever the editable mode (lenient: "folders with the same name as
# your package"; strict: "do not remove the auxiliary directory"), and pip >= 25 forwards it. Here the folders
# with the package's names are the package itself, so the notice says nothing: filter that one message only.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet

.PHONY: demo test test-arm arm-root lint docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.build-installed: pyproject.toml | $(PY)
	$(PIP_INSTALL) -e ".[build]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PIP_INSTALL) -e ".[build,dev,serve,docs]"
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

# docs/hooks.py regenerates docs/results.md from benchmarks/*_results.json (benchmarks/render_tables.py).
docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/run.py

clean:
	rm -rf build site .pytest_cache
