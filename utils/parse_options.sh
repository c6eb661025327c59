#!/usr/bin/env bash
# shellcheck shell=bash
# Kaldi-compatible option parser; source it after the script's option block:
#
#   nj=4              # number of parallel jobs
#   use_gpu=false     # booleans must be true or false
#   . utils/parse_options.sh
#
# Accepts `--foo-bar value` and `--foo-bar=value` (both set foo_bar), `--config file` (a file of
# `foo_bar=value` lines, sourced first, so command-line options override it) and `--help`, which
# prints $help_message (if set) and every option of the option block with its default and comment.
# As in Kaldi: an option that the script does not declare is an error, and so is a boolean option
# given anything but true/false. Parsing stops at the first argument that is not an option.

_po_usage_options() {
  # Option block = top-level `name=value  # comment` lines of the calling script.
  local script=$1
  [ -f "${script}" ] || return 0
  echo "Options:"
  sed -n -E 's/^([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\([^)]*\)|[^ #]*)[[:space:]]*(#[[:space:]]*(.*))?$/\1|\2|\4/p' "${script}" |
    while IFS='|' read -r _po_name _po_default _po_comment; do
      printf '  --%-24s %-22s %s\n' "${_po_name}" "(${_po_default})" "${_po_comment}"
    done
}

# --config files first, anywhere on the command line.
for ((_po_i = 1; _po_i <= $#; _po_i++)); do
  if [ "${!_po_i}" = "--config" ]; then
    _po_j=$((_po_i + 1))
    _po_config=${!_po_j:-}
    [ -f "${_po_config}" ] || { echo "$0: --config: no such file: '${_po_config}'" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "${_po_config}"
  elif [[ "${!_po_i}" == --config=* ]]; then
    _po_config=${!_po_i#--config=}
    [ -f "${_po_config}" ] || { echo "$0: --config: no such file: '${_po_config}'" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "${_po_config}"
  fi
done

while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help | -h)
      [ -n "${help_message:-}" ] && printf '%b\n' "${help_message}"
      _po_usage_options "$0"
      exit 0
      ;;
    --config) shift 2 ;;
    --config=*) shift ;;
    --*)
      if [[ "$1" == *=* ]]; then
        _po_opt=${1%%=*}
        _po_value=${1#*=}
        _po_shift=1
      else
        [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
        _po_opt=$1
        _po_value=$2
        _po_shift=2
      fi
      _po_name=${_po_opt#--}
      _po_name=${_po_name//-/_}
      if ! [[ "${_po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_po_name+set}" ]; then
        echo "$0: invalid option ${_po_opt}" >&2
        exit 1
      fi
      _po_old=${!_po_name}
      if [ "${_po_old}" = true ] || [ "${_po_old}" = false ]; then
        if [ "${_po_value}" != true ] && [ "${_po_value}" != false ]; then
          echo "$0: expected \"true\" or \"false\": ${_po_opt} ${_po_value}" >&2
          exit 1
        fi
      fi
      printf -v "${_po_name}" '%s' "${_po_value}"
      shift "${_po_shift}"
      ;;
    *) break ;;
  esac
done

unset _po_i _po_j _po_config _po_opt _po_value _po_shift _po_name _po_old
true # so that a script with `set -e` does not stop on the last test
