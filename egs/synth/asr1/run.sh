#!/usr/bin/env bash
# Embedded synthetic corpus (LibriSpeech layout): GMM-HMM alignment, a CTC + senone Conformer,
# decoding (CTC greedy and beam + n-gram, TLG, HCLG for the GMM and the hybrid), WER table.
#   ./run.sh                       # demo size (about 1 h of training speech)
#   ./run.sh --corpus_size tiny    # a few minutes of speech (tests)
#   ./run.sh --stage 3             # from the lang dir on; finished stages are skipped
set -euo pipefail

corpus_size=demo   # tiny | demo | full
corpus_seed=1234   # seed of the synthetic corpus
bpe_vocab_size=100 # small: 1 h of speech has few examples of each of a large vocabulary
speed_perturb_factors=auto  # Kaldi/ESPnet speed perturbation of the training set (auto: by size)
asr_config=conf/train_conformer_ctc_senone.yaml  # acoustic model config (tiny: its _tiny.yaml)
# test-other: the held-out engine (festival voices no training split has, test-clean's sentences)
test_sets="test-clean test-other dev-clean"
train_overrides=   # config overrides, added after this file's own for the corpus size
# the SSL teacher of model.mvq_kd / model.hint_kd: the ssl1 recipe's committed teacher (the
# strongest it has), layer 6 of 6: the Transformer layer its SUPERB probes weight most (ASR 0.33;
# layer 0, 0.55, is the CNN's output, which a fbank model sees the information of already)
kd_teacher=../ssl1/exp/full/teacher/model.pt
kd_layer=6

# Options above are this file's; any other option goes to ./asr.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./asr.sh
. utils/parse_options.sh
# Decoding grids, HCLG beam and GMM training sized for the demo's 20-minute budget (measured, see
# README): the best settings of wider grids on dev-clean lie inside these; HCLG beam 11 instead
# of 13 halves the search time for dev WER +0.1 (GMM-HMM) and -0.2 (hybrid).
demo_opts=(--mono_subset 300 --lm_weights "0.3 0.5" --word_bonuses "1.5 2.5"
           --acoustic_scales "0.8 1.0" --blank_penalties "2 4" --gmm_acoustic_scales "0.05 0.07"
           --hybrid_acoustic_scales "0.1 0.14 0.2" --hclg_beam 11)
[ "${corpus_size}" = tiny ] && asr_config=${asr_config%.yaml}_tiny.yaml
# the tiny corpus's MVQ quantizer: a smoke test's few steps (the recipes' 1000 take 15 min)
kd_opts=(--kd_teacher "${kd_teacher}" --kd_layer "${kd_layer}")
[ "${corpus_size}" = tiny ] && kd_opts+=(--kd_quantizer_iters 20 --kd_quantizer_cuts 20)
# The full corpus (about 10 h) trains on the demo's compute: 2 epochs of 10 h without speed
# perturbation see 20 h of speech, the demo's 7 epochs of 3 x 1 h see 21 h, but of 10x more
# distinct speech. Both can be overridden (--speed_perturb_factors, --train_overrides).
size_overrides=
if [ "${corpus_size}" = full ]; then
  [ "${speed_perturb_factors}" = auto ] && speed_perturb_factors=
  size_overrides="train.max_epochs=2 train.average_best=1"
fi
[ "${speed_perturb_factors}" = auto ] && speed_perturb_factors="0.9 1.0 1.1"
results_file=RESULTS.md
[ "${corpus_size}" = demo ] || results_file=RESULTS_${corpus_size}.md

./asr.sh \
  --corpus_dir "corpus/${corpus_size}/LibriSpeech" \
  --local_data_opts "--size ${corpus_size} --seed ${corpus_seed}" \
  --data_dir "data/${corpus_size}" \
  --exp_dir "exp/${corpus_size}" \
  --bpe_extra_text "corpus/${corpus_size}/librispeech-lm-norm.txt.gz" \
  --word_lm_text "corpus/${corpus_size}/librispeech-lm-norm.txt.gz" \
  --asr_config "${asr_config}" \
  --test_sets "${test_sets}" \
  --bpe_vocab_size "${bpe_vocab_size}" \
  --speed_perturb_factors "${speed_perturb_factors}" \
  --results_file "${results_file}" \
  --results_title "synth asr1 (${corpus_size} corpus)" \
  --train_overrides "${size_overrides}${size_overrides:+ }${train_overrides}" \
  "${demo_opts[@]}" "${kd_opts[@]}" "${parsed_rest_options[@]}"
