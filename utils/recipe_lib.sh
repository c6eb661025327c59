# shellcheck shell=bash
# Helpers shared by the recipe templates (egs/TEMPLATE/*/*.sh), sourced after their options are
# declared: log lines that name the calling script, line and function; and the stage-skip test.

# recipe_start "$@": the start every engine shares: supervise (below), the command line echoed,
# the run's clock (SECONDS) set to 0, the recipe's path.sh (venv, tools) and cmd.sh (job runners)
recipe_start() {
  supervise "$@"
  echo "$0 $*"
  SECONDS=0
  # shellcheck source=/dev/null
  . ./path.sh
  # shellcheck source=/dev/null
  . ./cmd.sh
}

# download_corpus CORPUS DIR [PART...]: lhotse downloads CORPUS (its PARTs) into the parent of DIR,
# the --corpus_dir of a real-corpus recipe (its --download true; needs the network)
download_corpus() {
  local corpus=$1 dir=$2
  shift 2
  # shellcheck source=/dev/null
  . ./path.sh
  python -m espnet_distill.bin.download_corpus --corpus "${corpus}" --out-dir "$(dirname "${dir}")" \
    ${1:+--parts "$@"}
}

# log MESSAGE...: "<time> (<script>:<line>:<function>) MESSAGE"
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

# is_done PATH: PATH (a stage's marker or final output) exists and --force is not true
is_done() {
  # shellcheck disable=SC2154  # force is the template's option
  [ "${force}" = false ] && [ -e "$1" ]
}

# check_output_dir DIR MIN_FREE_MB: DIR can be created and written, and its file system has
# MIN_FREE_MB free; otherwise one error line and exit 1, before any work starts.
check_output_dir() {
  local dir=$1 need_mb=$2 probe free_mb
  if ! mkdir -p "${dir}" 2>/dev/null; then
    log "Error: cannot create ${dir} ($(mkdir -p "${dir}" 2>&1 | sed 's/^mkdir: //'))"
    exit 1
  fi
  probe=${dir}/.write_test.$$
  if ! { : > "${probe}"; } 2>/dev/null; then
    log "Error: ${dir} is not writable"
    exit 1
  fi
  rm -f "${probe}"
  free_mb=$(df -Pm "${dir}" | awk 'NR == 2 {print $4}')
  if [ "${free_mb}" -lt "${need_mb}" ]; then
    log "Error: ${dir} has ${free_mb} MB free, at least ${need_mb} MB needed (--min_free_mb)"
    exit 1
  fi
}

# claim_dir DIR: creates DIR and takes an exclusive flock on DIR/.lock, so that runs started in
# parallel (e.g. one per CPU core) split a stage's jobs instead of both doing one. False when
# another run holds it. The lock is released by release_dir, or by the kernel when the run (and
# any job it started, which inherits the descriptor) exits or is killed: no stale locks.
claim_dir() {
  mkdir -p "$1"
  exec {claim_fd}>"$1/.lock"
  if ! flock -n "${claim_fd}"; then
    exec {claim_fd}>&-
    return 1
  fi
}

# release_dir: releases the lock of the last claim_dir
release_dir() {
  exec {claim_fd}>&-
}

# check_stages FIRST LAST [GPU_FIRST GPU_LAST]: --stage and --stop_stage are integers in FIRST..LAST,
# in order; with GPU_FIRST GPU_LAST, the stages that use GPUs: check_gpus of --ngpu for them
check_stages() {
  local opt value
  for opt in stage stop_stage; do
    value=${!opt}
    if ! [[ "${value}" =~ ^[0-9]+$ ]] || [ "${value}" -lt "$1" ] || [ "${value}" -gt "$2" ]; then
      log "Error: --${opt} ${value}: the stages of $(basename "$0") are $1..$2" >&2
      exit 1
    fi
  done
  # shellcheck disable=SC2154  # stage, stop_stage: the template's options
  if [ "${stage}" -gt "${stop_stage}" ]; then
    log "Error: --stage ${stage} comes after --stop_stage ${stop_stage}: nothing to run" >&2
    exit 1
  fi
  # shellcheck disable=SC2154  # ngpu: the engine's option (engine_options.sh)
  [ $# -lt 4 ] || check_gpus "${ngpu}" "$3" "$4"
}

# need STAGE PATH...: every PATH (an input of the current stage) exists; otherwise one error line
# naming what is missing and the earlier stage that makes it, and exit 1
need() {
  local maker=$1 path
  shift
  for path in "$@"; do
    if [ ! -e "${path}" ]; then
      log "Error: ${path} does not exist: stage ${maker} makes it (run from --stage ${maker})" >&2
      exit 1
    fi
  done
}

# supervise "$@": run this script again as a child in its own process group, and stop that whole
# group (every stage's jobs) when this process gets SIGINT or SIGTERM or its parent dies (a
# `kill -9` of the run.sh that called it). Call it first thing; the child skips it. bash runs a
# trap only once the foreground command ends, so the work runs in the background and this
# process only waits: the trap fires at once.
supervise() {
  [ -n "${RECIPE_SUPERVISED:-}" ] && return 0
  local parent=${PPID} worker
  RECIPE_SUPERVISED=1 setsid "$0" "$@" &
  worker=$!
  # shellcheck disable=SC2064  # the worker's pid, fixed now
  trap "_stop_group ${worker} SIGINT; exit 130" INT
  # shellcheck disable=SC2064
  trap "_stop_group ${worker} SIGTERM; exit 143" TERM
  while kill -0 "${worker}" 2>/dev/null; do
    if ! kill -0 "${parent}" 2>/dev/null; then
      _stop_group "${worker}" "the death of its parent (pid ${parent})"
      exit 1
    fi
    sleep 1 &
    wait $! || true
  done
  wait "${worker}"
  exit $?
}

# _stop_group PGID WHY: SIGTERM to the process group, SIGKILL to what is left after 10 s
_stop_group() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0")) stopping all its jobs on $2" >&2
  kill -TERM -- "-$1" 2>/dev/null || return 0
  for _ in $(seq 20); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$1" 2>/dev/null || true
}

