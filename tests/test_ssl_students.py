"""HuBERT students (espnet_distill/models/students.py): layer selection, initialisation from the
teacher, the LSTM student's padding, and equal-size deep vs wide widths."""

from __future__ import annotations

import pytest
import torch

from espnet_distill.models.hubert import HubertModel, count_parameters
from espnet_distill.models.students import (
    DistilHubert,
    LstmStudent,
    init_from_teacher,
    narrow_cnn,
    select_layers,
    transformer_config,
    width_for_budget,
)

from .test_hubert import tiny_config


@pytest.fixture(scope="module")
def teacher() -> HubertModel:
    torch.manual_seed(0)
    return HubertModel(
        dict(tiny_config(), encoder_num_layers=4), num_classes=12, final_dim=16
    ).eval()


def test_select_layers_picks_the_teacher_layer_outputs(teacher):
    """Layer l is the output of the l-th Transformer layer: torchaudio's extract_features[l-1]."""
    wave = torch.randn(1, 3000)
    with torch.no_grad():
        states, _ = teacher.hidden_states(wave)
        ref, _ = teacher.wav2vec2.extract_features(wave)
    picked = select_layers(states, [2, 4])
    assert torch.equal(picked[0], ref[1]) and torch.equal(picked[1], ref[3])
    with pytest.raises(
        ValueError,
        match=r"teacher layers \[0, 5\] out of range: the teacher has "
        r"layers 1..4",
    ):
        select_layers(states, [0, 2, 5])


def test_distilhubert_starts_from_the_teacher(teacher):
    config = transformer_config(teacher.config, num_layers=2)
    student = DistilHubert(config, target_layers=[2, 4], teacher_dim=128)
    copied = init_from_teacher(student.backbone, teacher)
    assert any("layers.1.attention" in k for k in copied) and not any(
        "transformer.layers.2." in k for k in copied
    )
    wave = torch.randn(1, 3000)
    with torch.no_grad():
        t_states, _ = teacher.hidden_states(wave)
        s_states, _ = student.hidden_states(wave)
        preds = student.predictions(s_states[-1])
    # the student's 2 layers are the teacher's first 2 (post-LN: no final norm in between)
    torch.testing.assert_close(s_states[2], t_states[2])
    assert len(preds) == 2 and preds[0].shape == t_states[2].shape
    assert student.upstream_parameters() < count_parameters(student)


def test_lstm_student_ignores_padding(teacher):
    """With a per-frame (layer-norm) CNN a padded utterance gives what it gives alone (a group-norm
    CNN, as HuBERT Base's, normalises over the padding too: any batch of it depends on padding)."""
    torch.manual_seed(0)
    cnn = tiny_config(mode="layer_norm")
    student = LstmStudent(cnn, num_classes=12, hidden=32, num_layers=2).eval()
    a, b = torch.randn(3000), torch.randn(2000)
    batch = torch.stack([a, torch.nn.functional.pad(b, (0, 1000))])
    with torch.no_grad():
        states, lens = student.hidden_states(batch, torch.tensor([3000, 2000]))
        alone, _ = student.hidden_states(b[None], torch.tensor([2000]))
    n = int(lens[1])
    torch.testing.assert_close(states[-1][1, :n], alone[-1][0, :n], atol=1e-5, rtol=1e-4)
    assert student.unit_logits(states[-1]).shape[-1] == 12 and len(states) == 3
    # initialised from a teacher, the CNN is the teacher's
    other = LstmStudent(teacher.config, num_classes=12, hidden=32, num_layers=1)
    init_from_teacher(other.feature_extractor, teacher.wav2vec2.feature_extractor)
    with torch.no_grad():
        cnn_t, _ = teacher.wav2vec2.feature_extractor(a[None], None)
        cnn_s, _ = other.feature_extractor(a[None], None)
    torch.testing.assert_close(cnn_s, cnn_t)


def test_narrow_cnn_keeps_the_teacher_frames(teacher):
    """A narrower CNN has the teacher's kernels and strides: the same frame count for any length
    (what the KD loss pairs frame by frame), fewer channels, (channels / C)^2 fewer conv weights."""
    cnn = narrow_cnn(teacher.config, 0.25)
    assert [c[0] for c in cnn["extractor_conv_layer_config"]] == [
        round(c[0] / 4) for c in teacher.config["extractor_conv_layer_config"]
    ]
    student = LstmStudent(cnn, num_classes=12, hidden=16, num_layers=1).eval()
    for samples in (400, 401, 1999, 3000):
        wave = torch.randn(1, samples)
        with torch.no_grad():
            t_states, _ = teacher.hidden_states(wave)
            s_states, _ = student.hidden_states(wave)
        assert s_states[-1].shape[1] == t_states[-1].shape[1] == teacher.frames(samples)
    wide = LstmStudent(teacher.config, num_classes=12, hidden=16, num_layers=1)
    assert count_parameters(student.feature_extractor) < count_parameters(wide.feature_extractor)
    assert init_from_teacher(student.feature_extractor, teacher.wav2vec2.feature_extractor) == []
    with pytest.raises(ValueError, match=r"cnn_channel_ratio must be in \(0, 1\], got 2"):
        narrow_cnn(teacher.config, 2)


def test_width_for_budget_matches_the_parameter_count(teacher):
    budget = count_parameters(HubertModel(transformer_config(teacher.config, 2)))
    for layers in (1, 4):
        width, params = width_for_budget(teacher.config, layers, budget)
        near = [
            count_parameters(HubertModel(transformer_config(teacher.config, layers, w)))
            for w in (width - 8, width + 8)
        ]
        assert abs(params - budget) <= min(abs(p - budget) for p in near)
        assert abs(params - budget) / budget < 0.05, (layers, width, params, budget)
    deep, _ = width_for_budget(teacher.config, 4, budget)
    wide, _ = width_for_budget(teacher.config, 1, budget)
    assert deep < 128 < wide
