# Two set-up commands for a fresh machine with Python 3.11, pip and make:
#   make demo   build the default recipe into build/digits-small-cnn
#   make test   run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= build/digits-small-cnn

.PHONY: demo test lint bench clean

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

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.dev-installed
	$(PY) benchmarks/run.py

clean:
	rm -rf build .pytest_cache