# unique WORD...: the words one a line, each once, in the order they first appear
unique() {
  local word
  local -A seen=()
  for word in "$@"; do
    [ -n "${seen[${word}]:-}" ] && continue
    seen[${word}]=1
    echo "${word}"
  done
}

# check_gpus N FIRST LAST: N (--ngpu) GPUs are there for torch when --stage..--stop_stage
# includes a stage of FIRST..LAST (those that use them), checked before any stage runs, so that
# `--ngpu 1` on a CPU machine fails now and not at the training stage after the others ran
check_gpus() {
  local found
  if ! [[ "$1" =~ ^[0-9]+$ ]]; then
    log "Error: --ngpu $1: expected a number of GPUs (0: the CPU)" >&2
    exit 1
  fi
  [ "$1" -gt 0 ] || return 0
  # shellcheck disable=SC2154  # stage, stop_stage: the template's options
  [ "${stage}" -le "$3" ] && [ "${stop_stage}" -ge "$2" ] || return 0
  found=$(python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
  if [ "${found}" -lt "$1" ]; then
    log "Error: --ngpu $1, but torch sees ${found} GPU(s) here: give --ngpu ${found} (0 trains on the CPU)" >&2
    exit 1
  fi
}

# export_model_to STAGE DIR ARG...: bin/export_model ARG... --out-dir DIR, its log DIR/export.log
# (skipped when DIR/export.yaml exists; --force redoes it), then each artifact's size and
# difference from the PyTorch model
# shellcheck disable=SC2154  # force, train_cmd: the engine's option and cmd.sh's runner
export_model_to() {
  local stage_num=$1 dir=$2
  shift 2
  if is_done "${dir}/export.yaml"; then
    log "Stage ${stage_num}: ${dir}/export.yaml exists: skipping"
    return 0
  fi
  [ "${force}" = true ] && rm -rf "${dir}"
  log "Stage ${stage_num}: exporting $* -> ${dir}"
  mkdir -p "${dir}"
  ${train_cmd} "${dir}/export.log" python -m espnet_distill.bin.export_model "$@" --out-dir "${dir}"
  grep -E "max abs difference" "${dir}/export.log" | sed 's/.*INFO \[[^]]*\] /  /' || true
}

# stage_time NUM NAME T0: the stage's wall time (seconds since T0, a ${SECONDS} reading) appended to
# ${exp_dir}/stage_times.tsv (every run's) and to this run's table, which report_stage_times prints
stage_time() {
  # shellcheck disable=SC2154  # exp_dir is the engine's option
  echo -e "$1\t$2\t$((SECONDS - $3))" >> "${exp_dir}/stage_times.tsv"
  _stage_times+=("$1 $2 $((SECONDS - $3))")
}
_stage_times=()

# report_stage_times: this run's stages and their seconds as a markdown table, then the total
report_stage_times() {
  local entry num name secs
  log "Wall time of this run by stage (also appended to ${exp_dir}/stage_times.tsv):"
  printf '  | stage | | seconds |\n  |---|---|---|\n'
  for entry in "${_stage_times[@]}"; do
    read -r num name secs <<< "${entry}"
    printf '  | %s | %s | %s |\n' "${num}" "${name}" "${secs}"
  done
  printf '  | | total | %s |\n' "${SECONDS}"
}
