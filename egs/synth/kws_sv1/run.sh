#!/usr/bin/env bash
# Embedded synthetic corpora: keyword spotting (Speech Commands v0.02 layout) and speaker
# verification (VoxCeleb1 layout) on a distilled speech representation model (Kerpicci et al.
# 2022). The teacher and the student (DistilHuBERT by default) come from ../ssl1 on the same
# corpus size; both are fine-tuned single-task and jointly, frozen and fine-tuned.
#   ./run.sh                                   # demo size
#   ./run.sh --corpus_size tiny                # seconds of speech (tests)
#   ./run.sh --teacher_ckpt T --student_ckpt S # given upstreams instead of ../ssl1's
set -euo pipefail

corpus_size=demo   # tiny | demo | full
finetune_config=conf/finetune.yaml

args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus_size) corpus_size=$2; shift 2 ;;
    --finetune_config) finetune_config=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ "${corpus_size}" = tiny ] && finetune_config=${finetune_config%.yaml}_tiny.yaml
results_file=RESULTS.md
[ "${corpus_size}" = demo ] || results_file=RESULTS_${corpus_size}.md

./kws_sv.sh \
  --local_data_opts "--size ${corpus_size}" \
  --speech_commands_dir "corpus/${corpus_size}/SpeechCommands" \
  --voxceleb1_dir "corpus/${corpus_size}/VoxCeleb1" \
  --data_dir "data/${corpus_size}" \
  --exp_dir "exp/${corpus_size}" \
  --ssl_dir ../ssl1 \
  --ssl_opts "--corpus_size ${corpus_size}" \
  --ssl_exp_dir "../ssl1/exp/${corpus_size}" \
  --finetune_config "${finetune_config}" \
  --results_file "${results_file}" \
  --results_title "synth kws_sv1 (${corpus_size} corpora)" \
  "${args[@]}"
