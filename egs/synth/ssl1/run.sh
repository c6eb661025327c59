#!/usr/bin/env bash
# Embedded synthetic corpus: HuBERT distillation (ssl1). The teacher is a small HuBERT pretrained
# here on MFCC k-means labels (no download); students: DistilHuBERT, LSTM-KD, LSTM-DKD, deep and
# wide transformers at DistilHuBERT's size; SUPERB-style probes (ASR, PR, SID) on each.
#   ./run.sh                                # demo size; data from ../asr1 (its stages 1-3)
#   ./run.sh --corpus_size tiny             # a few minutes of speech (tests)
#   ./run.sh --corpus_size full             # 8.6 h: 2 epochs each (as many teacher updates
#                                           #   as the demo's 20 epochs; CPU-sized)
#   ./run.sh --teacher_ckpt /path/hubert    # a real teacher (torchaudio, HF or fairseq format)
# The ASR and PR probes also score test-other, the held-out engine (festival voices no training
# split has), beside test-clean.
set -euo pipefail

corpus_size=demo   # tiny | demo | full
teacher_config=conf/hubert_pretrain.yaml  # the offline teacher's pretraining config (tiny: _tiny.yaml)
probe_config=conf/probe.yaml  # probe settings (tiny, full: their _tiny/_full.yaml)
train_overrides=   # overrides of every training config, added after this file's own for the size

# Options above are this file's; any other option goes to ./ssl.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./ssl.sh
. utils/parse_options.sh
size_opts=()
size_overrides=
case "${corpus_size}" in
  tiny)
    teacher_config=${teacher_config%.yaml}_tiny.yaml
    probe_config=${probe_config%.yaml}_tiny.yaml
    size_opts=(--num_clusters 20)
    size_overrides="train.max_epochs=2 model.hidden=16" ;;
  # 9.5x the demo's audio: 2 epochs give the teacher the demo's number of updates (4k) and the
  # students twice theirs: a CPU budget, not a tuned one
  full)
    probe_config=${probe_config%.yaml}_full.yaml
    size_overrides="train.max_epochs=2" ;;
esac
results_file=RESULTS.md
[ "${corpus_size}" = demo ] || results_file=RESULTS_${corpus_size}.md

./ssl.sh \
  --asr_dir ../asr1 \
  --asr_opts "--corpus_size ${corpus_size}" \
  --data_dir "../asr1/data/${corpus_size}" \
  --exp_dir "exp/${corpus_size}" \
  --teacher_config "${teacher_config}" \
  --probe_config "${probe_config}" \
  --other_test_sets test-other \
  --results_file "${results_file}" \
  --results_title "synth ssl1 (${corpus_size} corpus)" \
  --train_overrides "${size_overrides}${size_overrides:+ }${train_overrides}" \
  "${size_opts[@]}" "${parsed_rest_options[@]}"
