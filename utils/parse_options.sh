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
# prints $help_message (default: the script's header comment) and every option of the option block with its default and comment.
# The options are the option block's: the script's top-level `name=value` lines above the line
# that sources this file (upper-case names, the environment's, and help_message excepted); a
# comment line indented under an option continues its description. A block line
# `. utils/<name>_options.sh` declares the options of that file (options several scripts share)
# at that place. Variables set elsewhere are not options. An option the script does not declare is an error, and so is a boolean option
# given anything but true/false. Parsing stops at the first argument that is not an option.
#
# A wrapper that passes the options it does not declare on to another script (a corpus's run.sh
# to its engine) sets PARSE_OPTIONS_PASS_TO=<that script> first: those options are collected, in
# order, in the array parsed_rest_options (for the callee to check), and --help lists the
# callee's options too; an argument that is not an option is then an error.

# _po_declared SCRIPT: "name|default|description" for each option of SCRIPT's option block; a
# block line `. utils/<name>_options.sh` (options several scripts share) adds that file's options
_po_declared() {
  [ -f "$1" ] || return 0
  awk '
    function take(line,    name, rest, value, comment, c) {
      if (match(line, /^[A-Za-z_][A-Za-z0-9_]*=/)) {
        name = substr(line, 1, RLENGTH - 1); rest = substr(line, RLENGTH + 1)
        last = ""
        if (name == "help_message" || name ~ /^[A-Z0-9_]+$/) return
        if (rest ~ /^"/) { match(rest, /^"[^"]*"/) } else if (rest ~ /^\(/) { match(rest, /^\([^)]*\)/) } else { match(rest, /^[^ #]*/) }
        value = substr(rest, 1, RLENGTH); comment = substr(rest, RLENGTH + 1)
        sub(/^[[:space:]]*#?[[:space:]]*/, "", comment)
        n++; names[n] = name; values[n] = value; comments[n] = comment; last = n
      } else if (last != "" && line ~ /^[[:space:]]+#/) {
        c = line; sub(/^[[:space:]]+#[[:space:]]*/, "", c); comments[last] = comments[last] " " c
      } else {
        last = ""
      }
    }
    /^[[:space:]]*[.] .*parse_options[.]sh/ { exit }
    match($0, /^[.] [^ ]*_options[.]sh/) {
      shared = substr($0, 3, RLENGTH - 2)
      while ((getline line < shared) > 0) take(line)
      close(shared); last = ""
      next
    }
    { take($0) }
    END { for (i = 1; i <= n; i++) print names[i] "|" values[i] "|" comments[i] }
  ' "$1"
}

_po_usage_options() {
  local script=$1 title=${2:-Options:}
  [ -f "${script}" ] || return 0
  echo "${title}"
  _po_declared "${script}" | while IFS='|' read -r _po_name _po_default _po_comment; do
    printf '  --%-24s %-22s %s\n' "${_po_name}" "(${_po_default})" "${_po_comment}"
  done
}

_po_options=" $(_po_declared "$0" | cut -d'|' -f1 | tr '\n' ' ') "
parsed_rest_options=()

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
      if [ -n "${help_message:-}" ]; then
        printf '%b\n' "${help_message}"
      else  # the script's header comment
        echo "Usage: $0 [options]"
        sed -n '2,/^[^#]/{/^#/!q;/^# shellcheck/d;s/^# \{0,1\}/  /;p;}' "$0"
      fi
      _po_usage_options "$0"
      if [ -n "${PARSE_OPTIONS_PASS_TO:-}" ]; then
        echo
        _po_usage_options "${PARSE_OPTIONS_PASS_TO}" "Options of ${PARSE_OPTIONS_PASS_TO}, passed on \
after the ones this script sets for it (so they override them):"
      fi
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
      if [[ "${_po_options}" != *" ${_po_name} "* ]]; then
        if [ -n "${PARSE_OPTIONS_PASS_TO:-}" ]; then
          parsed_rest_options+=("${_po_opt}" "${_po_value}")
          shift "${_po_shift}"
          continue
        fi
        echo "$0: invalid option ${_po_opt} (--help lists the options)" >&2
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

# a wrapper passes options on, and takes no arguments of its own
if [ -n "${PARSE_OPTIONS_PASS_TO:-}" ] && [ $# -gt 0 ]; then
  echo "$0: unexpected arguments: $* (options are --name value)" >&2
  exit 1
fi

unset _po_i _po_j _po_config _po_opt _po_value _po_shift _po_name _po_old _po_options
true # so that a script with `set -e` does not stop on the last test
