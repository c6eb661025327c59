#!/usr/bin/env bash
# LibriSpeech (data you already have): BPE CTC + hybrid senone Conformer, TLG / HCLG decoding with
# a KenLM word n-gram, WER on dev-clean/-other and test-clean/-other (weights tuned on dev-clean).
#   ./run.sh --corpus_dir /data/LibriSpeech                    # train-clean-100, one GPU
#   ./run.sh --corpus_dir /data/LibriSpeech --train 960 --ngpu 4   # 960 h, 4 GPUs (DDP)
#   ./run.sh --download true --corpus_dir downloads/LibriSpeech    # lhotse downloads it first
#   ./run.sh --corpus_dir /data/LibriSpeech --stage 6 --asr_config ../../synth/asr1/conf/train_kd_hier.yaml \
#       --unit_lms "senone monophone subword" --tag kd_hier      # cross-modal KD on real data
# The corpus dir holds the split folders (train-clean-100/, dev-clean/, ...); stage 1 checks every
# split it needs before any work and names the missing ones.
# This file sets asr.sh's --test_sets "dev-clean dev-other test-clean test-other", --valid_set
# dev-clean, --nj 8, --bpe_vocab_size 500, --num_leaves 3000, speed perturbation and the result
# file; any asr.sh option given here comes after them and overrides them, e.g.
#   ./run.sh --corpus_dir /data/LibriSpeech --nj 2 --test_sets "dev-clean test-clean"
set -euo pipefail
# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # download_corpus

corpus_dir=        # the LibriSpeech dir
download=false     # true: lhotse downloads the parts into the parent of --corpus_dir (network)
train=100          # 100: train-clean-100; 960: train-clean-100 + train-clean-360 + train-other-500
lm_text=           # word n-gram text; default: librispeech-lm-norm.txt.gz in or beside
                   # --corpus_dir when present, else the training transcripts
ngpu=1             # GPUs for training (0: CPU)
asr_config=        # acoustic model config; default: conf/train_conformer_ctc_senone.yaml (100 h)
                   # or conf/train_conformer_ctc_senone_960h.yaml (960 h)

# Options above are this file's; any other option goes to ./asr.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./asr.sh
. utils/parse_options.sh
[ -n "${corpus_dir}" ] || { echo "$0: --corpus_dir (the LibriSpeech dir) is required" >&2; exit 1; }
case "${train}" in
  100) train_set="train-clean-100"
       train_opts=(--train_set "${train_set}")
       parts="train-clean-100 dev-clean dev-other test-clean test-other"
       asr_config=${asr_config:-conf/train_conformer_ctc_senone.yaml} ;;
  960) train_set="train-960"
       train_opts=(--train_set "${train_set}" --train_parts "train-clean-100 train-clean-360 train-other-500")
       parts="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other"
       asr_config=${asr_config:-conf/train_conformer_ctc_senone_960h.yaml} ;;
  *) echo "$0: --train must be 100 or 960, got '${train}'" >&2; exit 1 ;;
esac
# shellcheck disable=SC2086  # the part names, one word each
[ "${download}" = false ] || download_corpus librispeech "${corpus_dir}" ${parts}
if [ -z "${lm_text}" ]; then
  lm_text=transcripts
  for f in "${corpus_dir}/librispeech-lm-norm.txt.gz" "$(dirname "${corpus_dir}")/librispeech-lm-norm.txt.gz"; do
    [ -f "${f}" ] && { lm_text=${f}; break; }
  done
fi

./asr.sh \
  --corpus_dir "${corpus_dir}" \
  "${train_opts[@]}" \
  --valid_set dev-clean \
  --test_sets "dev-clean dev-other test-clean test-other" \
  --data_dir "data/${train_set}" \
  --exp_dir "exp/${train_set}" \
  --word_lm_text "${lm_text}" \
  --word_lm_order 3 \
  --bpe_vocab_size 500 \
  --num_leaves 3000 \
  --speed_perturb_factors "0.9 1.0 1.1" \
  --asr_config "${asr_config}" \
  --ngpu "${ngpu}" \
  --nj 8 \
  --results_file "RESULTS_${train_set}.md" \
  --results_title "LibriSpeech ${train} h" \
  --results_notes "Data: ${corpus_dir} (training set: ${train} h)." \
  "${parsed_rest_options[@]}"
