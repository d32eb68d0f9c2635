# The README's commands. Each target sets up what it needs (a .venv beside this file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench-ingest bench-accuracy bench-scoring clean

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
	$(BIN)/mypy scoring storage ingest renown simulate chain

test: lint
	$(BIN)/python -m pytest -q

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-accuracy: $(STAMP)
	$(BIN)/python bench/accuracy.py

bench-scoring: $(STAMP)
	$(BIN)/python bench/scoring.py

clean:
	rm -rf $(VENV) demo-out renown.db renown.db-shm renown.db-wal .pytest_cache .ruff_cache
