#!/usr/bin/env bash
# Builds k2 (k2-fsa's FSA library: the optional decoding backend of espnet_distill/graph/
# k2_backend.py) into .venv, as Kaldi's tools/extras/ scripts build their optional tools. No
# registry serves k2 for this stack (PyPI's newest is a py3.9 wheel for torch 1.13), so it is
# built from source into a wheel, cached under ${XDG_CACHE_HOME:-~/.cache}/espnet_distill: a
# fresh clone on a machine that built it once installs it in seconds.
#
# Usage: tools/install_k2.sh        (after tools/install.sh)
#   K2_SOURCE=<k2 source tarball or dir>  default: the snapshot in the shared vendor dir beside
#       this checkout (or beside the checkout it was cloned from), else a git clone of k2's
#       repository (needs the network)
#   K2_CUDA=auto|1|0   auto: a CUDA build when nvcc is on PATH and nvidia-smi sees a GPU
#   K2_JOBS=N          parallel compile jobs (default: nproc)
#
# The CPU build against the CUDA torch wheel of requirements/lock.txt needs torch's CMake config
# not to demand the CUDA toolkit; that change is made on a copy of torch/share/cmake (the venv's
# torch is never modified). pybind11 and kaldifeat, which k2's CMake would download, come from
# their PyPI sdists. The build dir is kept in the cache until the wheel exists, so a killed build
# resumes where make stopped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${root}"
log() { echo "[install_k2 $(date +%H:%M:%S)] $*"; }
die() { echo "install_k2.sh: $*" >&2; exit 1; }
SECONDS=0
py=.venv/bin/python
[ -x "${py}" ] || die ".venv is missing: run tools/install.sh first"
k2_version() { "${py}" -c "import k2; from importlib.metadata import version; print(version('k2'))"; }
if "${py}" -c "import k2" 2>/dev/null; then
  log "k2 $(k2_version) is installed"
  exit 0
fi

# ---------------------------------------------------------------- source
source=${K2_SOURCE:-}
if [ -z "${source}" ]; then
  candidates=("${root}/../shared/vendor")
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  [ -n "${origin}" ] && [ -d "${origin}" ] && candidates+=("${origin}/../shared/vendor")
  for dir in "${candidates[@]}"; do
    for tarball in "${dir}"/k2-src-*.tar.gz; do
      [ -f "${tarball}" ] && { source=$(cd "$(dirname "${tarball}")" && pwd)/$(basename "${tarball}"); break 2; }
    done
  done
fi
if [ -n "${source}" ]; then
  [ -e "${source}" ] || die "K2_SOURCE ${source} does not exist"
  if [ -f "${source}" ]; then
    source_id=$(sha256sum "${source}" | cut -c1-12)
  else
    source_id=$(git -C "${source}" rev-parse --short=12 HEAD 2>/dev/null ||
      (cd "${source}" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12))
  fi
else
  source_id=git-master
fi

cuda=${K2_CUDA:-auto}
if [ "${cuda}" = auto ]; then
  cuda=0
  command -v nvcc >/dev/null && nvidia-smi -L >/dev/null 2>&1 && cuda=1
fi
torch_version=$("${py}" -c "import torch; print(torch.__version__.split('+')[0])")
py_version=$("${py}" -c "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')")
key=${source_id}-torch${torch_version}-py${py_version}-$([ "${cuda}" = 1 ] && echo cuda || echo cpu)
cache=${XDG_CACHE_HOME:-${HOME}/.cache}/espnet_distill/k2-${key}

install_wheel() {
  local wheel
  wheel=$(ls "${cache}"/dist/k2-*.whl)
  VIRTUAL_ENV=${root}/.venv .venv/bin/uv pip install -q --no-deps "${wheel}"
  log "installed $(basename "${wheel}") from ${cache}/dist"
}

if ! ls "${cache}"/dist/k2-*.whl >/dev/null 2>&1; then
  work=${cache}/build
  mkdir -p "${work}"
  src=${work}/src
  if [ ! -f "${src}/setup.py" ]; then
    rm -rf "${src}"
    if [ -z "${source}" ]; then
      log "no k2 source given or found: cloning https://github.com/k2-fsa/k2"
      git clone -q --depth 1 https://github.com/k2-fsa/k2 "${src}" ||
        die "git clone of k2 failed (no network?): set K2_SOURCE to a k2 source tarball or dir"
    elif [ -f "${source}" ]; then
      mkdir -p "${src}"
      tar xzf "${source}" -C "${src}" --strip-components 1
    else
      cp -r "${source}" "${src}"
    fi
  fi

  # pybind11 3's make_tuple returns a typed tuple, so a lambda returning tuples of two lengths
  # needs its return type spelled out (k2's ragged.cu pickle lambda; the copy is patched, the
  # source tarball is not)
  "${py}" - "${src}/k2/python/csrc/torch/ragged.cu" <<'EOF'
