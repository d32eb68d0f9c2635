# The README's commands. Each target sets up what it needs (a .venv beside this file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: browser-tools setup demo test lint bench-ingest bench-accuracy bench-scoring bench-api bench-chain clean \
        contract contract-check contract-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/renown demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy scoring storage ingest renown simulate chain moderation api

test: lint browser-tools
	$(BIN)/python -m pytest -q

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-accuracy: $(STAMP)
	$(BIN)/python bench/accuracy.py

bench-scoring: $(STAMP)
	$(BIN)/python bench/scoring.py

bench-chain: $(STAMP)
	$(BIN)/python -m bench.chain_source

# bench/api.py drives the API with wrk (C; Debian's package), not a Python client.
bench-api: $(STAMP)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }
	$(BIN)/python -m bench.api

# The NEAR contract (contract/README.md): built by nearc + Debian's emscripten in its own
# venv (build tools, not dependencies of renown). `contract` rebuilds the committed wasm and
# its sha256; `contract-check` (CI) rebuilds in a temp dir and compares with that sha256.
CONTRACT_VENV  := contract/.venv
CONTRACT_STAMP := $(CONTRACT_VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

contract-tools:
	@command -v emcc >/dev/null && command -v wasm-validate >/dev/null || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y emscripten wabt; }

$(CONTRACT_STAMP): contract/requirements.txt
	test -x $(CONTRACT_VENV)/bin/python || $(PYTHON) -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/python -m pip install --quiet -r contract/requirements.txt
	touch $(CONTRACT_STAMP)

contract: contract-tools $(CONTRACT_STAMP)
	$(CONTRACT_VENV)/bin/python contract/build.py --write-sha

contract-check: contract-tools $(CONTRACT_STAMP)
	$(CONTRACT_VENV)/bin/python contract/build.py --check

clean:
	rm -rf $(VENV) demo-out renown.db renown.db-shm renown.db-wal .pytest_cache .ruff_cache

# Headless Chromium for tests/test_pages.py (Debian's packages; nothing downloaded at test time).
browser-tools:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver; }
