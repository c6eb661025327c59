"""Bring your own teacher: a Hugging Face HuBERT dir through ssl1's stages 4-7 and kws_sv1's
fine-tuning, and fairseq and torchaudio checkpoints through ssl1's probes (stage 5); output-level
KD from a teacher without its masked-prediction head is refused before any student trains
(slow: CI runs it)."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from espnet_distill.models.hubert import HubertModel

from .conftest import run_recipe
from .test_hubert import _fairseq_checkpoint, _hf_config, tiny_config
from .test_recipe import _recipe_copy

# HuBERT's 20 ms frames (a stride of 320 samples) at a small width: test_hubert's tiny CNN
# (stride 20) gives 16 times more frames, which the probes would take minutes over
CONV = [(32, 10, 5), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 3, 2), (32, 2, 2), (32, 2, 2)]


def _config(**kw) -> dict:
    return {**tiny_config(**kw), "extractor_conv_layer_config": CONV}


def _hf_teacher(path):
    from transformers import HubertModel as HfHubertModel

    config = _hf_config(stable=False, conv=CONV)
    torch.manual_seed(0)
    HfHubertModel(config).eval().save_pretrained(path)
    return path


def _fairseq_teacher(path):
    torch.manual_seed(1)
    blob = _fairseq_checkpoint(HubertModel(_config(), num_classes=10, final_dim=16))
    blob["cfg"]["model"]["conv_feature_layers"] = repr(CONV)
    torch.save(blob, path)
    return path


def _torchaudio_teacher(path):
    import torchaudio

    torch.manual_seed(2)  # a Wav2Vec2Model state dict: no config, read off the shapes
    model = torchaudio.models.wav2vec2_model(**_config(layer_norm_first=True), aux_num_out=None)
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.slow  # about 10 minutes: CI runs it (make test-slow)
def test_own_teachers_of_every_format_through_the_recipes(tiny_corpus, kws_sv_corpora, tmp_path):
    d = _recipe_copy(tmp_path, tiny_corpus).parent / "ssl1"
    hf = _hf_teacher(tmp_path / "hubert_hf")
    # the FBANK baseline is the tiny ssl1 and kws_sv1 tests' (these runs test checkpoint formats)
    tiny = ["--corpus_size", "tiny", "--teacher_ckpt", str(hf), "--fbank_baseline", "false"]

    # the default students include the LSTMs (output-level KD): named before any student trains
    out = run_recipe(d, *tiny, "--stop_stage", "4", ok=False)
    assert (
        "has no masked-prediction head" in out and "lstm_kd, lstm_dkd cannot train from it" in out
    )
    assert '--students "distilhubert deep wide"' in out
    assert not (d / "exp" / "tiny" / "distilhubert").exists()

    # without them: students (4), probes of the HF dir itself (5), the table (6)
    out = run_recipe(d, *tiny, "--students", "distilhubert wide", "--probe_tasks", "pr")
    exp = d / "exp" / "tiny"
    for name in ("teacher", "distilhubert", "wide"):
        assert (exp / "probe" / name / "pr" / "result.yaml").is_file(), name
    rows = {
        r["upstream"]
        for r in yaml.safe_load((exp / "results" / "summary.yaml").read_text())["rows"]
    }
    assert rows == {"teacher", "distilhubert", "wide"}
    assert "(hf format): 3 layers" in out
    # stage 7 gives the HF teacher back in the form it came in: every tensor as it was
    from safetensors.torch import load_file

    export = yaml.safe_load((exp / "export" / "teacher" / "export.yaml").read_text())["artifacts"]
    assert export["onnx_fp32"]["max_abs_diff"] < 1e-4 and export["hf"]["max_abs_diff"] < 1e-4
    original = load_file(hf / "model.safetensors")
    exported = load_file(exp / "export" / "teacher" / "hf" / "model.safetensors")
    assert exported.keys() == original.keys()
    for key, tensor in original.items():
        assert torch.equal(exported[key], tensor), key

    # kws_sv1 fine-tunes the HF teacher and its student
    k = d.parent / "kws_sv1"  # copied with the rest of egs/synth
    (k / "corpus").mkdir(exist_ok=True)
    shutil.copytree(kws_sv_corpora, k / "corpus" / "tiny")
    run_recipe(
        k,
        "--corpus_size",
        "tiny",
        "--teacher_ckpt",
        str(hf),
        "--student_ckpt",
        str(exp / "distilhubert" / "model.pt"),
        "--upstream_modes",
        "frozen",
        "--setups",
        "kws",
        "--fbank_baseline",
        "false",
        "--stop_stage",
        "3",
    )
    for name in ("teacher", "distilhubert"):
        assert (
            k / "exp" / "tiny" / "finetune" / name / "frozen" / "kws" / "results.json"
        ).is_file()

    # fairseq and torchaudio checkpoints: probed through stage 5, each in its own exp dir
    teachers = {
        "fairseq": _fairseq_teacher(tmp_path / "checkpoint_best.pt"),
        "torchaudio": _torchaudio_teacher(tmp_path / "hubert_torchaudio.pt"),
    }
    for fmt, ckpt in teachers.items():
        out = run_recipe(
            d,
            "--corpus_size",
            "tiny",
            "--teacher_ckpt",
            str(ckpt),
            "--exp_dir",
            f"exp/{fmt}",
            "--students",
            "",
            "--probe_tasks",
            "pr",
            "--fbank_baseline",
            "false",
            "--stop_stage",
            "5",
        )
        result = yaml.safe_load(
            (d / "exp" / fmt / "probe" / "teacher" / "pr" / "result.yaml").read_text()
        )
        assert result["metric"] == "PER", fmt
        assert f"({fmt} format)" in out
