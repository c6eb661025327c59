"""A distilled upstream as the asr1 acoustic front-end (models/acoustic_model.SslFrontend):
frozen vs fine-tuned gradients, frame rates that match the 10 ms targets, and stage-6 training
and hybrid scoring from audio on the tiny corpus."""

from __future__ import annotations

import pytest
import torch

from espnet_distill.models.acoustic_model import build_model
from espnet_distill.models.hubert import HubertModel

from .conftest import train_tiny_am
from .test_hubert import tiny_config

CONV = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2  # HuBERT's 320-sample stride


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("up") / "model.pt"
    HubertModel(dict(tiny_config(), extractor_conv_layer_config=CONV, encoder_num_layers=2)).save(
        path
    )
    return path


def _config(upstream, freeze=True):
    return {
        "model": {
            "encoder": "conformer",
            "subsampling_conf": None,
            "ssl_frontend": {"upstream": str(upstream), "freeze": freeze},
            "senone_head": {"upsample": 4},
            "encoder_conf": {
                "output_size": 32,
                "attention_heads": 2,
                "linear_units": 64,
                "num_blocks": 1,
                "cnn_module_kernel": 7,
            },
        }
    }


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_upstream_gets_no_gradient_finetuned_does(upstream, freeze):
    model = build_model(_config(upstream, freeze), vocab_size=10, num_senones=7).train()
    audio = torch.randn(2, 16000) * 0.1
    lens = torch.tensor([16000, 12000])
    fbank_frames = (lens - 400) // 160 + 1  # Kaldi fbank, 25 ms window, 10 ms shift
    targets = torch.full((2, int(fbank_frames.max())), -1)
    for i, n in enumerate(fbank_frames.tolist()):
        targets[i, :n] = torch.randint(0, 7, (n,))
    out = model(audio, lens, torch.tensor([[1, 2, 3], [4, 5, -1]]), torch.tensor([3, 2]), targets)
    out["loss"].backward()
    up = model.ssl_frontend.upstream
    grads = [p.grad for p in up.parameters()]
    assert model.ssl_frontend.featurizer.weights.grad is not None
    if freeze:
        assert all(g is None for g in grads) and not up.training
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # 20 ms upstream frames -> 40 ms encoder frames -> 4 outputs each: the 10 ms rate again
    scores, score_lens = model.eval().senone_scores(audio, lens)
    assert (fbank_frames - score_lens).abs().max() <= 8, (fbank_frames, score_lens)


def test_stage6_trains_and_scores_from_audio(aligned, tiny_features, upstream, tmp_path):
    from espnet_distill.asr.trainer import DEFAULT_CONFIG
    from espnet_distill.config import merge_config
    from espnet_distill.decode.network import hybrid_scores
    from espnet_distill.models.acoustic_model import load_model

    exp, _, cuts_file, _ = aligned
    cfg = merge_config(DEFAULT_CONFIG, _config(upstream))
    cfg["train"].update(max_epochs=2, average_best=1, max_duration=40, num_workers=0)
    model_file = train_tiny_am(
        cfg, tmp_path / "am", tiny_features, cuts_file, targets_dir=exp / "targets"
    )
    model, _ = load_model(model_file)
    assert model.takes_audio
    scores = hybrid_scores(
        model_file,
        tiny_features / "fbank" / "cuts_dev-clean.jsonl.gz",
        model.senone_head.num_classes,
        "cpu",
        60,
    )
    assert len(scores) == 10 and all(
        v.shape[1] == model.senone_head.num_classes for v in scores.values()
    )
    # the decoded audio's duration (the RTF's denominator) from sample counts, not 10 ms frames
    from lhotse import CutSet

    from espnet_distill.decode.network import network_outputs

    dev = tiny_features / "fbank" / "cuts_dev-clean.jsonl.gz"
    outputs, seconds = network_outputs(model_file, dev, "cpu", 60)
    assert len(outputs) == 10
    assert seconds == pytest.approx(sum(c.duration for c in CutSet.from_file(dev)), rel=1e-6)


def test_recipe_configs_build_with_the_upstream_frozen_or_finetuned(upstream, tmp_path):
    from espnet_distill.asr.trainer import DEFAULT_CONFIG
    from espnet_distill.config import apply_overrides, load_config, merge_config

    from .conftest import REPO

    conf = REPO / "egs" / "synth" / "asr1" / "conf"
    for name, frozen in (
        ("train_ssl_frontend.yaml", True),
        ("train_ssl_frontend_finetune.yaml", False),
    ):
        cfg = merge_config(DEFAULT_CONFIG, load_config(conf / name))
        with pytest.raises(FileNotFoundError, match="ssl_frontend.upstream: .* does not exist"):
            build_model(cfg, 100, 50)
        cfg = apply_overrides(cfg, [f"model.ssl_frontend.upstream={upstream}"])
        model = build_model(cfg, 100, 50)
        assert model.takes_audio and model.subsampling is None
        trainable = any(p.requires_grad for p in model.ssl_frontend.upstream.parameters())
        assert trainable is not frozen
