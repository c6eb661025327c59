"""Acoustic-model training: the loss goes down, checkpoints resume, decoding runs."""

from __future__ import annotations

import logging

import numpy as np
import torch
import yaml

from espnet_distill.asr import trainer as am_trainer
from espnet_distill.asr.trainer import train
from espnet_distill.config import apply_overrides
from espnet_distill.data.datamodule import make_loader
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.models.acoustic_model import build_model, load_model
from espnet_distill.nn import greedy_ctc

from .conftest import tiny_am_config
from .figures import figure, test_seed


def _config(**overrides) -> dict:
    """The tiny recipe config as a CTC-only model (the senone head is tested in test_hybrid)."""
    return tiny_am_config(
        "model.senone_head=null",
        f"train.seed={test_seed()}",
        *(f"{k}={v}" for k, v in overrides.items()),
    )


def _dataset_loss(model, data) -> float:
    tok = BpeTokenizer(data / "lang_bpe_64" / "bpe.model")
    loader = make_loader(
        data / "fbank" / "cuts_train-clean-100.jsonl.gz", tok, 60, train=False, num_workers=0
    )
    model.eval()
    with torch.no_grad():
        losses = [
            float(model(b["feats"], b["feat_lens"], b["ys"], b["ys_lens"])["loss"]) for b in loader
        ]
    return float(np.mean(losses))


def _train(data, exp, cfg):
    return train(
        cfg,
        exp,
        data / "fbank" / "cuts_train-clean-100.jsonl.gz",
        data / "fbank" / "cuts_dev-clean.jsonl.gz",
        data / "lang_bpe_64",
        data / "fbank" / "cmvn.npz",
    )


def test_training_decreases_loss_and_resumes_from_checkpoint(
    tiny_features, tmp_path, monkeypatch, caplog
):
    exp = tmp_path / "am"
    cfg = _config(**{"train.max_epochs": 2, "train.average_best": 1, "optim.lr": 0.003})
    with caplog.at_level(logging.INFO, logger="espnet_distill.train.progress"):
        model_file = _train(tiny_features, exp, cfg)
    # not a terminal: plain progress lines with the measured epoch length instead of a tqdm bar
    lines = [r.getMessage() for r in caplog.records if r.name == "espnet_distill.train.progress"]
    per_epoch = [m for m in lines if m.startswith("epoch 2/2 batch")]
    assert (
        per_epoch
        and per_epoch[-1].split()[3].split("/")[0] == per_epoch[-1].split()[3].split("/")[1]
    )
    assert any(m.startswith("epoch 2 valid_loss") for m in lines)
    first = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert first["epoch"] == 1 and first["global_step"] > 0

    # loss of the trained model vs the same architecture at its initialisation (same seed)
    trained, _ = load_model(model_file)
    torch.manual_seed(cfg["train"]["seed"])
    init = build_model(cfg, trained.ctc.ctc_lo.out_features)
    init.set_cmvn(trained.cmvn_mean, trained.cmvn_std)
    ratio = _dataset_loss(trained, tiny_features) / _dataset_loss(init, tiny_features)
    assert figure("train.ctc_loss_trained_over_init", ratio, "< 0.8", ">= 1 (no learning)") < 0.8

    # resume: a longer run picks up last.ckpt and trains only the missing epoch
    calls = []
    original = am_trainer.AmLitModule.training_step
    monkeypatch.setattr(
        am_trainer.AmLitModule,
        "training_step",
        lambda self, b, i: calls.append(i) or original(self, b, i),
    )
    model_file.unlink()
    _train(tiny_features, exp, apply_overrides(cfg, ["train.max_epochs=3"]))
    second = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # only the third epoch's steps ran (from scratch, 3 epochs would be 1.5x the first run's steps)
    assert 0 < len(calls) == second["global_step"] - first["global_step"]
    assert len(calls) < 0.75 * first["global_step"]
    assert yaml.safe_load((exp / "config.yaml").read_text())["train"]["max_epochs"] == 3


def test_greedy_ctc_merges_repeats_and_drops_blanks():
    # frames: a a _ a b b _ _ c  (blank = 0) -> a a b c
    seq = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    log_probs = torch.log(torch.nn.functional.one_hot(torch.tensor([seq]), 4).float() * 0.97 + 0.01)
    assert greedy_ctc(log_probs, torch.tensor([9])) == [[1, 1, 2, 3]]
    assert greedy_ctc(log_probs, torch.tensor([4])) == [[1, 1]]


def test_light_subsampling_lengths_match_outputs():
    from espnet_distill.models.acoustic_model import LightConv2dSubsampling

    sub = LightConv2dSubsampling(80, 32)
    for t in (7, 8, 100, 101):
        x, lens = sub(torch.randn(2, t, 80), torch.tensor([t, t]))
        assert x.shape[1] == lens[0] == ((t - 1) // 2 - 1) // 2


def test_linear_warmup_decay_schedule_by_hand():
    from espnet_distill.train.loop import LinearWarmupDecay

    f = LinearWarmupDecay(warmup=4, total=10)
    # steps are 0-based: step s uses factor min((s+1)/4, (10-(s+1))/6)
    assert [round(f(s), 4) for s in range(10)] == [
        0.25,
        0.5,
        0.75,
        1.0,
        0.8333,
        0.6667,
        0.5,
        0.3333,
        0.1667,
        0.0,
    ]
