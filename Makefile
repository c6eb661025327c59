# The two set-up commands of the README. Each installs what is missing first (cached).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SHELL_SCRIPTS := tools/install.sh .ci/run utils/parse_options.sh utils/recipe_lib.sh egs/TEMPLATE/asr1/asr.sh \
	egs/synth/asr1/run.sh egs/TEMPLATE/asr1/path.sh egs/synth/asr1/cmd.sh egs/synth/asr1/local/data.sh \
	egs/synth/asr1/local/run_kd_ablation.sh egs/TEMPLATE/ssl1/ssl.sh egs/synth/ssl1/run.sh \
	egs/TEMPLATE/kws_sv1/kws_sv.sh egs/synth/kws_sv1/run.sh egs/synth/kws_sv1/local/data.sh \
	egs/librispeech/asr1/run.sh egs/librispeech/ssl1/run.sh egs/mini_librispeech/asr1/run.sh \
	egs/speech_commands/kws_sv1/run.sh egs/voxceleb1/kws_sv1/run.sh

.PHONY: install demo test lint format test-slow test-spread clean-demo

install:
	bash tools/install.sh

# Embedded synthetic corpus (LibriSpeech layout), end to end to a WER table.
demo: install
	cd egs/synth/asr1 && ./run.sh --corpus_size demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	shellcheck -x $(SHELL_SCRIPTS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	$(PY) -m pytest -q -m "not slow" tests

test-slow: install
	$(PY) -m pytest -q -m slow tests

# the spread of the figures tests assert on, under threads / BLAS kernels / seeds (about 40 min)
test-spread: install
	$(PY) tests/spread.py

clean-demo:
	rm -rf egs/synth/asr1/{data,exp,corpus}
