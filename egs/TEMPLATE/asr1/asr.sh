#!/usr/bin/env bash
# The stage engine of every ASR recipe (ESPnet egs2 style). A corpus's run.sh sets options and
# calls this script; every option below can also be given on the command line (--name value).
#
# Stages (numbers are part of the interface, see README.md):
#   1 manifests (lhotse; local/data.sh first, e.g. to synthesise the embedded corpus), then
#     validated: every item dropped is listed with its reason in the part's one rejected list,
#     <data_dir>/manifests/rejected_<part>.txt (stage 2 adds audio that fails to decode)
#   2 fbank 80-d (lhotse, lilcom) + global CMVN + Kaldi data dirs
#   3 lang dirs: sentencepiece BPE; phones (CMUdict + espeak-ng G2P, topo, L.fst)
#   4 GMM-HMM alignment (flat-start monophones -> triphone tree): senone/monophone/subword
#     frame targets (kaldiio ark/scp)
#   5 word n-gram (KenLM lmplz) on --word_lm_text; unit LMs come with the KD recipe; for a
#     config with model.mvq_kd, the SSL teacher's codebook indexes of the train and valid cuts
#   6 acoustic model training (Lightning, resumable)
#   7 decoding graphs (kaldifst): TLG (CTC topology o BPE lexicon o word n-gram) and HCLG (HMM o
#     triphone context o phone lexicon o word n-gram, Kaldi's mkgraph.sh) for the stage-4 tree
#   8 decoding: CTC greedy; CTC prefix beam search + word n-gram; WFST search over TLG; over
#     HCLG the stage-4 GMM-HMM and, with a senone head, the hybrid network; LM weights /
#     acoustic scales tuned on --valid_set, then applied to --test_sets
#   9 scoring: WER, sclite alignments, 95% CI, RESULTS.md
# Each stage leaves a .done marker (or its final file) and is skipped when rerun; --force true
# redoes the stages in --stage..--stop_stage.
set -euo pipefail

# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # recipe_start (path.sh, cmd.sh), log, is_done, need, check_stages, supervise
recipe_start "$@"  # Ctrl-C, SIGTERM or the death of run.sh stop every job of every stage

# ---------------------------------------------------------------- configuration
. utils/engine_options.sh  # stage, force, min_free_mb, ngpu
stop_stage=9             # last stage to run
nj=2                     # parallel jobs for data preparation
num_nodes=1              # nodes for multi-node training
cpu_procs=1              # without GPUs: data-parallel CPU training processes (DDP over gloo)
seed=1234                # random seed of training
corpus_dir=              # LibriSpeech-layout dir holding the split folders
local_data_opts=         # options passed to local/data.sh
train_set=train-clean-100  # training split (lhotse part name)
train_parts=             # parts joined into --train_set at stage 1, e.g. LibriSpeech 960 h:
                         # "train-clean-100 train-clean-360 train-other-500" (train_set=train-960)
valid_set=dev-clean      # validation split
validate_charset="A-Z' "  # transcript characters the units cover (stage-1 validation; "": any)
speed_perturb_factors=   # e.g. "0.9 1.0 1.1": speed-perturbed copies of the training set
test_sets="test-clean dev-clean"  # splits to decode and score
data_dir=data            # where manifests, features and lang dirs go
exp_dir=exp              # where experiments go
bpe_vocab_size=256       # sentencepiece BPE vocabulary size
bpe_extra_text=          # extra sentences (plain or .gz) for the BPE model, e.g. LM text
hmm_num_states=3         # HMM states per phone (phone lang dir topology)
hmm_num_sil_states=3     # HMM states of silence phones
sil_prob=0.5             # optional silence probability between words (L.fst)
position_dependent_phones=false  # Kaldi's _B/_I/_E/_S word-position phones
num_leaves=500           # senones: leaves of the triphone decision tree (stage 4)
mono_iters=10            # monophone GMM-HMM EM iterations
mono_subset=0            # monophones on the N shortest training utterances (0: all)
tri_iters=10             # triphone GMM-HMM EM iterations
align_eval_engines="festival flite"  # TTS engines whose phone timings check the alignment
align_eval_utts=50       # valid-set sentences they synthesise for it
asr_config=conf/train_conformer_ctc_senone.yaml  # acoustic model config
tag=                     # experiment name suffix (default: the config file name)
train_overrides=         # extra config overrides, e.g. "train.max_epochs=3 optim.lr=0.001"
word_lm_text=            # sentences for the word n-gram (plain or .gz; never test text), or
                         # "transcripts": the training set's transcripts (corpora without LM text)
word_lm_order=3          # n-gram order
unit_lms=                # units whose LM stage 5 trains for KD, e.g. "senone monophone subword"
unit_lm_config=conf/lm_unit_lstm.yaml  # unit LM config (espnet2 LSTM or Transformer LM)
subword_lm_hf=           # a Hugging Face causal LM dir to use as the subword LM (its tokenizer
                         # must hold the BPE pieces) instead of training one
