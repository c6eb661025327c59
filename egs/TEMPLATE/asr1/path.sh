# shellcheck shell=bash
# Puts the project's venv, KenLM binaries and Kaldi-style utils on PATH (sourced by asr.sh and ssl.sh; each recipe links it).
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
export MAIN_ROOT
if [ ! -x "${MAIN_ROOT}/.venv/bin/python" ]; then
  echo "path.sh: ${MAIN_ROOT}/.venv is missing: run 'make install' (tools/install.sh) first" >&2
  exit 1
fi
export PATH=${MAIN_ROOT}/.venv/bin:${MAIN_ROOT}/tools/kenlm/bin:${MAIN_ROOT}/utils:${PATH}
export PYTHONUNBUFFERED=1
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::FutureWarning,ignore::UserWarning}
export LC_ALL=C
