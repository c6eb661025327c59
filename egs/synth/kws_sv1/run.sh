#!/usr/bin/env bash
# Embedded synthetic corpora: keyword spotting (Speech Commands v0.02 layout) and speaker
# verification (VoxCeleb1 layout) on a distilled speech representation model (Kerpicci et al.
# 2022). The teacher and the student (DistilHuBERT by default) come from ../ssl1 (on the same
# corpus size unless --ssl_corpus_size says otherwise); both are fine-tuned single-task and
# jointly, frozen and fine-tuned.
#   ./run.sh                                   # demo size
#   ./run.sh --corpus_size tiny                # seconds of speech (tests)
#   ./run.sh --ssl_corpus_size full            # upstreams distilled on ssl1's 8.6 h corpus
#   ./run.sh --teacher_ckpt T --student_ckpt S # given upstreams instead of ../ssl1's
set -euo pipefail

corpus_size=demo   # tiny | demo | full
ssl_corpus_size=   # corpus size of the ../ssl1 run giving the upstreams (default: corpus_size)
finetune_config=conf/finetune.yaml  # fine-tuning config (tiny: its _tiny.yaml)

# Options above are this file's; any other option goes to ./kws_sv.sh (after the ones set below,
# so it overrides them).
PARSE_OPTIONS_PASS_TO=./kws_sv.sh
. utils/parse_options.sh
ssl_corpus_size=${ssl_corpus_size:-${corpus_size}}
[ "${corpus_size}" = tiny ] && finetune_config=${finetune_config%.yaml}_tiny.yaml
# Upstreams from another ssl1 corpus size get their own exp dir and results file.
tag=${corpus_size}
[ "${ssl_corpus_size}" = "${corpus_size}" ] || tag=${corpus_size}_ssl_${ssl_corpus_size}
results_file=RESULTS.md
[ "${tag}" = demo ] || results_file=RESULTS_${tag}.md

./kws_sv.sh --local_data_opts "--size ${corpus_size}" \
  --speech_commands_dir "corpus/${corpus_size}/SpeechCommands" \
  --voxceleb1_dir "corpus/${corpus_size}/VoxCeleb1" \
  --data_dir "data/${corpus_size}" --exp_dir "exp/${tag}" \
  --ssl_dir ../ssl1 --ssl_opts "--corpus_size ${ssl_corpus_size}" \
  --ssl_exp_dir "../ssl1/exp/${ssl_corpus_size}" \
  --finetune_config "${finetune_config}" --results_file "${results_file}" \
  --results_title "synth kws_sv1 (${corpus_size} corpora, upstreams of ssl1 ${ssl_corpus_size})" \
  "${parsed_rest_options[@]}"