kd_teacher=              # SSL teacher of model.mvq_kd / model.hint_kd: any checkpoint load_hubert
                         # reads (torchaudio, Hugging Face dir, fairseq, the ssl1 recipe's own)
kd_layer=4               # its layer stage 5 quantizes for model.mvq_kd (0: the CNN's output;
                         # icefall: 36 of HuBERT X-Large's 48, three quarters up)
kd_num_codebooks=8       # one-byte codebooks per 20 ms teacher frame (icefall: 8)
kd_quantizer_cuts=1000   # training cuts the quantizer learns on (icefall: 1000)
kd_quantizer_iters=1000  # steps of each of its two training phases (icefall: 10000 on GPUs; a step
                         # of 512 frames takes about 0.45 s on 2 CPU cores)
decode_methods=          # stage-8 decoders, a subset of greedy beam_lm tlg hclg (empty: all;
                         # each runs where its inputs exist)
beam=10                  # beam of the CTC prefix beam search
lm_weights="0.3 0.5 0.7 0.9"  # LM weights tried on --valid_set
word_bonuses="0.5 1.5 2.5"    # word insertion bonuses tried on --valid_set
acoustic_scales="0.8 1.0 1.2"  # TLG acoustic scales tried on --valid_set
blank_penalties="0 2 4"  # TLG blank penalties tried on --valid_set (more: fewer deletions)
graph_beam=12            # TLG search beam (bench/hclg_rtf.py: 12 vs 16, WER +0.1, search 4.5x faster)
gmm_acoustic_scales="0.05 0.07 0.1"  # GMM-HMM HCLG acoustic scales tried on --valid_set
hybrid_acoustic_scales="0.07 0.1 0.14"  # hybrid (senone head) HCLG acoustic scales, same
hclg_beam=13             # HCLG search beam
graph_backend=kaldi      # WFST search library of tlg and hclg: kaldi (kaldi-decoder), k2
                         # (tools/install_k2.sh), or "kaldi k2": both, decode dirs *_tlg and
                         # *_tlg_k2 side by side
rescore_lm_order=        # N (e.g. 4): stage 5 trains a word N-gram on --word_lm_text too, and
                         # stage 8 rescores k2's TLG lattices with it (decode dirs *_tlg_k2_rescore)
lm_scales="0.6 0.8 1.0 1.2"  # its LM weights tried on --valid_set
results_title="ASR results"  # title of RESULTS.md
results_notes=           # markdown placed in RESULTS.md after the environment
results_file=            # where RESULTS.md goes (default: <exp_dir>/RESULTS.md)
model_exp_dir=           # decode another data set with a system trained elsewhere: that recipe's
                         # exp dir (am_<tag>/model.pt, align/tri, the settings tuned on its dev
                         # set). Stages 3-7 are then that recipe's and are skipped; stages 1-2
                         # prepare this recipe's --test_sets, 8-9 decode and score them
model_data_dir=          # that recipe's data dir (lang dirs, word n-gram, graphs)

. utils/parse_options.sh
# the stage-8 decoders, in RESULTS.md's order (= espnet_distill.config.DECODE_METHODS; tested)
known_decode_methods="greedy beam_lm tlg hclg"
[ -n "${decode_methods}" ] || decode_methods=${known_decode_methods}
# their decode dirs' suffixes (= espnet_distill.config.DECODE_DIR_METHODS; tested)
decode_dir_methods="greedy beam_lm tlg tlg_k2 tlg_k2_rescore hclg hclg_k2"
# the WFST methods' variants: by kaldi-decoder, by k2, and k2's lattices rescored
wfst_variants=
for backend in ${graph_backend}; do
  case ${backend} in
    kaldi) wfst_variants="${wfst_variants} kaldi" ;;
    k2) wfst_variants="${wfst_variants} k2"
        [ -n "${rescore_lm_order}" ] && wfst_variants="${wfst_variants} k2_rescore" ;;
    *) log "Error: --graph_backend: unknown '${backend}' (kaldi k2)"; exit 1 ;;
  esac
done
# the decode dir methods of WFST method $1 (tlg, hclg): tlg, tlg_k2, tlg_k2_rescore (HCLG
# lattices are not rescored: not determinized, they hold millions of arcs an utterance)
wfst_methods() {
  local variant
  for variant in ${wfst_variants}; do
    case ${variant} in
      kaldi) echo "$1" ;;
      k2_rescore) [ "$1" = tlg ] && echo "$1_${variant}" ;;
      *) echo "$1_${variant}" ;;
    esac
  done
}
# the backend options of decode dir method $1, in the array backend_opts
backend_opts() {
  backend_opts=()
  case $1 in
    *_k2) backend_opts=(--graph-backend k2) ;;
    *_k2_rescore)
      need 5 "${rescore_lm}"
      backend_opts=(--graph-backend k2 --rescore-lm "${rescore_lm}") ;;
  esac
}
if [[ " ${graph_backend} " == *" k2 "* ]] && ! python -c "import k2" 2> /dev/null; then
  log "Error: --graph_backend k2: k2 cannot be imported (bash tools/install_k2.sh builds it)"
  exit 1
