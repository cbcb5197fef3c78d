# giamsat — `make run` serves the collector with a demo registry; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean setup test-setup snippet

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	GIAMSAT_DEMO=1 $(BIN)/giamsat migrate
	GIAMSAT_DEMO=1 $(BIN)/giamsat serve --demo

test-setup: $(STAMP)
	./scripts/test-deps.sh

test: test-setup
	$(BIN)/ruff check $(wildcard collector reports tests bench)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/snippet.py
	$(BIN)/python bench/rollup.py
	$(BIN)/python bench/reports.py

# rebuild snippet/dist/gov-tracking.min.js (node + npm; terser pinned by package-lock.json)
snippet:
	./snippet/build.sh

clean:
	rm -rf $(VENV) .pytest_cache giamsat.db giamsat.db-wal giamsat.db-shm
