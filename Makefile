# Two commands on a fresh machine: `make demo` and `make test`. Both set up what is missing
# (a .venv with the locked dependencies, the Jupyter kernel, Debian data packages) and are
# fast the second time: setup reruns only when pyproject.toml or constraints.txt change.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system demo test lock clean

setup: $(STAMP) system

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -c "from workbench.notebooks import ensure_kernel; ensure_kernel()"
	@touch $(STAMP)

system:
	@bash scripts/system-packages.sh

demo: setup
	$(BIN)/workbench demo

test: setup
	$(BIN)/python -m pytest

# Refresh the lock after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^workbench' > constraints.txt

clean:
	rm -rf $(VENV) .workbench .pytest_cache
