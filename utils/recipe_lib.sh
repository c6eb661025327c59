# shellcheck shell=bash
# Helpers shared by the recipe templates (egs/TEMPLATE/*/*.sh), sourced after their options are
# declared: log lines that name the calling script, line and function; and the stage-skip test.

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