import sys
from pathlib import Path

path = Path(sys.argv[1])
old = "  pyclass.def(py::pickle(\n      [](const PyClass &obj) {"
text = path.read_text()
if old in text:
    path.write_text(text.replace(old, old[:-2] + " -> py::tuple {", 1))
EOF
  log "k2 build (${key}): sources of pybind11 and kaldifeat from PyPI"
  deps=${work}/deps
  mkdir -p "${deps}"
  # pybind11 3's sdist carries its CMake project (2.x's PyPI sdists do not); k2 pins a 2.x commit
  for sdist in pybind11==3.1.0 kaldifeat==1.24; do
    dir=${deps}/${sdist/==/-}
    if [ ! -d "${dir}" ]; then
      "${py}" -m pip download -q --no-deps --no-binary :all: "${sdist}" -d "${deps}" ||
        die "could not download the ${sdist} sdist from PyPI"
      mkdir -p "${dir}"
      tar xzf "${dir}.tar.gz" -C "${dir}" --strip-components 1
    fi
  done
  cmake_args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=17
    -DFETCHCONTENT_SOURCE_DIR_PYBIND11="${deps}/pybind11-3.1.0"
    -DFETCHCONTENT_SOURCE_DIR_KALDIFEAT="${deps}/kaldifeat-1.24")
  if [ "${cuda}" = 1 ]; then
    log "CUDA build (nvcc: $(command -v nvcc))"
  else
    # torch's CMake config, copied with its CUDA requirements switched off; include/ and lib/
    # are links, so the paths it derives from its own location still reach the venv's torch
    torch_dir=$("${py}" -c "import os, torch; print(os.path.dirname(torch.__file__))")
    torch_copy=${work}/torch-cmake/torch
    rm -rf "${work}/torch-cmake"
    mkdir -p "${torch_copy}/share"
    cp -r "${torch_dir}/share/cmake" "${torch_copy}/share/"
    ln -s "${torch_dir}/include" "${torch_copy}/include"
    ln -s "${torch_dir}/lib" "${torch_copy}/lib"
    "${py}" - "${torch_copy}/share/cmake" <<'EOF'
import sys
from pathlib import Path

cmake = Path(sys.argv[1])
patches = {
    # Caffe2: the block that includes public/cuda.cmake (finds the toolkit) -> an empty
    # torch::cudart, the one CUDA target the CPU libraries' interface names
    "Caffe2/Caffe2Config.cmake": (
        "if(ON)\n  # The file public/cuda.cmake exclusively uses CAFFE2_USE_*.",
        "add_library(torch::cudart INTERFACE IMPORTED)\n"
        "if(OFF)\n  # The file public/cuda.cmake exclusively uses CAFFE2_USE_*.",
    ),
    # Torch: the CUDA libraries added to TORCH_LIBRARIES
    "Torch/TorchConfig.cmake": (
        "if(ON)\n  if(MSVC)\n    find_library(CAFFE2_NVRTC_LIBRARY",
        "if(OFF)\n  if(MSVC)\n    find_library(CAFFE2_NVRTC_LIBRARY",
    ),
}
for name, (old, new) in patches.items():
    path = cmake / name
    text = path.read_text()
    if old not in text:
        sys.exit(f"install_k2.sh: {path}: its CUDA block is not where this torch version had it")
    path.write_text(text.replace(old, new, 1))
EOF
    # both dirs: Torch's config finds Caffe2 through CMAKE_PREFIX_PATH (the venv's) first
    cmake_args+=(-DK2_WITH_CUDA=OFF -DTorch_DIR="${torch_copy}/share/cmake/Torch"
      -DCaffe2_DIR="${torch_copy}/share/cmake/Caffe2")
  fi
  # configure afresh on a rerun (a failed configure can leave NOTFOUND values in the cache); the
  # compiled objects are kept, so a killed build resumes
  [ -d "${src}/build" ] && find "${src}/build" -name CMakeCache.txt -delete
  jobs=${K2_JOBS:-$(nproc)}
  log "compiling k2 with ${jobs} jobs (about 16 min on 2 CPU cores, measured; log: ${work}/build.log)"
  (cd "${src}" && K2_CMAKE_ARGS="${cmake_args[*]}" K2_MAKE_ARGS="-j${jobs}" \
    "${root}/${py}" setup.py bdist_wheel >"${work}/build.log" 2>&1) ||
    die "k2 build failed, see ${work}/build.log (rerun to resume)"
  mkdir -p "${cache}/dist"
  cp "${src}"/dist/k2-*.whl "${cache}/dist/"
  rm -rf "${work}"
fi
install_wheel
version=$(k2_version) || die "the k2 wheel installed but 'import k2' fails"
log "k2 ${version}"
log "done in ${SECONDS} s"
