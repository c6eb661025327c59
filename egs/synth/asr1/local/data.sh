#!/usr/bin/env bash
# Synthesises the embedded corpus (espeak-ng/flite + sox, LibriSpeech layout) if it is absent.
set -euo pipefail
size=demo       # tiny | demo | full
seed=1234       # the same seed gives the same corpus
nj=2            # parallel synthesis jobs
out=            # corpus root (default: corpus/<size>)
. utils/parse_options.sh
[ -n "${out}" ] || out=corpus/${size}
# shellcheck disable=SC2154
python -m espnet_distill.data.synth_corpus --size "${size}" --seed "${seed}" --nj "${nj}" \
  --out-dir "${out}" --cmd "${train_cmd}"
