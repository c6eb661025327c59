"""The kws_sv1 recipe end to end on tiny synthetic corpora with given upstreams (a tiny random
HuBERT and a DistilHuBERT student of it): synthesis, manifests, {teacher, student} x {frozen,
fine-tuned} x {kws, sv, joint} and FBANK frozen, the table, the DET plot, the export
(infer runs on it); a rerun redoes nothing; a corpus with an
unknown keyword folder stops stage 1 with the folder named."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from espnet_distill.models.hubert import HubertModel
from espnet_distill.models.students import DistilHubert, init_from_teacher, transformer_config
from espnet_distill.models.upstream import save_student
from espnet_distill.ort import metadata, onnx_session

from .conftest import copy_recipe, run_recipe
from .test_hubert import tiny_config


def _upstreams(tmp_path):
    torch.manual_seed(0)
    teacher = HubertModel(tiny_config())
    teacher.save(tmp_path / "teacher.pt")
    student = DistilHubert(
        transformer_config(teacher.config, 1), [1, 2], teacher.config["encoder_embed_dim"]
    )
    init_from_teacher(student.backbone, teacher)
    save_student(student, "distilhubert", tmp_path / "student.pt")
    return tmp_path / "teacher.pt", tmp_path / "student.pt"


def _infer(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.infer", *args], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _run(d, *args, ok=True):
    return run_recipe(d, "--corpus_size", "tiny", *args, ok=ok)


@pytest.mark.slow  # about 5 minutes: CI runs it (make test-slow)
def test_tiny_kws_sv_recipe_end_to_end(tmp_path, kws_sv_corpora):
    d = copy_recipe(tmp_path, "synth", "kws_sv1")
    (d / "corpus").mkdir()
    shutil.copytree(kws_sv_corpora, d / "corpus" / "tiny")  # finished corpora are kept
    teacher, student = _upstreams(tmp_path)
    opts = ["--teacher_ckpt", str(teacher), "--student_ckpt", str(student)]
    out = _run(d, *opts)
    assert "SpeechCommands is complete" in out
    exp = d / "exp" / "tiny"
    for name in ("teacher", "distilhubert"):
        for mode in ("frozen", "finetuned"):
            for setup in ("kws", "sv", "joint"):
                assert (exp / "finetune" / name / mode / setup / "results.json").is_file()
    for setup in ("kws", "sv", "joint"):  # FBANK: frozen only, it has no weights
        assert (exp / "finetune" / "fbank" / "frozen" / setup / "results.json").is_file()
    assert not (exp / "finetune" / "fbank" / "finetuned").exists()
    results = (d / "RESULTS_tiny.md").read_text()
    assert results.count("|distilhubert|") == 6 and results.count("|teacher|") == 6
    assert results.count("|fbank|0.00|frozen|") == 3 and "- Above FBANK, frozen" in results
    assert "joint KWS+SV" in results and (exp / "results" / "det.png").is_file()
    # stage 5: every trained system exported (FBANK's has no network); infer runs the int8 one
    for name in ("teacher", "distilhubert"):
        for mode in ("frozen", "finetuned"):
            for setup in ("kws", "sv", "joint"):
                export = yaml.safe_load(
                    (exp / "export" / name / mode / setup / "export.yaml").read_text()
                )
                assert export["artifacts"]["onnx_fp32"]["max_abs_diff"] < 1e-4, (name, mode, setup)
    assert not (exp / "export" / "fbank").exists()
    joint = exp / "export" / "distilhubert" / "finetuned" / "joint" / "system.int8.onnx"
    clips = sorted((d / "corpus" / "tiny" / "SpeechCommands").rglob("*.wav"))[:2]
    voices = sorted((d / "corpus" / "tiny" / "VoxCeleb1").rglob("*.wav"))[:2]
    kws = _infer("--model", str(joint), "--task", "kws", *map(str, clips))
    keywords = metadata(onnx_session(joint))["keywords"]
    labels = [line.split("\t") for line in kws.splitlines()]
    assert [label[0] for label in labels] == [str(c) for c in clips]
    assert all(label[1] in keywords and 0 < float(label[2]) <= 1 for label in labels)
    sv = _infer(
        "--model", str(joint), "--task", "sv", "--enroll", str(voices[0]), "--test", str(voices[1])
    )
    assert sv.strip().split("\t")[-1] in ("accept", "reject")
    again = _run(d, *opts)
    assert "Stage 5: exp/tiny/export/teacher/frozen/kws/export.yaml exists: skipping" in again
    assert (
        "Stage 3: exp/tiny/finetune/distilhubert/finetuned/joint/results.json exists: skipping"
        in again
    )
    # a bad corpus stops stage 1 with the folder named
    shutil.rmtree(d / "data")
    (d / "corpus" / "tiny" / "SpeechCommands" / "speech_commands_v0.02" / "banana").mkdir()
    bad = _run(d, *opts, "--stop_stage", "1", ok=False)
    assert "unknown keyword folder(s) banana" in bad


def test_ssl_corpus_size_takes_upstreams_of_another_size_into_their_own_exp_dir(tmp_path):
    d = copy_recipe(tmp_path, "synth", "kws_sv1")
    # --stop_stage 0 (not a stage): kws_sv.sh prints its command line, then stops before any work
    out = run_recipe(d, "--ssl_corpus_size", "full", "--stop_stage", "0", ok=False)
    assert "--ssl_opts --corpus_size full --ssl_exp_dir ../ssl1/exp/full " in out
    assert "--data_dir data/demo --exp_dir exp/demo_ssl_full " in out  # demo corpora, own exp dir
    assert "--results_file RESULTS_demo_ssl_full.md " in out
    same = run_recipe(d, "--stop_stage", "0", ok=False)
    assert "--exp_dir exp/demo --ssl_dir" in same and "--ssl_exp_dir ../ssl1/exp/demo " in same
    assert "--results_file RESULTS.md " in same
