#!/usr/bin/env bash
# shellcheck disable=SC2154  # train_cmd, cuda_cmd come from cmd.sh
# The stage engine of the keyword-spotting + speaker-verification recipes (kws_sv1): a distilled
# speech representation model fine-tuned on KWS and SV, single-task or jointly, frozen or
# fine-tuned (Kerpicci et al. 2022). A corpus's run.sh sets options and calls this script; every
# option below can also be given on the command line (--name value).
#
# Stages (numbers are part of the interface, see README.md):
#   1 data: local/data.sh (when the recipe has one; e.g. it synthesises the corpora), then
#     Speech Commands and/or VoxCeleb1 (what the --setups need) -> lhotse manifests in
#     <data_dir>/manifests (checked first)
#   2 upstreams: --teacher_ckpt / --student_ckpt, or the ssl1 recipe in --ssl_dir trains them
#     (its stages 1-4 with --students <student>)
#   3 fine-tuning: {teacher, student} x {frozen, fine-tuned} x {kws, sv, joint}
#     (--upstream_modes, --setups narrow it), and SUPERB's FBANK baseline (the features alone, no
#     network: frozen only) x the setups (--fbank_baseline)
#   4 results: the table, DET curves, RESULTS.md
#   5 export: each trained system (not FBANK's) as system.onnx and system.int8.onnx, checked
#     against PyTorch on test recordings, with its keywords and SV threshold, for bin/infer.py
#     -> <exp_dir>/export/<upstream>/<mode>/<setup>/
# Each stage skips finished work (manifests' counts.json, results.json); --force true redoes the
# stages in --stage..--stop_stage.
set -euo pipefail

# shellcheck source=utils/recipe_lib.sh
. utils/recipe_lib.sh  # recipe_start (path.sh, cmd.sh), log, is_done, check_stages, supervise
recipe_start "$@"  # Ctrl-C, SIGTERM or the death of run.sh stop every job of every stage

# ---------------------------------------------------------------- configuration
. utils/engine_options.sh  # stage, force, min_free_mb, ngpu
stop_stage=5             # last stage to run
local_data_opts=         # options for local/data.sh
speech_commands_dir=     # holds speech_commands_v0.0N/ and speech_commands_test_set_v0.0N/
speech_commands_version=2  # Speech Commands v0.0N
voxceleb1_dir=           # holds wav/, vox1_meta.csv, veri_test.txt
data_dir=data            # manifests go to <data_dir>/manifests
exp_dir=exp              # where experiments go
ssl_dir=../ssl1          # the HuBERT distillation recipe that provides the upstreams
ssl_opts=                # options for its run.sh, e.g. "--corpus_size demo"
ssl_exp_dir=             # its exp dir (e.g. ../ssl1/exp/demo)
teacher_ckpt=            # a teacher instead of ssl1's (any format of load_hubert)
student=distilhubert     # the ssl1 student (conf/distill_<student>.yaml there)
student_ckpt=            # a student instead of ssl1's
upstream_modes="frozen finetuned"  # upstream frozen (SUPERB) and/or fine-tuned with the heads
fbank_baseline=true      # the heads on FBANK too (fbank, deltas, CMVN; frozen: it has no weights)
setups="kws sv joint"    # single-task KWS, single-task SV, joint KWS+SV
finetune_config=conf/finetune.yaml  # fine-tuning config (heads, optimiser, epochs)
kws_task=12class         # 12class (SUPERB: 10 words, unknown, silence) or 35class (the words)
train_overrides=         # overrides of the fine-tuning config, e.g. "train.max_epochs=2"
results_file=RESULTS.md  # the results page
results_title="kws_sv1 results"  # its title

. utils/parse_options.sh

[ $# -eq 0 ] || { log "Error: unexpected arguments: $*"; exit 1; }
check_stages 1 5 3 3  # GPUs: fine-tuning
# every setup needs its corpora: KWS Speech Commands, SV VoxCeleb1, joint both
for setup in ${setups}; do
  case "${setup}" in
    kws) corpora=(speech_commands_dir) ;;
    sv) corpora=(voxceleb1_dir) ;;
    joint) corpora=(speech_commands_dir voxceleb1_dir) ;;
    *) log "Error: unknown setup '${setup}' (kws, sv or joint)"; exit 1 ;;
  esac
  for var in "${corpora[@]}"; do
    [ -n "${!var}" ] || { log "Error: setup ${setup} needs --${var}"; exit 1; }
  done
