#!/usr/bin/env bash
# Installs everything espnet_distill needs; idempotent and cached, so a second run takes seconds.
#
# Usage: tools/install.sh            # apt packages, .venv, KenLM binaries
#        tools/install.sh --no-apt   # skip the Debian packages (e.g. no root)
#
#   1. Debian packages: espeak-ng, flite, sox (+ all formats), fortunes (corpus text), shellcheck,
#      festival with the CMU lexicon and three voices (kal: phone timings that check the stage-4
#      alignment; ked, slt-HTS: the synthetic corpus's held-out-engine test-other),
#      and the compilers/boost/zlib/bz2/lzma headers that KenLM needs.
#   2. .venv: Python 3.11 venv with requirements/lock.txt (uv, which links from its cache) and
#      `pip install -e .`; re-installed only when the lock file changes.
#   3. tools/kenlm/bin/{lmplz,build_binary} built with cmake from KenLM's source distribution;
#      the build is cached under ${XDG_CACHE_HOME:-~/.cache}/espnet_distill so fresh clones reuse it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${root}"
do_apt=true
[ "${1:-}" = "--no-apt" ] && do_apt=false

log() { echo "[install $(date +%H:%M:%S)] $*"; }
SECONDS=0

# ---------------------------------------------------------------- 1. Debian packages
apt_packages=(espeak-ng flite sox libsox-fmt-all flac fortunes fortunes-min shellcheck
  festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festlex-cmu
  build-essential cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev
  libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
if ${do_apt}; then
  missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q "install ok installed" || missing+=("${p}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    log "Debian packages present"
  fi
fi

# ---------------------------------------------------------------- 2. Python venv
python=${PYTHON:-python3.11}
command -v "${python}" >/dev/null || python=python3
lock_hash=$(cat requirements/lock.txt setup.py | sha256sum | cut -c1-16)
stamp=.venv/.installed-${lock_hash}
if [ ! -f "${stamp}" ]; then
  log "creating .venv from requirements/lock.txt (${lock_hash})"
  [ -x .venv/bin/python ] || "${python}" -m venv .venv
  .venv/bin/python -m pip install -q "$(grep '^uv==' requirements/lock.txt)"
  # uv hard-links from its cache: a fresh clone on a machine that installed once takes seconds.
  VIRTUAL_ENV=${root}/.venv .venv/bin/uv pip install -q -r requirements/lock.txt
  VIRTUAL_ENV=${root}/.venv .venv/bin/uv pip install -q --no-deps -e .
  rm -f .venv/.installed-*
  touch "${stamp}"
else
  log ".venv up to date"
fi

# ---------------------------------------------------------------- 3. KenLM binaries
kenlm_version=$(grep '^kenlm==' requirements/lock.txt | cut -d= -f3)
kenlm_bin=tools/kenlm/bin
cache=${XDG_CACHE_HOME:-${HOME}/.cache}/espnet_distill/kenlm-${kenlm_version}
if [ ! -x "${kenlm_bin}/lmplz" ] || [ ! -x "${kenlm_bin}/build_binary" ]; then
  if [ ! -x "${cache}/bin/lmplz" ] || [ ! -x "${cache}/bin/build_binary" ]; then
    log "building KenLM ${kenlm_version} lmplz/build_binary (about 70 s on 2 cores)"
    work=$(mktemp -d)
    # The sdist on PyPI carries the whole KenLM tree, lmplz's builder included.
    .venv/bin/python -m pip download -q --no-deps --no-binary kenlm --no-build-isolation \
      "kenlm==${kenlm_version}" -d "${work}"
    tar xzf "${work}/kenlm-${kenlm_version}.tar.gz" -C "${work}"
    cmake -S "${work}/kenlm-${kenlm_version}" -B "${work}/build" -DCMAKE_BUILD_TYPE=Release \
      -DKENLM_MAX_ORDER=6 >"${work}/cmake.log" 2>&1 ||
      { echo "install.sh: KenLM cmake failed, see ${work}/cmake.log" >&2; exit 1; }
    cmake --build "${work}/build" -j "$(nproc)" --target lmplz build_binary >"${work}/build.log" 2>&1 ||
      { echo "install.sh: KenLM build failed, see ${work}/build.log" >&2; exit 1; }
    mkdir -p "${cache}/bin"
    cp "${work}/build/bin/lmplz" "${work}/build/bin/build_binary" "${cache}/bin/"
    rm -rf "${work}"
  fi
  mkdir -p "${kenlm_bin}"
  cp "${cache}/bin/lmplz" "${cache}/bin/build_binary" "${kenlm_bin}/"
fi
log "KenLM: $(${kenlm_bin}/lmplz --help 2>&1 | head -n 1 | cut -c1-60)..."
log "done in ${SECONDS} s"
