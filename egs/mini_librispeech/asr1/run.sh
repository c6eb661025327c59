#!/usr/bin/env bash
# Mini LibriSpeech (Kaldi's mini_librispeech: train-clean-5, 5 h; dev-clean-2, 2 h), data you
# already have: the synthetic recipe's CPU-sized Conformer (BPE CTC + hybrid senone head), TLG /
# HCLG decoding with a word n-gram on the training transcripts.
#   ./run.sh --corpus_dir /data/LibriSpeech        # holds train-clean-5/ and dev-clean-2/
#   ./run.sh --download true --corpus_dir downloads/LibriSpeech
# As in Kaldi's recipe, dev-clean-2 is the only evaluation set: decoding weights are tuned on it
# and its WER is reported, so it is an optimistic figure (RESULTS notes say so).
set -euo pipefail
# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # download_corpus

corpus_dir=        # the LibriSpeech dir of the mini parts
download=false     # true: lhotse downloads them into the parent of --corpus_dir (network)

# Options above are this file's; any other option goes to ./asr.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./asr.sh
. utils/parse_options.sh
[ -n "${corpus_dir}" ] || { echo "$0: --corpus_dir (the LibriSpeech dir) is required" >&2; exit 1; }
[ "${download}" = false ] || download_corpus mini_librispeech "${corpus_dir}"

./asr.sh \
  --corpus_dir "${corpus_dir}" \
  --train_set train-clean-5 \
  --valid_set dev-clean-2 \
  --test_sets dev-clean-2 \
  --data_dir data \
  --exp_dir exp \
  --word_lm_text transcripts \
  --bpe_vocab_size 200 \
  --num_leaves 1000 \
  --speed_perturb_factors "0.9 1.0 1.1" \
  --asr_config conf/train_conformer_ctc_senone.yaml \
  --results_file RESULTS_run.md \
  --results_title "mini LibriSpeech" \
  --results_notes "Data: ${corpus_dir}. dev-clean-2 is both the tuning and the reported set (Kaldi's mini_librispeech has no other): an optimistic WER." \
  "${parsed_rest_options[@]}"
