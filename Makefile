# localrag: `make run` sets everything up and opens the app; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run setup models test test-fast lint check bench clean

run: setup models
	$(BIN)/localrag

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

models: setup
	$(BIN)/localrag models pull

test: setup models
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not models and not slow"

lint: setup
	$(BIN)/ruff check localrag tests
	$(BIN)/ruff format --check localrag tests
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
