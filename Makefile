# The two commands: `make demo` (the main job, on this machine) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CHECKOV := .tools/checkov/bin/checkov
CHECKOV_VERSION := 3.3.30
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system-packages test demo lint synth clean

setup: system-packages $(STAMP) $(CHECKOV)

system-packages:
	@scripts/install-system-packages.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# checkov pins its own dependency tree, so it lives in a venv of its own.
$(CHECKOV):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'

# Static checks first (seconds), then two workers, one test file each at a time: files that share
# a local ground stay together. pytest-randomly shuffles the order on every run, so no test can lean
# on another having run; `make test SEED=N` replays the order of the run that printed N.
ifndef SEED
SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@echo "test order: --randomly-seed=$(SEED) (make test SEED=$(SEED) replays it)"
	$(BIN)/pytest -q -n 2 --dist loadfile -p randomly --randomly-seed=$(SEED)

demo: setup
	$(BIN)/pipeline demo

synth: $(STAMP)
	$(BIN)/pipeline synth

lint: setup
	$(BIN)/pipeline synth --check
	$(BIN)/pipeline lint

clean:
	rm -rf $(VENV) .tools .pytest_cache
