"""Hybrid senone output: frame cross-entropy, priors, training on the stage-4 alignment, HCLG."""

from __future__ import annotations

import math

import kaldialign
import pytest
import torch
from lhotse import CutSet

from espnet_distill.asr.trainer import senone_counts
from espnet_distill.bin import decode_hclg
from espnet_distill.models.acoustic_model import FrameClassifier, build_model, load_model

from .conftest import tiny_am_config, train_tiny_am
from .figures import figure, test_seed


def test_frame_cross_entropy_by_hand():
    """Upsampled logits, padding and the unscored tail: CE and accuracy against explicit sums."""
    head = FrameClassifier(idim=2, num_classes=3, upsample=2)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0], [0, -1], [2, 0]]))
        head.linear.bias.zero_()
    head.requires_grad_(False)
    enc = torch.tensor([[[1.0, 2.0], [0.5, -1.0]], [[-2.0, 1.0], [9.0, 9.0]]])  # (B=2, T'=2, 2)
    lens = torch.tensor([2, 1])  # utterance 2 has one encoder frame; its second is padding
    # 10 ms targets (T=5 > 2 * T'): the 5th frame has no output; -1 is padding
    targets = torch.tensor([[0, 2, 1, 0, 1], [1, 2, 0, -1, -1]])
    logits, out_lens = head(enc, lens)
    assert logits.shape == (2, 4, 3) and out_lens.tolist() == [4, 2]

    def frame_logits(x: list[float], k: int) -> list[float]:
        w = head.linear.weight[3 * k : 3 * k + 3]
        return [float(w[c, 0] * x[0] + w[c, 1] * x[1]) for c in range(3)]

    total, correct, scored = 0.0, 0, 0
    for b, n_enc in enumerate(lens.tolist()):
        for t in range(n_enc):
            for k in range(2):
                y = int(targets[b, 2 * t + k])
                z = frame_logits(enc[b, t].tolist(), k)
                total += math.log(sum(math.exp(v) for v in z)) - z[y]
                correct += max(range(3), key=z.__getitem__) == y
                scored += 1
    ce, n_correct, n_scored = head.loss(logits, out_lens, targets)
    assert n_scored == scored == 6 and n_correct == correct
    assert float(ce) == pytest.approx(total / (2 * 2), rel=1e-6)  # / (batch * upsample)


def test_prior_and_pseudo_log_likelihoods():
    head = FrameClassifier(idim=4, num_classes=3, upsample=4)
    head.set_prior(torch.tensor([6, 0, 2]))  # the unseen class is floored at one count
    assert head.log_prior.tolist() == pytest.approx(
        [math.log(6 / 9), math.log(1 / 9), math.log(2 / 9)]
    )
    enc = torch.randn(1, 5, 4)
    scores, lens = head.pseudo_log_likelihoods(enc, torch.tensor([5]))
    logits, _ = head(enc, torch.tensor([5]))
    assert lens.tolist() == [20]
    torch.testing.assert_close(scores + head.log_prior, logits.log_softmax(-1))


def _decode_hclg_argv(align_dir, lang_dir, graph_dir, cuts, model, out_dir) -> list[str]:
    paths = {"--align-dir": align_dir, "--lang-dir": lang_dir, "--graph-dir": graph_dir}
    paths.update({"--cuts": cuts, "--model": model, "--out-dir": out_dir})
    return [arg for flag, path in paths.items() for arg in (flag, str(path))]


def test_hybrid_model_trains_on_the_alignment_and_decodes_over_hclg(
    aligned, hclg_graph, tiny_features, tmp_path, capsys
):
    """CTC + senone head on one encoder; decoded over HCLG, training utterances come back."""
    exp, lang_dir, cuts_file, _ = aligned
    targets = exp / "targets"
    cfg = tiny_am_config(
        "model.senone_head={upsample: 4, weight: 1.0}",
        "train.max_epochs=30",
        "optim.lr=0.005",
        "train.average_best=1",
        "optim.warmup_steps=10",
        f"train.seed={test_seed()}",
    )
    model_file = train_tiny_am(cfg, tmp_path / "am", tiny_features, cuts_file, targets_dir=targets)
    model, _ = load_model(model_file)
    num_senones = model.senone_head.num_classes
    # the prior is the training alignment's senone frequencies
    ids = {c.id for c in CutSet.from_file(cuts_file)}
    counts = torch.from_numpy(senone_counts(targets / "senone.scp", ids, num_senones)).double()
    expected = (counts.clamp(min=1) / counts.clamp(min=1).sum()).log().float()
    torch.testing.assert_close(model.senone_head.log_prior, expected)

    # decode 15 training utterances over HCLG with the hybrid scores
    sub = CutSet.from_file(cuts_file).to_eager().subset(first=15)
    sub.to_file(tmp_path / "cuts15.jsonl.gz")
    argv = _decode_hclg_argv(
        exp, lang_dir, hclg_graph, tmp_path / "cuts15.jsonl.gz", model_file, tmp_path / "dec"
    ) + ["--acoustic-scales", "0.1"]
    assert decode_hclg.main(argv) == 0
    hyps = dict(
        ln.split(" ", 1) if " " in ln else (ln, "")
        for ln in (tmp_path / "dec" / "text").read_text().splitlines()
    )
    errors = words = 0
    for cut in sub:
        ref = cut.supervisions[0].text.split()
        errors += kaldialign.edit_distance(ref, hyps[cut.id].split())["total"]
        words += len(ref)
    # over-fitted on 4 minutes of speech; an output/prior/graph mismatch or a frame shift between
    # targets and outputs gives WERs near 100%
    wer = figure("hybrid.hclg_train_wer", errors / words, "< 0.1", "~1.0 (prior or frame shift)")
    assert wer < 0.1


def test_decode_hclg_refuses_a_model_without_a_senone_head(aligned, hclg_graph, tmp_path, capsys):
    exp, lang_dir, cuts_file, _ = aligned
    cfg = tiny_am_config("model.senone_head=null")
    model = build_model(cfg, 64)
    torch.save(
        {"config": cfg, "vocab_size": 64, "state_dict": model.state_dict()}, tmp_path / "ctc.pt"
    )
    argv = _decode_hclg_argv(
        exp, lang_dir, hclg_graph, cuts_file, tmp_path / "ctc.pt", tmp_path / "dec"
    )
    assert decode_hclg.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ctc.pt" in err[0] and "no senone head" in err[0]
