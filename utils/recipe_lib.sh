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
