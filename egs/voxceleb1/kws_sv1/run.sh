#!/usr/bin/env bash
# VoxCeleb1 (data you already have): speaker verification (EER, minDCF on veri_test.txt) on a
# HuBERT teacher and a distilled student, frozen and fine-tuned; with --speech_commands_dir also
# keyword spotting and joint KWS + SV training (Kerpicci et al. 2022).
#   ./run.sh --corpus_dir /data/VoxCeleb1 --teacher_ckpt hubert_base.pt --student_ckpt distilhubert.pt
#   ./run.sh --corpus_dir /data/VoxCeleb1 --speech_commands_dir /data/SpeechCommands ...  # + KWS, joint
# --corpus_dir holds wav/, vox1_meta.csv and veri_test.txt (the official trial list).
set -euo pipefail
# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # download_corpus

corpus_dir=        # holds wav/, vox1_meta.csv and veri_test.txt
speech_commands_dir=  # the Speech Commands dir: adds keyword spotting and joint KWS + SV
download=false     # true: lhotse downloads VoxCeleb1 into the parent of --corpus_dir

# Options above are this file's; any other option goes to ./kws_sv.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./kws_sv.sh
. utils/parse_options.sh
[ -n "${corpus_dir}" ] || { echo "$0: --corpus_dir (the VoxCeleb1 dir) is required" >&2; exit 1; }
[ "${download}" = false ] || download_corpus voxceleb1 "${corpus_dir}"
setups=sv
[ -n "${speech_commands_dir}" ] && setups="kws sv joint"

# the upstreams of the LibriSpeech ssl1 recipe, unless --teacher_ckpt / --student_ckpt
./kws_sv.sh --voxceleb1_dir "${corpus_dir}" --speech_commands_dir "${speech_commands_dir}" \
  --setups "${setups}" --data_dir data --exp_dir exp \
  --ssl_dir ../../librispeech/ssl1 --ssl_exp_dir ../../librispeech/ssl1/exp/train-clean-100 \
  --results_file RESULTS_run.md --results_title "VoxCeleb1" "${parsed_rest_options[@]}"
