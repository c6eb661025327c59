"""ssl1 training on the tiny corpus: MFCC k-means labels, HuBERT pretraining, then DistilHuBERT,
LSTM-KD and LSTM-DKD students of that teacher (a few steps each: the plumbing, resumable outputs
and the losses' direction, not the quality)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lhotse import CutSet

from espnet_distill.bin import ssl_labels, train_ssl
from espnet_distill.models.hubert import load_hubert
from espnet_distill.models.upstream import load_upstream
from espnet_distill.ssl.targets import mfcc_features
from espnet_distill.ssl.trainer import read_labels

from .figures import figure

TINY_HUBERT = """mode: pretrain
model:
  encoder:
    extractor_mode: group_norm
    extractor_conv_layer_config: [[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 3, 2], [32, 2, 2], [32, 2, 2]]
    extractor_conv_bias: false
    encoder_embed_dim: 64
    encoder_projection_dropout: 0.0
    encoder_pos_conv_kernel: 16
    encoder_pos_conv_groups: 4
    encoder_num_layers: 2
    encoder_num_heads: 2
    encoder_attention_dropout: 0.0
    encoder_ff_interm_features: 128
    encoder_ff_interm_dropout: 0.0
    encoder_dropout: 0.0
    encoder_layer_norm_first: false
    encoder_layer_drop: 0.0
  final_dim: 32
  masking: {mask_prob: 0.5, mask_length: 5}