fi
if [ -n "${rescore_lm_order}" ] && [[ " ${graph_backend} " != *" k2 "* ]]; then
  log "Error: --rescore_lm_order rescores k2's lattices: it needs k2 in --graph_backend"
  exit 1
fi

[ $# -eq 0 ] || { log "Error: unexpected arguments: $*"; exit 1; }
check_stages 1 9 6 6  # GPUs: training
[ -n "${tag}" ] || tag=$(basename "${asr_config}" .yaml)
[ -n "${results_file}" ] || results_file=${exp_dir}/RESULTS.md
# the system that decodes: this recipe's own, or (--model_exp_dir) one trained elsewhere
foreign_model=false
if [ -n "${model_exp_dir}" ] && [ "$(realpath -m "${model_exp_dir}")" != "$(realpath -m "${exp_dir}")" ]; then
  foreign_model=true
  [ -n "${model_data_dir}" ] || { log "Error: --model_exp_dir needs --model_data_dir" >&2; exit 1; }
fi
model_exp_dir=${model_exp_dir:-${exp_dir}}
model_data_dir=${model_data_dir:-${data_dir}}
am_dir=${exp_dir}/am_${tag}                # training (stage 6) and decoding outputs
model_am_dir=${model_exp_dir}/am_${tag}    # the model that decodes, and its tuned settings
lang_dir=${model_data_dir}/lang_bpe_${bpe_vocab_size}
phone_lang_dir=${model_data_dir}/lang_phone
fbank_dir=${data_dir}/fbank
manifest_dir=${data_dir}/manifests
# the sets stages 1-2 prepare; with a model from elsewhere only those it decodes
sets="${train_set} ${valid_set} ${test_sets}"
[ "${foreign_model}" = true ] && sets=${test_sets}
# shellcheck disable=SC2086
mapfile -t all_sets < <(unique ${sets})

check_output_dir "${data_dir}" "${min_free_mb}"
check_output_dir "${exp_dir}" "${min_free_mb}"

# ---------------------------------------------------------------- stages
if [ "${foreign_model}" = true ] && [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 3 ]; then
  log "Stages 3-7: the system of ${model_exp_dir} and ${model_data_dir} (--model_exp_dir): nothing to build here"
fi
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: lhotse manifests for ${all_sets[*]}"
  t0=${SECONDS}
  if is_done "${manifest_dir}/.done"; then
    log "  ${manifest_dir}/.done exists: skipping"
  else
    if [ -x local/data.sh ]; then
      # shellcheck disable=SC2086
      local/data.sh ${local_data_opts}
    fi
    [ -n "${corpus_dir}" ] || { log "Error: --corpus_dir is not set"; exit 1; }
    [ "${force}" = true ] && rm -f "${manifest_dir}"/*.jsonl.gz
    manifest_parts=("${all_sets[@]}")
    combine=()
    if [ -n "${train_parts}" ]; then
      # shellcheck disable=SC2206
      manifest_parts=(${train_parts})
      for part in "${all_sets[@]}"; do
        [ "${part}" = "${train_set}" ] || manifest_parts+=("${part}")
      done
      combine=(--combine "${train_set}=${train_parts// /,}")
    fi
    python -m espnet_distill.bin.prepare_manifests --corpus-dir "${corpus_dir}" \
      --parts "${manifest_parts[@]}" --out-dir "${manifest_dir}" "${combine[@]}"
    vocab=(--vocab-part "${train_set}")
    [ "${foreign_model}" = true ] && vocab=(--lexicon "${lang_dir}/words.txt")  # the model's words
    log "  validating ${all_sets[*]} (audio, durations, transcripts, ids; OOV vs ${vocab[1]})"
    python -m espnet_distill.bin.validate_data --manifest-dir "${manifest_dir}" \
      --parts "${all_sets[@]}" "${vocab[@]}" --charset "${validate_charset}" --fix true
    touch "${manifest_dir}/.done"
  fi
  stage_time 1 manifests "${t0}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  log "Stage 2: fbank features, Kaldi data dirs$([ "${foreign_model}" = true ] || echo ", global CMVN (from ${train_set})")"
  t0=${SECONDS}
  for part in "${all_sets[@]}"; do
    need 1 "${manifest_dir}/librispeech_recordings_${part}.jsonl.gz" \
      "${manifest_dir}/librispeech_supervisions_${part}.jsonl.gz"
  done
  need 1 "${manifest_dir}/.done"  # validated
  for part in "${all_sets[@]}"; do
    out=${fbank_dir}/${part}
    if is_done "${out}/.done"; then
      log "  ${part}: done, skipping"
      continue
    fi
    sp_opt=()
    # shellcheck disable=SC2206
    [ "${part}" = "${train_set}" ] && [ -n "${speed_perturb_factors}" ] && sp_opt=(--speed-perturb ${speed_perturb_factors})
    n=$(python -m espnet_distill.bin.compute_fbank split --manifest-dir "${manifest_dir}" \
      --part "${part}" --nj "${nj}" --out-dir "${out}" "${sp_opt[@]}")
    # shellcheck disable=SC2154
    ${train_cmd} JOB=1:"${n}" "${out}/log/fbank.JOB.log" \
      python -m espnet_distill.bin.compute_fbank extract --out-dir "${out}" --job JOB
    cmvn_opt=()
    [ "${part}" = "${train_set}" ] && cmvn_opt=(--cmvn "${fbank_dir}/cmvn.npz")
    python -m espnet_distill.bin.compute_fbank combine --out-dir "${out}" --nj "${n}" \
      --part "${part}" --kaldi-dir "${data_dir}/${part//-/_}" "${cmvn_opt[@]}" \
      --rejected-list "${manifest_dir}/rejected_${part}.txt"
    touch "${out}/.done"
  done
  stage_time 2 fbank "${t0}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ] && [ "${foreign_model}" = false ]; then
  log "Stage 3: BPE lang dir ${lang_dir}"
  t0=${SECONDS}
  need 2 "${data_dir}/${train_set//-/_}/text"
  if is_done "${lang_dir}/.done"; then
    log "  ${lang_dir}/.done exists: skipping"
  else
    extra=()
    [ -n "${bpe_extra_text}" ] && extra=(--extra-text "${bpe_extra_text}")
    python -m espnet_distill.bin.prepare_bpe --text "${data_dir}/${train_set//-/_}/text" \
      --vocab-size "${bpe_vocab_size}" --lang-dir "${lang_dir}" "${extra[@]}"
    touch "${lang_dir}/.done"
  fi
  log "Stage 3: phone lang dir ${phone_lang_dir} (CMUdict + espeak-ng G2P, L.fst)"
  if is_done "${phone_lang_dir}/.done"; then
    log "  ${phone_lang_dir}/.done exists: skipping"
  else
    python -m espnet_distill.bin.prepare_lang --words "${lang_dir}/words.txt" \
      --lang-dir "${phone_lang_dir}" --num-states "${hmm_num_states}" \
      --num-sil-states "${hmm_num_sil_states}" --sil-prob "${sil_prob}" \
      --position-dependent "${position_dependent_phones}"
    touch "${phone_lang_dir}/.done"
  fi
  stage_time 3 lang "${t0}"
fi

align_dir=${exp_dir}/align
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ "${foreign_model}" = false ]; then
  t0=${SECONDS}
  need 2 "${fbank_dir}/cuts_${train_set}.jsonl.gz" "${fbank_dir}/cuts_${valid_set}.jsonl.gz"
  need 3 "${phone_lang_dir}/.done" "${lang_dir}/bpe.model"
  if is_done "${align_dir}/targets/.done"; then
    log "Stage 4: ${align_dir}/targets/.done exists: skipping"
  else
    log "Stage 4: GMM-HMM mono -> tri (${num_leaves} senones) alignment, frame targets"
    log "  progress: tail -f ${align_dir}/align.log (reruns resume after the last finished system)"
    # bin/align.py resumes after each finished system: --force starts it from nothing
    [ "${force}" = true ] && rm -rf "${align_dir}"
    mkdir -p "${align_dir}"
    ${train_cmd} "${align_dir}/align.log" \
      python -m espnet_distill.bin.align --lang-dir "${phone_lang_dir}" \
        --cuts "${fbank_dir}/cuts_${train_set}.jsonl.gz" --bpe-model "${lang_dir}/bpe.model" \
        --extra-cuts "${fbank_dir}/cuts_${valid_set}.jsonl.gz" --exp-dir "${align_dir}" --nj "${nj}" --num-leaves "${num_leaves}" \
        --mono-iters "${mono_iters}" --mono-subset "${mono_subset}" --tri-iters "${tri_iters}"
    grep -E "tree:|targets for|iter ${tri_iters}:|iter ${tri_iters} " "${align_dir}/align.log" \
      | sed 's/^/  /' || true
  fi
  # alignment quality: phone boundaries vs the timings festival and flite report for their audio
  for engine in ${align_eval_engines}; do
    out=${align_dir}/quality_${engine}
    if is_done "${out}/summary.yaml"; then
      log "  ${out}/summary.yaml exists: skipping"
    elif ! command -v "${engine}" > /dev/null; then
      log "  ${engine} is not installed: no alignment check against its timings"
    else
      python -m espnet_distill.bin.eval_alignment --engine "${engine}" --align-dir "${align_dir}" \
        --lang-dir "${phone_lang_dir}" \
        --text "${data_dir}/${valid_set//-/_}/text" "${data_dir}/${train_set//-/_}/text" \
        --num-utts "${align_eval_utts}" --nj "${nj}" --out-dir "${out}" 2> "${out}.log" \
        | sed 's/^/  /'
    fi
  done
  stage_time 4 align "${t0}"
fi

lm_dir=${model_data_dir}/lm
word_lm=${lm_dir}/word_${word_lm_order}gram.bin
rescore_lm=
[ -n "${rescore_lm_order}" ] && rescore_lm=${lm_dir}/word_${rescore_lm_order}gram.arpa
graph_dir=${model_data_dir}/graph_tlg_bpe_${bpe_vocab_size}_${word_lm_order}gram
hclg_dir=${model_data_dir}/graph_hclg_${word_lm_order}gram
tri_dir=${align_dir}/tri                         # stage-4 GMM; its decoding outputs
model_align_dir=${model_exp_dir}/align           # the alignment system that decodes over HCLG
unit_lm_dir=${exp_dir}/unit_lm
# stage 5's codebook indexes of the SSL teacher (model.mvq_kd), by teacher dir, layer and size
kd_codebook_dir=
if [ -n "${kd_teacher}" ]; then
  kd_codebook_dir=${exp_dir}/kd_codebooks/$(basename "$(dirname "$(realpath -m "${kd_teacher}")")")
  kd_codebook_dir=${kd_codebook_dir}_layer${kd_layer}_cb${kd_num_codebooks}
fi
# config_key KEY: the --asr_config sets KEY (e.g. model.mvq_kd)
config_key() {
  python -m espnet_distill.bin.config_value --config "${asr_config}" --key "$1" > /dev/null
}
# the dev and test sets' overlap with the LM text (verbatim sentences, n-grams the LM holds):
# logged with a warning when high, and shown beside each WER; sets already measured are kept
lm_overlap() {
  local refs=() part sets=${test_sets} texts=${word_lm_text}
  [ "${foreign_model}" = true ] || sets="${valid_set} ${test_sets}"
  # shellcheck disable=SC2086
  for part in $(unique ${sets}); do
    need 2 "${data_dir}/${part//-/_}/text"
    refs+=("${part}=${data_dir}/${part//-/_}/text")
  done
  # the text the word n-gram was trained on, as stage 5 recorded it (a model from elsewhere)
  [ -f "${lm_dir}/lm_text.list" ] && texts=$(tr '\n' ' ' < "${lm_dir}/lm_text.list")
  # shellcheck disable=SC2086
  python -m espnet_distill.bin.lm_overlap --lm-text ${texts} --model "${word_lm}" \
    --order "${word_lm_order}" --ref "${refs[@]}" --out-file "${data_dir}/lm/overlap.yaml" 2>&1 \
    | sed 's/^/  /'
}

if [ "${word_lm_text}" = transcripts ]; then
  word_lm_text=${lm_dir}/transcripts_${train_set}.txt
  if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ] && [ "${foreign_model}" = false ] &&
     ! is_done "${word_lm_text}"; then
    mkdir -p "${lm_dir}"
    # each sentence once: not again for the speed-perturbed copies (lhotse's ids <id>_sp<factor>),
    # which would triple every count the n-gram's Kneser-Ney discounts are estimated from
    awk -v factors="${speed_perturb_factors}" '
      BEGIN { n = split(factors, f, " "); for (i = 1; i <= n; i++) copy["_sp" f[i]] = 1 }
      match($1, /_sp[0-9.]+$/) && (substr($1, RSTART) in copy) { next }
      { sub(/^[^ ]+ /, ""); print }
    ' "${data_dir}/${train_set//-/_}/text" > "${word_lm_text}.tmp"
    mv "${word_lm_text}.tmp" "${word_lm_text}"
  fi
fi
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ] && [ "${foreign_model}" = false ]; then
  t0=${SECONDS}
  for text in ${word_lm_text}; do
    [ -f "${text}" ] || { log "Error: --word_lm_text: ${text} does not exist"; exit 1; }
  done
  if [ -n "${unit_lms}" ]; then
    need 3 "${phone_lang_dir}/.done" "${lang_dir}/bpe.model"
    need 4 "${align_dir}/targets/.done"
  fi
  if [ -z "${word_lm_text}" ]; then
    log "Stage 5: no --word_lm_text: no word n-gram and no unit LMs"
    [ -z "${unit_lms}" ] || { log "Error: --unit_lms needs --word_lm_text (their text)"; exit 1; }
  else
    # the decoding graphs' n-gram, and the larger one that rescores k2's lattices (stage 8)
    for order in ${word_lm_order} ${rescore_lm_order}; do
      if is_done "${lm_dir}/word_${order}gram.bin"; then
        log "Stage 5: ${lm_dir}/word_${order}gram.bin exists: skipping"
        continue
      fi
      log "Stage 5: word ${order}-gram on ${word_lm_text} (KenLM)"
      # shellcheck disable=SC2086
      python -m espnet_distill.bin.train_word_ngram --text ${word_lm_text} \
        --order "${order}" --out-dir "${lm_dir}"
    done
  fi
  if [ -n "${word_lm_text}" ]; then
    # what the n-gram was trained on, for the overlap of sets another recipe decodes with it
    # shellcheck disable=SC2086
    [ -f "${lm_dir}/lm_text.list" ] || realpath ${word_lm_text} > "${lm_dir}/lm_text.list"
    lm_overlap
  fi
  # unit LMs (cross-modal KD teachers): on the same text, converted to each unit
  for unit in ${unit_lms}; do
    out=${unit_lm_dir}/${unit}
    if is_done "${out}/model.pt"; then
      log "Stage 5: ${out}/model.pt exists: skipping"
      continue
    fi
    hf_opts=()
    [ "${unit}" = subword ] && [ -n "${subword_lm_hf}" ] && hf_opts=(--hf-model "${subword_lm_hf}")
    log "Stage 5: ${unit} LM ${out} with ${hf_opts[1]:-${unit_lm_config}}"
    # the trainer resumes from its checkpoints and returns a finished model.pt: --force removes them
    [ "${force}" = true ] && rm -rf "${out}"
    mkdir -p "${out}"
    # shellcheck disable=SC2086
    ${train_cmd} "${out}/train.log" python -m espnet_distill.bin.train_unit_lm --unit "${unit}" \
      --lang-dir "${phone_lang_dir}" --align-dir "${align_dir}" --bpe-model "${lang_dir}/bpe.model" \
      --text ${word_lm_text} --valid-text "${data_dir}/${valid_set//-/_}/text" \
      --config "${unit_lm_config}" --exp-dir "${out}" "${hf_opts[@]}"
    sed 's/^/  /' "${out}/ppl.yaml"
  done
  # MVQ KD: the SSL teacher layer's codebook indexes of the train and valid cuts
  if config_key model.mvq_kd; then
    [ -n "${kd_teacher}" ] || { log "Error: model.mvq_kd needs --kd_teacher"; exit 1; }
    need 2 "${fbank_dir}/cuts_${train_set}.jsonl.gz" "${fbank_dir}/cuts_${valid_set}.jsonl.gz"
    if is_done "${kd_codebook_dir}/quantizer.yaml"; then
      log "Stage 5: ${kd_codebook_dir}/quantizer.yaml exists: skipping"
    else
      log "Stage 5: codebooks of ${kd_teacher} layer ${kd_layer} in ${kd_codebook_dir}"
      log "  progress: tail -f ${kd_codebook_dir}/extract.log (finished parts are kept)"
      [ "${force}" = true ] && rm -rf "${kd_codebook_dir}"
      mkdir -p "${kd_codebook_dir}"
      ${train_cmd} "${kd_codebook_dir}/extract.log" python -m espnet_distill.bin.teacher_codebooks \
        --teacher "${kd_teacher}" --layer "${kd_layer}" --num-codebooks "${kd_num_codebooks}" \
        --train-cuts "${fbank_dir}/cuts_${train_set}.jsonl.gz" \
        --cuts "${fbank_dir}/cuts_${train_set}.jsonl.gz" "${fbank_dir}/cuts_${valid_set}.jsonl.gz" \
        --quantizer-cuts "${kd_quantizer_cuts}" --quantizer-iters "${kd_quantizer_iters}" \
        --seed "${seed}" --out-dir "${kd_codebook_dir}"
      sed 's/^/  /' "${kd_codebook_dir}/quantizer.yaml"
    fi
  fi
  stage_time 5 word_lm "${t0}"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ "${foreign_model}" = false ]; then
  log "Stage 6: training ${am_dir} with ${asr_config}"
  t0=${SECONDS}
  need 2 "${fbank_dir}/cuts_${train_set}.jsonl.gz" "${fbank_dir}/cuts_${valid_set}.jsonl.gz" \
    "${fbank_dir}/cmvn.npz"
  need 3 "${lang_dir}/bpe.model"
  if is_done "${am_dir}/model.pt"; then
    log "  ${am_dir}/model.pt exists: skipping"
  else
    [ "${force}" = true ] && rm -rf "${am_dir}"
    mkdir -p "${am_dir}"
    cp "${asr_config}" "${am_dir}/$(basename "${asr_config}")"
    overrides=()
    targets_opts=()
    # a config with a hybrid senone head (model.senone_head) trains on the stage-4 alignment
    [ -f "${align_dir}/targets/.done" ] && targets_opts=(--targets-dir "${align_dir}/targets")
    # KD heads / label interpolation (model.kd_heads, model.label_interpolation) use the unit LMs
    [ -d "${unit_lm_dir}" ] && targets_opts+=(--unit-lm-dir "${unit_lm_dir}"
                                              --phone-lang-dir "${phone_lang_dir}")
    # KD from the SSL teacher: stage 5's codebooks (model.mvq_kd), the teacher (model.hint_kd)
    if config_key model.mvq_kd; then
      [ -n "${kd_teacher}" ] || { log "Error: model.mvq_kd needs --kd_teacher"; exit 1; }
      need 5 "${kd_codebook_dir}/quantizer.yaml"
      targets_opts+=(--codebook-dir "${kd_codebook_dir}")
    fi
    [ -n "${kd_teacher}" ] && targets_opts+=(--kd-teacher "${kd_teacher}")
    # shellcheck disable=SC2206
    [ -n "${train_overrides}" ] && overrides=(--override ${train_overrides})
    log "  progress: tail -f ${am_dir}/train.log (a killed run resumes from its last checkpoint)"
    # shellcheck disable=SC2154
    ${cuda_cmd} --gpu "${ngpu}" --num-nodes "${num_nodes}" "${am_dir}/train.log" \
      python -m espnet_distill.bin.train_am --config "${asr_config}" "${targets_opts[@]}" \
      --train-cuts "${fbank_dir}/cuts_${train_set}.jsonl.gz" \
      --valid-cuts "${fbank_dir}/cuts_${valid_set}.jsonl.gz" \
      --lang-dir "${lang_dir}" --cmvn "${fbank_dir}/cmvn.npz" --exp-dir "${am_dir}" \
      --ngpu "${ngpu}" --num-nodes "${num_nodes}" --cpu-procs "${cpu_procs}" --seed "${seed}" \
      "${overrides[@]}"
    grep -E "averaging|parameters" "${am_dir}/train.log" | sed 's/^/  /' || true
  fi
  stage_time 6 train "${t0}"
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ] && [ "${foreign_model}" = false ]; then
  t0=${SECONDS}
  if [ ! -f "${word_lm}" ]; then
    log "Stage 7: no word n-gram (--word_lm_text not given): no TLG graph"
  elif is_done "${graph_dir}/TLG.fst"; then
    log "Stage 7: ${graph_dir}/TLG.fst exists: skipping"
  else
    log "Stage 7: TLG graph ${graph_dir}"
    python -m espnet_distill.bin.compile_graph --lang-dir "${lang_dir}" \
      --arpa "${word_lm%.bin}.arpa" --out-dir "${graph_dir}"
  fi
  if [ ! -f "${word_lm}" ] || [ ! -f "${tri_dir}/tree.json" ]; then
    log "Stage 7: no word n-gram or no stage-4 triphone tree: no HCLG graph"
  elif is_done "${hclg_dir}/HCLG.fst"; then
    log "Stage 7: ${hclg_dir}/HCLG.fst exists: skipping"
  else
    log "Stage 7: HCLG graph ${hclg_dir} (tree of ${tri_dir})"
    python -m espnet_distill.bin.compile_graph --kind hclg --lang-dir "${phone_lang_dir}" \
      --align-dir "${align_dir}" --arpa "${word_lm%.bin}.arpa" --out-dir "${hclg_dir}"
  fi
  stage_time 7 graph "${t0}"
fi

ctc_methods=
for method in ${decode_methods}; do
  case ${method} in
    greedy) ctc_methods="${ctc_methods} greedy" ;;
    beam_lm) [ -f "${word_lm}" ] && ctc_methods="${ctc_methods} beam_lm" ;;
    tlg) [ -f "${graph_dir}/TLG.fst" ] && ctc_methods="${ctc_methods} $(wfst_methods tlg)" ;;
    hclg) ;;
    *) echo "$0: --decode_methods: unknown '${method}' (${known_decode_methods})" >&2; exit 1 ;;
  esac
done
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
  log "Stage 8: decoding ${test_sets} (${decode_methods})"
  t0=${SECONDS}
  need 6 "${model_am_dir}/model.pt"
  decode_sets="${valid_set} ${test_sets}"
  [ "${foreign_model}" = true ] && decode_sets=${test_sets}  # tuned where the model was trained
  for part in ${decode_sets}; do
    need 2 "${fbank_dir}/cuts_${part}.jsonl.gz"
  done
  [ -f "${word_lm}" ] && lm_overlap  # test sets stage 5 did not see
  for method in ${ctc_methods}; do
    # tuned methods choose their weights on the valid set first, then use them for every test set
    # (a model from elsewhere: the weights tuned on its own valid set)
    tune_dir=${model_am_dir}/decode_${valid_set}_${method}
    parts=${test_sets}
    [ "${method}" != greedy ] && [ "${foreign_model}" = false ] && parts="${valid_set} ${test_sets}"
    # the valid set may be a test set too: decoded once
    # shellcheck disable=SC2086
    for part in $(unique ${parts}); do
      dir=${am_dir}/decode_${part}_${method}
      if is_done "${dir}/.done"; then
        log "  ${dir}: done, skipping"
        continue
      fi
      opts=()
      case ${method} in
        beam_lm) opts=(--method beam_lm --lm "${word_lm}" --beam "${beam}") ;;
        tlg*) opts=(--method tlg --graph-dir "${graph_dir}" --graph-beam "${graph_beam}") ;;
      esac
      backend_opts "${method}"
      opts+=("${backend_opts[@]}")
      if [ "${method}" != greedy ]; then
        if [ "${part}" = "${valid_set}" ] && [ "${foreign_model}" = false ]; then
          # shellcheck disable=SC2206
          opts+=(--tune-ref "${data_dir}/${part//-/_}/text" --lm-weights ${lm_weights}
                 --word-bonuses ${word_bonuses} --acoustic-scales ${acoustic_scales}
                 --blank-penalties ${blank_penalties} --lm-scales ${lm_scales})
        else
          opts+=(--best-from "${tune_dir}/best.yaml")
        fi
      fi
      # shellcheck disable=SC2154
      ${decode_cmd} "${dir}/decode.log" python -m espnet_distill.bin.decode_ctc \
        --model "${model_am_dir}/model.pt" --lang-dir "${lang_dir}" \
        --cuts "${fbank_dir}/cuts_${part}.jsonl.gz" --out-dir "${dir}" "${opts[@]}"
      touch "${dir}/.done"
    done
    if [ -f "${tune_dir}/best.yaml" ]; then
      log "  ${method} settings chosen on ${valid_set}: $(tr '\n' ' ' < "${tune_dir}/best.yaml")"
    fi
  done
  # over HCLG: the stage-4 triphone GMM-HMM (Kaldi's tri1 baseline row) and, when the model has
  # a senone head, the hybrid network (log posterior - log prior)
  if [ -f "${hclg_dir}/HCLG.fst" ] && [[ " ${decode_methods} " == *" hclg "* ]]; then
    systems=gmm
    python -m espnet_distill.bin.config_value --config "${model_am_dir}/config.yaml" \
      --key model.senone_head > /dev/null && systems="gmm hybrid"
    for system in ${systems}; do
      # out_dir: the decoding outputs; tuned_dir: where the settings are tuned (the model's)
      out_dir=${tri_dir}; tuned_dir=${model_align_dir}/tri; model_opts=()
      scales=${gmm_acoustic_scales}
      if [ "${system}" = hybrid ]; then
        out_dir=${am_dir}; tuned_dir=${model_am_dir}; model_opts=(--model "${model_am_dir}/model.pt")
        scales=${hybrid_acoustic_scales}
      fi
      for method in $(wfst_methods hclg); do
        backend_opts "${method}"
        # shellcheck disable=SC2086
        for part in $(unique ${decode_sets}); do
          dir=${out_dir}/decode_${part}_${method}
          is_done "${dir}/.done" && { log "  ${dir}: done, skipping"; continue; }
          opts=(--best-from "${tuned_dir}/decode_${valid_set}_${method}/best.yaml")
          # shellcheck disable=SC2206
          [ "${part}" = "${valid_set}" ] && [ "${foreign_model}" = false ] &&
            opts=(--tune-ref "${data_dir}/${part//-/_}/text" --acoustic-scales ${scales})
          ${decode_cmd} "${dir}/decode.log" python -m espnet_distill.bin.decode_hclg \
            --align-dir "${model_align_dir}" --lang-dir "${phone_lang_dir}" \
            --graph-dir "${hclg_dir}" --cuts "${fbank_dir}/cuts_${part}.jsonl.gz" \
            --out-dir "${dir}" --beam "${hclg_beam}" "${model_opts[@]}" "${backend_opts[@]}" \
            "${opts[@]}"
          touch "${dir}/.done"
        done
        best=${tuned_dir}/decode_${valid_set}_${method}/best.yaml
        [ -f "${best}" ] &&
          log "  ${system} ${method} settings chosen on ${valid_set}: $(tr '\n' ' ' < "${best}")"
      done
    done
  fi
  stage_time 8 decode "${t0}"
fi

if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
  log "Stage 9: scoring and RESULTS.md"
  t0=${SECONDS}
  for part in ${test_sets}; do
    need 2 "${data_dir}/${part//-/_}/text"
  done
  for dir in "${am_dir}"/decode_*_*/ "${tri_dir}"/decode_*_*/; do
    dir=${dir%/}
    [ -f "${dir}/text" ] || continue
    part=$(basename "${dir}" | sed -E "s/^decode_(.*)_(${decode_dir_methods// /|})\$/\1/")
    if is_done "${dir}/score/.done"; then
      log "  ${dir}/score: done, skipping"
      continue
    fi
    python -m espnet_distill.bin.score --ref "${data_dir}/${part//-/_}/text" --hyp "${dir}/text" \
      --out-dir "${dir}/score" --name "${part}" | sed "s|^|  ${part}: |"
    touch "${dir}/score/.done"
  done
  if [ "${foreign_model}" = true ]; then
    results_notes="Decoded with the system of \`${model_exp_dir}\` (model \`${model_am_dir}/model.pt\`, graphs of \`${model_data_dir}\`), with the settings tuned on its own ${valid_set}. ${results_notes}"
  fi
  python -m espnet_distill.bin.make_results --exp-dir "${exp_dir}" --results-file "${results_file}" \
    --title "${results_title}" --notes "${results_notes}" --lm-overlap "${data_dir}/lm/overlap.yaml"
  stage_time 9 score "${t0}"
fi

report_stage_times
log "Successfully finished. [elapsed=${SECONDS}s]"
