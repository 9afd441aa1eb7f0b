# Single entry points: install, run, test, lint, bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench bench-pg clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	mkdir -p var
	$(BIN)/thrad-events serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Four test processes: most of a test's time is spent waiting on a server process it started.
test: lint
	$(BIN)/pytest -n 4

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/enrich.py
	$(BIN)/python bench/send.py

bench-pg: install
	$(BIN)/python bench/run.py --store postgresql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: soak
soak: install
	$(BIN)/python bench/soak.py