optim: {lr: 0.001, warmup_steps: 5}
train: {max_epochs: 3, max_duration: 30, crop_seconds: 3.0, num_workers: 0}
"""


def _train_ssl_argv(config: Path, features: Path, exp_dir: Path, *extra: str) -> list[str]:
    """train_ssl's arguments over the tiny corpus's train and dev cuts."""
    fbank = features / "fbank"
    train, valid = fbank / "cuts_train-clean-100.jsonl.gz", fbank / "cuts_dev-clean.jsonl.gz"
    return ["--config", str(config), "--train-cuts", str(train), "--valid-cuts", str(valid)] + [
        *extra,
        "--exp-dir",
        str(exp_dir),
    ]


@pytest.fixture(scope="module")
def labels_dir(tiny_features, tmp_path_factory):
    out = tmp_path_factory.mktemp("ssl_labels")
    fbank = tiny_features / "fbank"
    argv = [
        "--fit-cuts",
        str(fbank / "cuts_train-clean-100.jsonl.gz"),
        "--cuts",
        str(fbank / "cuts_train-clean-100.jsonl.gz"),
        str(fbank / "cuts_dev-clean.jsonl.gz"),
        "--num-clusters",
        "16",
        "--out-dir",
        str(out),
    ]
    assert ssl_labels.main(argv) == 0
    return out


def test_mfcc_labels_are_the_nearest_centroid_per_model_frame(labels_dir, tiny_features):
    labels = read_labels(labels_dir / "labels.npz")
    centers = np.load(labels_dir / "centers.npy")
    cuts = CutSet.from_file(tiny_features / "fbank" / "cuts_dev-clean.jsonl.gz")
    for cut in list(cuts)[:3]:
        n = (cut.num_samples - 400) // 320 + 1  # HuBERT CNN frames
        assert len(labels[cut.id]) == n
        feats = mfcc_features(torch.from_numpy(cut.load_audio()[0])).numpy()[::2]
        nearest = ((feats[:, None, :] - centers[None]) ** 2).sum(-1).argmin(-1)
        m = min(n, len(nearest))
        agree = (labels[cut.id][:m] == nearest[:m]).mean()
        assert figure("ssl.kmeans_labels_nearest_centroid", agree, "> 0.99", "~1/16") > 0.99


@pytest.fixture(scope="module")
def teacher_path(labels_dir, tiny_features, tmp_path_factory):
    out = tmp_path_factory.mktemp("hubert")
    (out / "conf.yaml").write_text(TINY_HUBERT)
    argv = _train_ssl_argv(
        out / "conf.yaml", tiny_features, out / "exp", "--labels", str(labels_dir / "labels.npz")
    )
    assert train_ssl.main(argv) == 0
    return out / "exp" / "model.pt"


def _scalars(exp, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((exp / "tensorboard").glob("events*"))))
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


def test_pretrained_teacher_learns_the_masked_labels(teacher_path):
    loss = _scalars(teacher_path.parent, "valid_loss")
    assert len(loss) == 3
    ratio = figure("ssl.teacher_valid_loss_last_over_first", loss[-1] / loss[0], "< 1", ">= 1")
    assert ratio < 1, loss
    teacher = load_hubert(teacher_path)
    assert teacher.num_classes == 16 and teacher.num_layers == 2
    assert load_upstream(teacher_path).num_classes == 16


@pytest.mark.parametrize(
    "mode,model",
    [
        ("distilhubert", "{num_layers: 1, target_layers: [1, 2]}"),
        ("kd", "{hidden: 16, num_layers: 1, kd_warmup_steps: 5}"),
        ("dkd", "{hidden: 16, num_layers: 1, kd_warmup_steps: 5, cnn_channel_ratio: 0.5}"),
    ],
)
def test_students_distil_the_teacher(teacher_path, tiny_features, tmp_path, mode, model):
    (tmp_path / "conf.yaml").write_text(
        f"mode: {mode}\nmodel: {model}\noptim: {{lr: 0.003, warmup_steps: 5}}\n"
        "train: {max_epochs: 5, max_duration: 30, crop_seconds: 3.0, num_workers: 0}\n"
    )
    argv = _train_ssl_argv(
        tmp_path / "conf.yaml", tiny_features, tmp_path / "exp", "--teacher", str(teacher_path)
    )
    assert train_ssl.main(argv) == 0
    loss = _scalars(tmp_path / "exp", "valid_loss")
    assert len(loss) == 5
    ratio = figure(f"ssl.{mode}_valid_loss_last_over_first", loss[-1] / loss[0], "< 1", ">= 1")
    assert ratio < 1, loss
    student = load_upstream(tmp_path / "exp" / "model.pt")
    teacher = load_hubert(teacher_path)
    wave = torch.randn(1, 8000)
    with torch.no_grad():
        s, _ = student.hidden_states(wave)
        t, _ = teacher.hidden_states(wave)
    assert s[-1].shape[1] == t[-1].shape[1]
    # rerun: the finished model is kept
    mtime = (tmp_path / "exp" / "model.pt").stat().st_mtime_ns
    assert train_ssl.main(argv) == 0
    assert (tmp_path / "exp" / "model.pt").stat().st_mtime_ns == mtime


def test_kd_needs_a_teacher_with_a_prediction_head(tmp_path, tiny_features, teacher_path):
    from espnet_distill.models.hubert import HubertModel

    headless = HubertModel(load_hubert(teacher_path).config)
    headless.save(tmp_path / "headless.pt")
    (tmp_path / "conf.yaml").write_text("mode: kd\nmodel: {hidden: 8}\n")
    argv = _train_ssl_argv(
        tmp_path / "conf.yaml",
        tiny_features,
        tmp_path / "exp",
        "--teacher",
        str(tmp_path / "headless.pt"),
    )
    assert train_ssl.main(argv) == 1


def test_audio_shorter_than_the_receptive_field_is_skipped_and_counted(tmp_path, caplog):
    import soundfile as sf
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    from espnet_distill.data.audio import load_cuts

    recs, sups = [], []
    for name, n in (("short", 300), ("long", 8000)):
        sf.write(tmp_path / f"{name}.wav", np.random.default_rng(0).normal(size=n) * 0.1, 16000)
        rec = Recording.from_file(tmp_path / f"{name}.wav", recording_id=name)
        recs.append(rec)
        sups.append(SupervisionSegment(name, name, 0.0, rec.duration, text="A", speaker="s"))
    cuts = CutSet.from_manifests(
        RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
    )
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    kept = load_cuts(tmp_path / "cuts.jsonl.gz", min_samples=400)
    assert [c.recording_id for c in kept] == ["long"]
    assert (
        "1 cuts shorter than the CNN's receptive field (400 samples) skipped, e.g. short"
        in caplog.text
    )


def test_unmasked_prediction_weight_adds_the_unmasked_frames_loss():
    """model.pred_nomask_weight (fairseq's name): loss = masked CE + w * unmasked CE (+ the
    feature penalty), the target being each frame's own cluster, logit 0 in torchaudio's order."""
    import yaml

    from espnet_distill.ssl.trainer import make_ssl_module

    config = yaml.safe_load(TINY_HUBERT)
    config["model"]["pred_nomask_weight"] = 0.5
    config["train"].update(grad_clip=10.0, seed=0)
    module = make_ssl_module(config, total_steps=10, num_classes=8)
    assert module.nomask_weight == 0.5
    audio = torch.randn(2, 16000)
    batch = {
        "audio": audio,
        "lengths": torch.tensor([16000, 12000]),
        "labels": torch.randint(0, 8, (2, 49)),
    }
    torch.manual_seed(3)
    with_unmasked = module.step(batch, "train")
    module.nomask_weight = 0.0
    torch.manual_seed(3)
    masked_only = module.step(batch, "train")
    torch.manual_seed(3)  # the same masks again: the unmasked logits of that step
    _, logit_u, _ = module.net(audio, batch["labels"], batch["lengths"])
    ce_u = torch.nn.functional.cross_entropy(
        logit_u.float(), torch.zeros(len(logit_u), dtype=torch.long)
    )
    assert len(logit_u) > 0 and float(ce_u) > 0
    torch.testing.assert_close(with_unmasked, masked_only + 0.5 * ce_u)
