#!/usr/bin/env bash
# KD ablation (docs/cross_modal_kd.md, docs/ssl_teacher_kd.md): the unit LMs (stage 5), then every
# conf/train_kd_<name>.yaml through stages 6-9 of run.sh as experiment am_kd_<name>_seed<S>, then
# the ablation table (WER, bootstrap CI, paired test vs kd_none) and bar plot into RESULTS.md.
#   local/run_kd_ablation.sh --corpus_size full --seeds "1234 1235"
#   local/run_kd_ablation.sh --corpus_size demo --configs "none hier"   # a subset
#   local/run_kd_ablation.sh --corpus_size full --seeds "1234 1235" \
#     --configs "none mvq hint mvq_aux_subword" --table_name kd_ablation_ssl
# Other options go to run.sh (and asr.sh), e.g. --unit_lm_config conf/lm_unit_lstm.yaml.
set -euo pipefail

corpus_size=full   # tiny | demo | full
seeds=1234         # training seeds: one experiment per config and seed
configs="none label_interp aux_senone aux_monophone aux_subword hier hier_no_senone hier_no_monophone hier_no_subword"  # conf/train_kd_<name>.yaml (none: the baseline, required)
units="senone monophone subword"  # the unit LMs stage 5 trains
methods="hclg tlg" # decoders run in stage 8, whose WER the table compares
sets="dev-clean test-clean test-other"  # the table's sets (test-other: the held-out engine)
table_name=kd_ablation  # exp/<size>/<table_name>/: table and plot (kd_ablation_ssl: SSL-teacher KD)

# Options above are this script's; any other option goes to ./run.sh.
PARSE_OPTIONS_PASS_TO=./run.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected arguments: $* (options are --name value)" >&2; exit 1; }
# shellcheck source=egs/synth/asr1/path.sh
. ./path.sh
args=("${parsed_rest_options[@]}")
case " ${configs} " in *" none "*) ;; *) echo "$0: --configs must include none (the baseline)" >&2; exit 1 ;; esac

./run.sh --corpus_size "${corpus_size}" --stop_stage 5 --unit_lms "${units}" "${args[@]}"
tags=()
for name in ${configs}; do
  tags+=("kd_${name}")
  # a config with model.mvq_kd: stage 5 adds the SSL teacher's codebooks (the rest is done)
  if python -m espnet_distill.bin.config_value --config "conf/train_kd_${name}.yaml" \
       --key model.mvq_kd > /dev/null; then
    ./run.sh --corpus_size "${corpus_size}" --stage 5 --stop_stage 5 --unit_lms "${units}" \
      --asr_config "conf/train_kd_${name}.yaml" "${args[@]}"
  fi
  for seed in ${seeds}; do
    ./run.sh --corpus_size "${corpus_size}" --stage 6 --stop_stage 9 --unit_lms "${units}" \
      --asr_config "conf/train_kd_${name}.yaml" --tag "kd_${name}_seed${seed}" --seed "${seed}" \
      --decode_methods "${methods}" "${args[@]}"
  done
done
# shellcheck disable=SC2086
python -m espnet_distill.bin.kd_ablation --exp-dir "exp/${corpus_size}" --baseline kd_none \
  --tags "${tags[@]}" --seeds ${seeds} --methods ${methods} --sets ${sets} \
  --out-dir "exp/${corpus_size}/${table_name}"
./run.sh --corpus_size "${corpus_size}" --stage 9 --stop_stage 9 "${args[@]}"
