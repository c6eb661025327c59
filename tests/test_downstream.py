"""KWS and SV fine-tuning (espnet_distill/kws_sv/trainer.py): the AAM-softmax and pooling against
hand computations; single-task and joint training on the tiny synthetic corpora, frozen vs
fine-tuned upstream, resumable and scored."""

from __future__ import annotations

import math

import pytest
import torch
from lhotse import CutSet, load_manifest

from espnet_distill.data.kws_sv import prepare_speech_commands, prepare_voxceleb1, read_trials
from espnet_distill.kws_sv.trainer import (
    AamSoftmax,
    fine_tune,
    keyword_cuts,
    kws_class_weights,
    mean_std_pool,
)
from espnet_distill.models.hubert import HubertModel

from .test_hubert import tiny_config


def test_kws_class_weights_make_every_class_weigh_the_same():
    # Speech Commands' 12-class training: 1500 _unknown_, 120 of each word, 400 silence windows
    counts = {"_unknown_": 1500, "_silence_": 400, **{w: 120 for w in ("yes", "no")}}
    keywords = ["_silence_", "_unknown_", "no", "yes"]
    w = kws_class_weights(keywords, counts)
    total = 1500 + 400 + 240
    assert w.tolist() == pytest.approx([total / (4 * n) for n in (400, 1500, 120, 120)])
    # each class's total weight over the training clips is the same: total / 4
    assert [w[i].item() * counts[k] for i, k in enumerate(keywords)] == pytest.approx(
        [total / 4] * 4
    )
    # the weighted loss of a batch holding the classes in the training proportions equals the
    # plain mean of the per-class mean losses (the balanced objective)
    logits = torch.randn(4, 4)
    per_class = [
        torch.nn.functional.cross_entropy(logits[i : i + 1], torch.tensor([i])) for i in range(4)
    ]
    batch_logits = torch.cat(
        [logits[i : i + 1].repeat(counts[k] // 20, 1) for i, k in enumerate(keywords)]
    )
    batch_target = torch.cat([torch.full((counts[k] // 20,), i) for i, k in enumerate(keywords)])
    weighted = torch.nn.functional.cross_entropy(batch_logits, batch_target, weight=w)
    assert weighted.item() == pytest.approx(torch.stack(per_class).mean().item(), rel=1e-5)
    assert kws_class_weights(keywords, None).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match=r"no training clips of keyword class\(es\) \['yes'\]"):
        kws_class_weights(keywords, {**counts, "yes": 0})


def test_aam_softmax_target_logit_by_hand():
    aam = AamSoftmax(embedding=2, num_classes=2, margin=0.2, scale=10.0)
    with torch.no_grad():
        aam.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    emb, target = torch.tensor([[1.0, 1.0]]), torch.tensor([0])
    # both classes at 45 degrees: target logit s cos(45 deg + 0.2), the other s cos(45 deg)
    expected = torch.tensor([[10 * math.cos(math.pi / 4 + 0.2), 10 * math.cos(math.pi / 4)]])
    torch.testing.assert_close(aam.logits(emb, target), expected)
    loss = -torch.log_softmax(expected, -1)[0, 0]
    torch.testing.assert_close(aam(emb, target), loss)
    # past theta = pi - m the target logit falls back to s (cos theta - m sin m)
    emb = torch.tensor([[-1.0, 0.01]])
    cos = -1 / math.hypot(1, 0.01)
    assert aam.logits(emb, target)[0, 0].item() == pytest.approx(
        10 * (cos - 0.2 * math.sin(0.2)), rel=1e-5
    )
    # no margin: plain scaled-cosine cross-entropy
    aam.margin = 0.0
    emb = torch.randn(4, 2)
    target = torch.tensor([0, 1, 1, 0])
    cos = torch.nn.functional.normalize(emb) @ torch.eye(2)
    torch.testing.assert_close(
        aam(emb, target), torch.nn.functional.cross_entropy(10 * cos, target)
    )


def test_pooling_ignores_padding():
    x = torch.randn(1, 5, 3)
    padded = torch.cat([x, torch.full((1, 4, 3), 100.0)], 1)
    mask = torch.tensor([[1.0] * 5 + [0.0] * 4]).unsqueeze(-1)
    mean, std = mean_std_pool(padded, mask)
    torch.testing.assert_close(mean, x.mean(1))
    torch.testing.assert_close(std, x.std(1, unbiased=False))


@pytest.fixture(scope="module")
def kws_sv_data(kws_sv_corpora, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("kws_sv_manifests")
    prepare_speech_commands(kws_sv_corpora / "SpeechCommands", out)
    prepare_voxceleb1(kws_sv_corpora / "VoxCeleb1", out)

    def cuts(prefix: str, split: str) -> CutSet:
        return CutSet.from_manifests(
            recordings=load_manifest(out / f"{prefix}_recordings_{split}.jsonl.gz"),
            supervisions=load_manifest(out / f"{prefix}_supervisions_{split}.jsonl.gz"),
        ).to_eager()

    sv_test = cuts("voxceleb", "test")
    trials = read_trials(out / "voxceleb_trials.txt", {c.recording_id for c in sv_test})
    return {
        "kws_train": cuts("speechcommands", "train"),
        "kws_test": cuts("speechcommands", "test"),
        "sv_train": cuts("voxceleb", "train"),
        "sv_test": sv_test,
        "trials": trials,
    }


def test_keyword_cuts_window_the_background_into_silence(kws_sv_data):
    cuts, labels = keyword_cuts(kws_sv_data["kws_train"], "12class")
    silence = [c for c in cuts if labels[c.id] == "_silence_"]
    assert silence and all(0.5 <= c.duration <= 1.0 for c in silence)
    cuts35, labels35 = keyword_cuts(kws_sv_data["kws_train"], "35class")
    assert "_silence_" not in labels35.values() and len(cuts35) < len(cuts)


def _upstream() -> HubertModel:
    torch.manual_seed(0)
    return HubertModel(tiny_config()).eval()


@pytest.mark.parametrize("tasks,frozen", [(["kws", "sv"], True), (["kws", "sv"], False)])
def test_fine_tune_trains_scores_and_resumes(kws_sv_data, tmp_path, tasks, frozen):
    config = {
        "tasks": tasks,
        "freeze_upstream": frozen,
        "kws": {"hidden": 32},
        "sv": {"hidden": 32, "embedding": 16, "crop_seconds": 1.5},
        "optim": {"lr": 3e-3, "upstream_lr": 1e-3, "warmup_steps": 2},
        "train": {"max_epochs": 1, "max_duration": 20},
    }
    upstream = _upstream()
    before = {k: v.clone() for k, v in upstream.state_dict().items()}
    results = fine_tune(upstream, config, tmp_path / "exp", kws_sv_data)
    changed = any(not torch.equal(before[k], v) for k, v in upstream.state_dict().items())
    assert changed == (not frozen)  # the frozen upstream is untouched, the fine-tuned one trained
    assert ("kws_accuracy" in results) == ("kws" in tasks)
    assert 0.0 <= results["eer"] <= 100.0 and results["min_dcf"] >= 0.0
    assert len(results["det"]["p_miss"]) == len(results["det"]["p_fa"])
    scores = (tmp_path / "exp" / "sv_scores.txt").read_text().splitlines()
    assert len(scores) == len(kws_sv_data["trials"])
    # per KWS test utterance: id, label, predicted, which add up to the accuracy
    kws = [
        line.split("\t")
        for line in (tmp_path / "exp" / "kws_predictions.txt").read_text().splitlines()
    ]
    assert all(len(f) == 3 for f in kws) and len({f[0] for f in kws}) == len(kws) > 0
    assert results["kws_accuracy"] == round(100 * sum(f[1] == f[2] for f in kws) / len(kws), 2)
    # finished: a rerun returns the stored results without training
    assert fine_tune(_upstream(), config, tmp_path / "exp", kws_sv_data) == results


def test_unknown_task_is_refused(kws_sv_data, tmp_path):
    with pytest.raises(ValueError, match=r"tasks \['asr'\]: expected one or both of kws, sv"):
        fine_tune(_upstream(), {"tasks": ["asr"]}, tmp_path / "exp", kws_sv_data)
