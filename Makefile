# The two set-up commands of the README. Each installs what is missing first (cached).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# every tracked shell script: the *.sh files (sourced ones too) and the scripts with a sh/bash shebang
SHELL_SCRIPTS := $(shell git ls-files | while read -r f; do [ -f "$$f" ] && [ ! -L "$$f" ] && \
	{ [[ "$$f" == *.sh ]] || head -n1 "$$f" | grep -qE '^\#!.*(bash|/sh)'; } && echo "$$f"; done)

.PHONY: install demo test lint format test-slow test-spread clean-demo

install:
	bash tools/install.sh

# Embedded synthetic corpus (LibriSpeech layout), end to end to a WER table.
demo: install
	cd egs/synth/asr1 && ./run.sh --corpus_size demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	shellcheck -x $(SHELL_SCRIPTS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(PY) -m pytest -q -m "not slow" --durations=15 tests

test-slow: install
	$(PY) -m pytest -q -m slow --durations=0 tests

# the spread of the figures tests assert on, under threads / BLAS kernels / seeds (about 40 min)
test-spread: install
	$(PY) tests/spread.py

clean-demo:
	rm -rf egs/synth/asr1/{data,exp,corpus}