done
manifests=${data_dir}/manifests
teacher=${teacher_ckpt:-${ssl_exp_dir}/teacher/model.pt}
student_model=${student_ckpt:-${ssl_exp_dir}/${student}/model.pt}
overrides=()
# shellcheck disable=SC2206
[ -n "${train_overrides}" ] && overrides=(--override ${train_overrides})
check_output_dir "${data_dir}" "${min_free_mb}"
check_output_dir "${exp_dir}" "${min_free_mb}"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  t0=${SECONDS}
  if [ -x local/data.sh ]; then
    log "Stage 1: local/data.sh ${local_data_opts}"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
  fi
  if is_done "${manifests}/counts.json"; then
    log "Stage 1: ${manifests}/counts.json exists: skipping"
  else
    corpus_opts=()
    [ -n "${speech_commands_dir}" ] && corpus_opts+=(--speech-commands "${speech_commands_dir}")
    [ -n "${voxceleb1_dir}" ] && corpus_opts+=(--voxceleb1 "${voxceleb1_dir}")
    log "Stage 1: ${speech_commands_dir} ${voxceleb1_dir} -> ${manifests}"
    python -m espnet_distill.bin.prepare_kws_sv "${corpus_opts[@]}" \
      --version "${speech_commands_version}" --out-dir "${manifests}"
  fi
  stage_time 1 data "${t0}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  t0=${SECONDS}
  if [ -n "${teacher_ckpt}" ] && [ -n "${student_ckpt}" ]; then
    log "Stage 2: upstreams given: ${teacher_ckpt}, ${student_ckpt}"
  else
    [ -n "${ssl_exp_dir}" ] || { log "Error: --ssl_exp_dir (or both checkpoints) is needed"; exit 1; }
    log "Stage 2: teacher and ${student} from ${ssl_dir} (its stages 1-4)"
    # shellcheck disable=SC2086
    (cd "${ssl_dir}" && ./run.sh ${ssl_opts} --stop_stage 4 --students "${student}")
  fi
  for f in "${teacher}" "${student_model}"; do
    [ -e "${f}" ] || { log "Error: upstream ${f} is missing after stage 2"; exit 1; }  # a file or a HF dir
  done
  stage_time 2 upstreams "${t0}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  t0=${SECONDS}
  need 1 "${manifests}/counts.json"
  need 2 "${teacher}" "${student_model}"
  systems=()
  # fbank: a name (load_upstream), not a file; it has nothing to fine-tune
  [ "${fbank_baseline}" = true ] && [[ " ${upstream_modes} " == *" frozen "* ]] && systems+=(fbank=fbank)
  systems+=("teacher=${teacher}" "${student}=${student_model}")
  for pair in "${systems[@]}"; do
    name=${pair%%=*}
    modes=${upstream_modes}
    [ "${name}" = fbank ] && modes=frozen
    for mode in ${modes}; do
      freeze=true
      [ "${mode}" = finetuned ] && freeze=false
      for setup in ${setups}; do
        tasks=${setup}
        [ "${setup}" = joint ] && tasks="kws sv"
        dir=${exp_dir}/finetune/${name}/${mode}/${setup}
        if is_done "${dir}/results.json"; then
          log "Stage 3: ${dir}/results.json exists: skipping"
          continue
        fi
        [ "${force}" = true ] && rm -rf "${dir}"
        log "Stage 3: ${name}, ${mode}, ${setup}; progress: tail -f ${dir}/train.log"
        mkdir -p "${dir}"
        # shellcheck disable=SC2086
        ${cuda_cmd} --gpu "${ngpu}" "${dir}/train.log" python -m espnet_distill.bin.fine_tune_kws_sv \
          --upstream "${pair#*=}" --config "${finetune_config}" --tasks ${tasks} \
          --freeze "${freeze}" --manifest-dir "${manifests}" --kws-task "${kws_task}" \
          --exp-dir "${dir}" --ngpu "${ngpu}" "${overrides[@]}"
        tail -n 1 "${dir}/train.log" | sed 's/^/  /'
      done
    done
  done
  stage_time 3 fine_tune "${t0}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  t0=${SECONDS}
  log "Stage 4: results table, DET curves, ${results_file}"
  result_upstreams=(teacher "${student}")
  [ "${fbank_baseline}" = true ] && result_upstreams=(fbank "${result_upstreams[@]}")
  # shellcheck disable=SC2086
  python -m espnet_distill.bin.kws_sv_results --finetune-dir "${exp_dir}/finetune" \
    --upstreams "${result_upstreams[@]}" --out-dir "${exp_dir}/results" \
    --modes ${upstream_modes} --setups ${setups} \
    --results-file "${results_file}" --title "${results_title}"
  stage_time 4 results "${t0}"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  t0=${SECONDS}
  for system in "${exp_dir}"/finetune/*/*/*/system.pt; do
    [ -e "${system}" ] || { log "Error: no ${exp_dir}/finetune/*/*/*/system.pt: run stage 3"; exit 1; }
    setup_dir=$(dirname "${system}")
    case "${setup_dir}" in */finetune/fbank/*) continue ;; esac  # no network to deploy
    # test audio of several lengths: VoxCeleb's (Speech Commands' clips are all 1 s)
    test_recordings=${manifests}/voxceleb_recordings_test.jsonl.gz
    [ "${setup_dir##*/}" = kws ] && test_recordings=${manifests}/speechcommands_recordings_test.jsonl.gz
    export_model_to 5 "${exp_dir}/export/${setup_dir#"${exp_dir}"/finetune/}" \
      --system "${system}" --test-cuts "${test_recordings}"
  done
  stage_time 5 export "${t0}"
fi

report_stage_times
log "Successfully finished. [elapsed=${SECONDS}s]"
