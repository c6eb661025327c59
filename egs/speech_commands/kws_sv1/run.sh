#!/usr/bin/env bash
# Speech Commands (data you already have): keyword spotting on a HuBERT teacher and a distilled
# student, frozen and fine-tuned; with --voxceleb1_dir also speaker verification and joint
# KWS + SV training (Kerpicci et al. 2022).
#   ./run.sh --corpus_dir /data/SpeechCommands --teacher_ckpt hubert_base.pt --student_ckpt distilhubert.pt
#   ./run.sh --corpus_dir /data/SpeechCommands --voxceleb1_dir /data/VoxCeleb1 ...   # + SV, joint
#   ./run.sh --corpus_dir /data/SpeechCommands                  # upstreams from ../../librispeech/ssl1
#   ./run.sh --download true --corpus_dir downloads/SpeechCommands2 ...
# --corpus_dir holds speech_commands_v0.02/ and speech_commands_test_set_v0.02/.
set -euo pipefail
# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # download_corpus

corpus_dir=        # holds speech_commands_v0.02/ and speech_commands_test_set_v0.02/
voxceleb1_dir=     # the VoxCeleb1 dir: adds speaker verification and joint KWS + SV
download=false     # true: lhotse downloads Speech Commands into the parent of --corpus_dir
kws_task=12class   # 12class (SUPERB) or 35class

# Options above are this file's; any other option goes to ./kws_sv.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./kws_sv.sh
. utils/parse_options.sh
[ -n "${corpus_dir}" ] || { echo "$0: --corpus_dir (the Speech Commands dir) is required" >&2; exit 1; }
[ "${download}" = false ] || download_corpus speech_commands "${corpus_dir}"
setups="kws${voxceleb1_dir:+ sv joint}"  # SV and joint KWS + SV with --voxceleb1_dir

# the upstreams of the LibriSpeech ssl1 recipe, unless --teacher_ckpt / --student_ckpt
./kws_sv.sh --speech_commands_dir "${corpus_dir}" --voxceleb1_dir "${voxceleb1_dir}" \
  --setups "${setups}" --kws_task "${kws_task}" --data_dir data --exp_dir exp \
  --ssl_dir ../../librispeech/ssl1 --ssl_exp_dir ../../librispeech/ssl1/exp/train-clean-100 \
  --results_file RESULTS_run.md --results_title "Speech Commands v0.02 (${kws_task})" \
  "${parsed_rest_options[@]}"
