# shellcheck shell=bash
# shellcheck disable=SC2034  # the engines read these options
# The options every engine (egs/TEMPLATE/*/*.sh) has, sourced in their option blocks, before
# their own; parse_options.sh reads them as part of the block, so --help lists them there.
stage=1                  # first stage to run
force=false              # redo finished stages in stage..stop_stage
min_free_mb=1000         # free disk space (MB) the data and exp dirs need; checked first
ngpu=0                   # GPUs for the stages that train (0: CPU)
