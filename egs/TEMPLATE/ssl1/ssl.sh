#!/usr/bin/env bash
# shellcheck disable=SC2154  # train_cmd, cuda_cmd come from cmd.sh
# The stage engine of the HuBERT distillation recipes (ssl1). A corpus's run.sh sets options and
# calls this script; every option below can also be given on the command line (--name value).
#
# Stages (numbers are part of the interface, see README.md):
#   1 data: the ASR recipe's stages 1-3 in --asr_dir (manifests, features, lexicon) are run or
#     reused; audio cuts of its manifests (original recordings, absolute paths) go to
#     <exp_dir>/data; the probes read its lang_phone/lexicon.txt
#   2 k-means labels of the training audio (MFCC, or a layer of --label_teacher) [pretraining]
#   3 teacher: pretrain a small HuBERT on the labels; skipped with --teacher_ckpt (a torchaudio
#     state dict, a Hugging Face HubertModel dir or a fairseq checkpoint)
#   4 students: one per --students name, conf/distill_<name>.yaml (DistilHuBERT, LSTM-KD,
#     LSTM-DKD, deep, wide)
#   5 probing: every upstream (FBANK, teacher and students) x --probe_tasks (asr pr sid), frozen;
#     FBANK is SUPERB's baseline, the probes' input features alone (--fbank_baseline); ASR and
#     PR also score --other_test_sets (e.g. test-other) with the epoch chosen on dev
#   6 results: parameters, CPU speed-up vs the teacher, probing scores, each score above FBANK
#     with its paired test, deep-vs-wide plot, RESULTS.md
#   7 export: every upstream (teacher and students) as ONNX fp32 (checked against PyTorch on
#     test utterances) and int8, LSTM students as PyTorch int8, transformers as Hugging Face
#     HubertModel dirs -> <exp_dir>/export/<name>/ (export.yaml: sizes, differences)
# Each stage skips finished work (its model.pt / result.yaml / labels.npz); --force true redoes
# the stages in --stage..--stop_stage. Stages 4-5 can be run in parallel (one run a core, e.g.
# `--stage 5 --stop_stage 5` twice): each job's dir is locked (claim_dir), so the runs split the
# jobs; a job another run holds is skipped and counted.
set -euo pipefail

# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # recipe_start (path.sh, cmd.sh), log, is_done, check_stages, supervise
recipe_start "$@"  # Ctrl-C, SIGTERM or the death of run.sh stop every job of every stage

# ---------------------------------------------------------------- configuration
. utils/engine_options.sh  # stage, force, min_free_mb, ngpu
stop_stage=7             # last stage to run
asr_dir=../asr1          # the ASR recipe of the same corpus (its data stages 1-3)
asr_opts=                # options for its run.sh, e.g. "--corpus_size demo"
data_dir=                # that recipe's data dir (e.g. ../asr1/data/demo)
train_set=train-clean-100  # training split
valid_set=dev-clean      # validation split
test_set=test-clean      # test split of the ASR and PR probes
other_test_sets=         # further test splits the ASR and PR probes score with the same epoch
                         # (e.g. test-other; the ASR recipe's stage 1 must prepare them)
exp_dir=exp              # where experiments go
num_clusters=100         # k-means clusters (HuBERT's iteration 1)
label_teacher=           # a HuBERT whose layer --label_layer is clustered instead of MFCCs
label_layer=6            # (iteration 2)
teacher_config=conf/hubert_pretrain.yaml  # the offline teacher's pretraining config
teacher_ckpt=            # a real teacher instead of pretraining one (any format of load_hubert)
students="distilhubert lstm_kd lstm_dkd deep wide"  # conf/distill_<name>.yaml each
probe_tasks="asr pr sid" # SUPERB-style probes: ASR (CER, WER), phone recognition (PER), speaker ID
probe_config=conf/probe.yaml  # probe settings, a section per task
fbank_baseline=true      # probe SUPERB's FBANK baseline too (fbank, deltas, CMVN; no network)
train_overrides=         # overrides of every training config, e.g. "train.max_epochs=2"
results_file=RESULTS.md  # the results page
results_title="ssl1 results"  # its title

. utils/parse_options.sh

