#!/usr/bin/env bash
# Synthesises the embedded corpora in the real layouts (espeak-ng / flite voices, sox channels):
# corpus/<size>/SpeechCommands and corpus/<size>/VoxCeleb1. A finished corpus is kept.
set -euo pipefail

size=demo
seed=1234
nj=2
. utils/parse_options.sh

for corpus in speech_commands voxceleb1; do
  python -m espnet_distill.data.synth_kws_sv --corpus "${corpus}" --size "${size}" \
    --seed "${seed}" --nj "${nj}" --out-dir "corpus/${size}"
done
