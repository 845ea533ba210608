# tarn: `make demo` and `make test` do all their own set-up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/tarn
export PIP_CACHE_DIR ?= $(CACHE)/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-unit bench lint format clean

$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing tarn (downloads are cached in $(PIP_CACHE_DIR))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev,postgres]'
	@touch $@

install: $(VENV)/.installed

demo: install
	@$(PY) -m tarn.demo

test: install
	@$(PY) -m pytest

test-unit: install
	@$(PY) -m pytest -m 'not integration'

bench: install
	@$(PY) -m pytest -m benchmark -o addopts='' -q bench
	@echo "==> results in bench/results.json"

lint: install
	@$(VENV)/bin/ruff check lib functions detections tests bench
	@$(VENV)/bin/ruff format --check lib functions detections tests bench
	@$(VENV)/bin/mypy

format: install
	@$(VENV)/bin/ruff format lib functions detections tests bench
	@$(VENV)/bin/ruff check --fix lib functions detections tests bench

clean:
	rm -rf .tarn .pytest_cache