[ $# -eq 0 ] || { log "Error: unexpected arguments: $*"; exit 1; }
check_stages 1 7 3 4  # GPUs: teacher and students
[ -n "${data_dir}" ] || { log "Error: --data_dir (the ASR recipe's data dir) is not set"; exit 1; }
cuts_dir=${exp_dir}/data
train_cuts=${cuts_dir}/cuts_${train_set}.jsonl.gz
valid_cuts=${cuts_dir}/cuts_${valid_set}.jsonl.gz
test_cuts=${cuts_dir}/cuts_${test_set}.jsonl.gz
labels_dir=${exp_dir}/labels
teacher=${teacher_ckpt:-${exp_dir}/teacher/model.pt}
overrides=()
# shellcheck disable=SC2206
[ -n "${train_overrides}" ] && overrides=(--override ${train_overrides})
check_output_dir "${exp_dir}" "${min_free_mb}"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  t0=${SECONDS}
  log "Stage 1: data of ${asr_dir} (its stages 1-3)"
  # shellcheck disable=SC2086
  (cd "${asr_dir}" && ./run.sh ${asr_opts} --stop_stage 3)
  [ -f "${data_dir}/lang_phone/lexicon.txt" ] || {
    log "Error: ${data_dir}/lang_phone/lexicon.txt is missing after ${asr_dir}'s stages 1-3"; exit 1; }
  parts=("${train_set}" "${valid_set}" "${test_set}")
  # shellcheck disable=SC2206
  parts+=(${other_test_sets})
  missing_parts=0
  for part in "${parts[@]}"; do
    [ -f "${cuts_dir}/cuts_${part}.jsonl.gz" ] || missing_parts=$((missing_parts + 1))
  done
  if is_done "${cuts_dir}/.done" && [ "${missing_parts}" -eq 0 ]; then
    log "  ${cuts_dir}/.done exists: skipping"
  else
    python -m espnet_distill.bin.ssl_cuts --manifest-dir "${data_dir}/manifests" \
      --path-prefix "${asr_dir}" --parts "${parts[@]}" --out-dir "${cuts_dir}"
    touch "${cuts_dir}/.done"
  fi
  stage_time 1 data "${t0}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  t0=${SECONDS}
  if [ -n "${teacher_ckpt}" ]; then
    log "Stage 2: --teacher_ckpt given: no pretraining labels needed"
  elif is_done "${labels_dir}/labels.npz"; then
    log "Stage 2: ${labels_dir}/labels.npz exists: skipping"
  else
    need 1 "${train_cuts}" "${valid_cuts}"
    [ "${force}" = true ] && rm -rf "${labels_dir}"
    label_opts=()
    [ -n "${label_teacher}" ] && label_opts=(--teacher "${label_teacher}" --layer "${label_layer}")
    log "Stage 2: k-means labels (${num_clusters} clusters) -> ${labels_dir}"
    mkdir -p "${labels_dir}"
    ${train_cmd} "${labels_dir}/labels.log" python -m espnet_distill.bin.ssl_labels \
      --fit-cuts "${train_cuts}" --cuts "${train_cuts}" "${valid_cuts}" \
      --num-clusters "${num_clusters}" --out-dir "${labels_dir}" "${label_opts[@]}"
    sed 's/^/  /' "${labels_dir}/kmeans.yaml"
  fi
  stage_time 2 labels "${t0}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  t0=${SECONDS}
  if [ -n "${teacher_ckpt}" ]; then
    log "Stage 3: teacher ${teacher_ckpt} (given)"
  elif is_done "${teacher}"; then
    log "Stage 3: ${teacher} exists: skipping"
  else
    need 1 "${train_cuts}" "${valid_cuts}"
    need 2 "${labels_dir}/labels.npz"
    [ "${force}" = true ] && rm -rf "${exp_dir}/teacher"
    log "Stage 3: pretraining the teacher (${teacher_config}); progress: tail -f ${exp_dir}/teacher/train.log"
    mkdir -p "${exp_dir}/teacher"
    ${cuda_cmd} --gpu "${ngpu}" "${exp_dir}/teacher/train.log" python -m espnet_distill.bin.train_ssl \
      --config "${teacher_config}" --train-cuts "${train_cuts}" --valid-cuts "${valid_cuts}" \
      --labels "${labels_dir}/labels.npz" --exp-dir "${exp_dir}/teacher" --ngpu "${ngpu}" \
      "${overrides[@]}"
  fi
  stage_time 3 teacher "${t0}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  t0=${SECONDS}
  need 1 "${train_cuts}" "${valid_cuts}"
  [ -n "${teacher_ckpt}" ] || need 3 "${teacher}"
  # every student this teacher cannot train is named before any of them trains
  student_configs=()
  for name in ${students}; do student_configs+=("${name}=conf/distill_${name}.yaml"); done
  python -m espnet_distill.bin.check_teacher --teacher "${teacher}" --students "${student_configs[@]}"
  for name in ${students}; do
    dir=${exp_dir}/${name}
    if is_done "${dir}/model.pt"; then
      log "Stage 4: ${dir}/model.pt exists: skipping"
      continue
    fi
    if ! claim_dir "${dir}"; then
      log "Stage 4: ${dir} is being trained by another run: skipping"
      continue
    fi
    [ "${force}" = true ] && find "${dir}" -mindepth 1 ! -name .lock -delete
    log "Stage 4: student ${name} (conf/distill_${name}.yaml); progress: tail -f ${dir}/train.log"
    ${cuda_cmd} --gpu "${ngpu}" "${dir}/train.log" python -m espnet_distill.bin.train_ssl \
      --config "conf/distill_${name}.yaml" --teacher "${teacher}" --train-cuts "${train_cuts}" \
      --valid-cuts "${valid_cuts}" --exp-dir "${dir}" --ngpu "${ngpu}" "${overrides[@]}"
    grep -E "trainable parameters|layers of width" "${dir}/train.log" | sed 's/^/  /' || true
    release_dir
  done
  stage_time 4 students "${t0}"
fi

upstreams=()
[ "${fbank_baseline}" = true ] && upstreams+=("fbank=fbank")  # a name, not a file: load_upstream
upstreams+=("teacher=${teacher}")
for name in ${students}; do upstreams+=("${name}=${exp_dir}/${name}/model.pt"); done

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  t0=${SECONDS}
  need 1 "${train_cuts}" "${valid_cuts}" "${test_cuts}" "${data_dir}/lang_phone/lexicon.txt"
  skipped=0
  for pair in "${upstreams[@]}"; do
    name=${pair%%=*}
    for task in ${probe_tasks}; do
      dir=${exp_dir}/probe/${name}/${task}
      if is_done "${dir}/result.yaml"; then
        log "Stage 5: ${dir}/result.yaml exists: skipping"
        continue
      fi
      if [ "${name}" != fbank ] && [ ! -e "${pair#*=}" ]; then
        log "Stage 5: ${pair#*=} does not exist (its stage not run, or running elsewhere): skipping"
        skipped=$((skipped + 1)); continue
      fi
      if ! claim_dir "${dir}"; then
        log "Stage 5: ${dir} is being probed by another run: skipping"
        skipped=$((skipped + 1)); continue
      fi
      [ "${force}" = true ] && find "${dir}" -mindepth 1 ! -name .lock -delete
      log "Stage 5: probing ${name} on ${task}"
      other_tests=()
      if [ "${task}" != sid ]; then  # SID scores its own split of the training speakers
        for part in ${other_test_sets}; do
          other_tests+=("${part}=${cuts_dir}/cuts_${part}.jsonl.gz")
        done
      fi
      ${train_cmd} "${dir}/probe.log" python -m espnet_distill.bin.probe_ssl \
        --upstream "${pair#*=}" --task "${task}" --train-cuts "${train_cuts}" \
        --valid-cuts "${valid_cuts}" --test-cuts "${test_cuts}" \
        --other-test-cuts "${other_tests[@]}" \
        --lexicon "${data_dir}/lang_phone/lexicon.txt" --config "${probe_config}" --out-dir "${dir}"
      grep -E "^(metric|dev|test):" "${dir}/result.yaml" | tr '\n' ' ' | sed 's/^/  /'; echo
      release_dir
    done
  done
  [ "${skipped}" -eq 0 ] || log "Stage 5: ${skipped} probe(s) skipped: run stage 5 again when done"
  stage_time 5 probes "${t0}"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  t0=${SECONDS}
  log "Stage 6: results table, deep-vs-wide plot, ${results_file}"
  # shellcheck disable=SC2086
  python -m espnet_distill.bin.ssl_results --upstream "${upstreams[@]}" \
    --probe-dir "${exp_dir}/probe" --tasks ${probe_tasks} --timing-cuts "${test_cuts}" \
    --out-dir "${exp_dir}/results" --results-file "${results_file}" --title "${results_title}"
  stage_time 6 results "${t0}"
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
  t0=${SECONDS}
  need 1 "${test_cuts}"
  for pair in "${upstreams[@]}"; do
    name=${pair%%=*}
    [ "${name}" = fbank ] && continue  # no network: nothing to deploy
    [ -e "${pair#*=}" ] || { log "Error: ${pair#*=} does not exist: run stages 3-4 first"; exit 1; }
    export_model_to 7 "${exp_dir}/export/${name}" --upstream "${pair#*=}" --test-cuts "${test_cuts}"
  done
  stage_time 7 export "${t0}"
fi

report_stage_times
log "Successfully finished. [elapsed=${SECONDS}s]"
