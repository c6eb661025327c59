#!/usr/bin/env bash
# LibriSpeech (data you already have): HuBERT distillation (DistilHuBERT, LSTM-KD/DKD, deep and
# wide students) and SUPERB-style probes, over ../asr1's data stages on train-clean-100.
#   ./run.sh --corpus_dir /data/LibriSpeech --teacher_ckpt /models/hubert_base_ls960.pt --ngpu 1
#   ./run.sh --corpus_dir /data/LibriSpeech --ngpu 8     # pretrain HuBERT Base first (a long job)
set -euo pipefail

corpus_dir=        # the LibriSpeech dir (../asr1's --corpus_dir)

# Options above are this file's; any other option goes to ./ssl.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./ssl.sh
. utils/parse_options.sh
[ -n "${corpus_dir}" ] || { echo "$0: --corpus_dir (the LibriSpeech dir) is required" >&2; exit 1; }

./ssl.sh \
  --asr_dir ../asr1 \
  --asr_opts "--corpus_dir ${corpus_dir} --train 100" \
  --data_dir ../asr1/data/train-clean-100 \
  --exp_dir exp/train-clean-100 \
  --num_clusters 100 \
  --results_file RESULTS_run.md \
  --results_title "LibriSpeech ssl1 (train-clean-100)" \
  "${parsed_rest_options[@]}"
