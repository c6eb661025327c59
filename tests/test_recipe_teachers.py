"""Bring your own teacher: a Hugging Face HuBERT dir through ssl1's stages 4-6 and kws_sv1's
fine-tuning, and fairseq and torchaudio checkpoints through ssl1's probes (stage 5); output-level
KD from a teacher without its masked-prediction head is refused before any student trains
(slow: CI runs it)."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from .conftest import copy_recipe, run_recipe
from .test_hubert import _fairseq_checkpoint, _hf_config, _random_model, tiny_config
from .test_recipe import _recipe_copy


def _hf_teacher(path):
    from transformers import HubertModel as HfHubertModel

    torch.manual_seed(0)
    HfHubertModel(_hf_config(stable=False)).eval().save_pretrained(path)
    return path


@pytest.mark.slow  # about 6 minutes: CI runs it (make test-slow)
def test_own_teachers_of_every_format_through_the_recipes(tiny_corpus, kws_sv_corpora, tmp_path):
    d = _recipe_copy(tmp_path, tiny_corpus).parent / "ssl1"
    hf = _hf_teacher(tmp_path / "hubert_hf")
    tiny = ["--corpus_size", "tiny", "--teacher_ckpt", str(hf)]

    # the default students include the LSTMs (output-level KD): named before any student trains
    out = run_recipe(d, *tiny, "--stop_stage", "4", ok=False)
    assert (
        "has no masked-prediction head" in out and "lstm_kd, lstm_dkd cannot train from it" in out
    )
    assert '--students "distilhubert deep wide"' in out
    assert not (d / "exp" / "tiny" / "distilhubert").exists()

    # without them: students (4), probes of the HF dir itself (5), the table (6)
    out = run_recipe(d, *tiny, "--students", "distilhubert wide", "--probe_tasks", "pr sid")
    exp = d / "exp" / "tiny"
    for name in ("teacher", "distilhubert", "wide"):
        for task in ("pr", "sid"):
            assert (exp / "probe" / name / task / "result.yaml").is_file(), (name, task)
    rows = {
        r["upstream"]
        for r in yaml.safe_load((exp / "results" / "summary.yaml").read_text())["rows"]
    }
    assert rows == {"teacher", "distilhubert", "wide"}
    assert "(hf format): 3 layers" in out

    # kws_sv1 fine-tunes the HF teacher and its student
    k = copy_recipe(tmp_path, "synth", "kws_sv1")
    (k / "corpus").mkdir(exist_ok=True)
    shutil.copytree(kws_sv_corpora, k / "corpus" / "tiny")
    run_recipe(k, "--corpus_size", "tiny", "--teacher_ckpt", str(hf), "--student_ckpt",
               str(exp / "distilhubert" / "model.pt"), "--upstream_modes", "frozen", "--setups",
               "kws", "--stop_stage", "3")  # fmt: skip
    for name in ("teacher", "distilhubert"):
        assert (
            k / "exp" / "tiny" / "finetune" / name / "frozen" / "kws" / "results.json"
        ).is_file()

    # fairseq and torchaudio checkpoints: probed through stage 5, each in its own exp dir
    import torchaudio

    fairseq = tmp_path / "checkpoint_best.pt"
    torch.save(_fairseq_checkpoint(_random_model()), fairseq)
    torch.manual_seed(0)
    w2v = torchaudio.models.wav2vec2_model(**tiny_config(layer_norm_first=True), aux_num_out=None)
    torchaudio_ckpt = tmp_path / "hubert_torchaudio.pt"
    torch.save(w2v.state_dict(), torchaudio_ckpt)
    for fmt, ckpt in (("fairseq", fairseq), ("torchaudio", torchaudio_ckpt)):
        out = run_recipe(d, "--corpus_size", "tiny", "--teacher_ckpt", str(ckpt), "--exp_dir",
                         f"exp/{fmt}", "--students", "", "--probe_tasks", "pr", "--stop_stage", "5")  # fmt: skip
        result = yaml.safe_load(
            (d / "exp" / fmt / "probe" / "teacher" / "pr" / "result.yaml").read_text()
        )
        assert result["metric"] == "PER", fmt
        assert f"({fmt} format)" in out
