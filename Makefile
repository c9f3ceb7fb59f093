# localrag: `make run` sets everything up and opens the app; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run setup models system-packages cross-compilers test test-fast lint check bench reliability bundle clean

run: setup models
	$(BIN)/localrag

setup: $(STAMP)

# Every dependency comes from requirements.lock, each file checked against its SHA-256. Then
# llama-cpp-python is compiled with portable CPU flags into build/llama-wheels/<flags>/: pip's
# own build would be native (AMX kernels crash on some CPUs) and pip's cache would hand back a
# wheel built with other flags (see packaging/build_llama.py). localrag itself comes last, with
# no dependency resolved anew; `pip check` says if the lock lacks one (then run `make lock`).
$(STAMP): pyproject.toml requirements.lock packaging/build_llama.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r requirements.lock
	$(BIN)/python packaging/build_llama.py
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

models: setup
	$(BIN)/localrag models pull

# Programs the tests run, as program:Debian package: espeak-ng speaks the sentences of the audio
# tests; tesseract reads scanned pages (users need it only for scans and images). On Linux x86-64
# also what builds and tries the arm64 bundle: the cross compiler, qemu and debootstrap.
TEST_PROGRAMS := espeak-ng:espeak-ng tesseract:tesseract-ocr
CROSS_PROGRAMS := aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu aarch64-linux-gnu-g++:g++-aarch64-linux-gnu
ifeq ($(shell uname -sm),Linux x86_64)
CROSS := aarch64
TEST_PROGRAMS += $(CROSS_PROGRAMS) qemu-aarch64-static:qemu-user-static debootstrap:debootstrap
endif

# Installs the Debian packages of $(1) (program:package ...) whose program is missing.
define install_programs
	@missing=""; \
	for entry in $(1); do \
		command -v $${entry%%:*} >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		echo "make: installing$$missing"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "make: install$$missing first (on macOS: brew install$$missing)"; \
		exit 1; \
	fi
endef

system-packages:
	$(call install_programs,$(TEST_PROGRAMS))

cross-compilers:
	$(if $(CROSS),$(call install_programs,$(CROSS_PROGRAMS)))

test: system-packages setup models
	$(BIN)/python -m pytest

test-fast: system-packages setup
	$(BIN)/python -m pytest -m "not models and not slow"

lint: setup
	$(BIN)/ruff check localrag tests
	$(BIN)/ruff format --check localrag tests
	$(BIN)/mypy

check: lint test

# SIGKILLs, failed writes, hostile files, mutated GGUFs and the network guard at full size (see
# the README's figures); niced, since it runs for tens of minutes on two cores.
reliability: system-packages setup models
	nice -n 19 $(BIN)/localrag bench reliability

# The offline install bundles, dist/localrag-bundle-*.tar: for this platform and Python, and on
# Linux x86-64 also for Linux arm64 (llama.cpp cross-compiled); every wheel hash-checked, the
# portable llama.cpp wheel, the default models (see packaging/make_bundle.py and
# packaging/bundle/README.md). Needs PyPI once; cached after.
bundle: setup cross-compilers
	$(BIN)/python packaging/make_bundle.py
	$(if $(CROSS),$(BIN)/python packaging/make_bundle.py --machine $(CROSS))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# ---- The lock file: `make lock` writes requirements.lock, every package pinned with the SHA-256 of
# each of its files, for `pip install --require-hashes -r requirements.lock`. llama-cpp-python is
# left out (it is built from source with portable flags and installed after it, with --no-deps);
# its own dependencies are in. Run it after changing a dependency in pyproject.toml.
UV_VERSION := 0.13.9
LOCK_VENV := .lock-venv

.PHONY: lock
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --disable-pip-version-check -q uv==$(UV_VERSION)
	UV_NO_CONFIG=1 $(LOCK_VENV)/bin/uv pip compile pyproject.toml --extra dev --universal \
		--python-version 3.11 --generate-hashes --no-emit-package llama-cpp-python \
		--quiet -o requirements.lock
	rm -rf $(LOCK_VENV)
