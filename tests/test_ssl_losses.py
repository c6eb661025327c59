"""HuBERT distillation losses (espnet_distill/kd/losses.py) against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from espnet_distill.kd.losses import dkd_sum, kd_kl_sum, layer_distillation_loss


def _softmax(z: list[float], t: float) -> list[float]:
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_dkd_by_hand_with_target_split_and_masking():
    zs, zt, t = [1.0, 2.0, 0.5], [2.0, 0.0, 1.0], 2.0
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    # target class 0: binary (target, rest) and the non-target classes renormalised
    tckd = _kl([pt[0], 1 - pt[0]], [ps[0], 1 - ps[0]])
    nckd = _kl(
        [pt[1] / (1 - pt[0]), pt[2] / (1 - pt[0])], [ps[1] / (1 - ps[0]), ps[2] / (1 - ps[0])]
    )
    alpha, beta = 1.5, 8.0
    by_hand = (alpha * tckd + beta * nckd) * t * t
    student = torch.tensor([[zs, [0.0, 0.0, 9.0]]])
    teacher = torch.tensor([[zt, [9.0, 0.0, 0.0]]])
    target = torch.tensor([[0, 0]])
    mask = torch.tensor([[True, False]])  # the second frame (far off) is padding
    got = dkd_sum(student, teacher, target, mask, alpha=alpha, beta=beta, temperature=t)
    assert float(got) == pytest.approx(by_hand, rel=1e-5)
    # another target class gives another split
    other = dkd_sum(student, teacher, torch.tensor([[1, 0]]), mask, alpha, beta, t)
    tckd1 = _kl([pt[1], 1 - pt[1]], [ps[1], 1 - ps[1]])
    nckd1 = _kl(
        [pt[0] / (1 - pt[1]), pt[2] / (1 - pt[1])], [ps[0] / (1 - ps[1]), ps[2] / (1 - ps[1])]
    )
    assert float(other) == pytest.approx((alpha * tckd1 + beta * nckd1) * t * t, rel=1e-5)


def test_dkd_reassembles_classic_kd():
    """Zhao et al.'s identity: KD = TCKD + (1 - p_t[target]) * NCKD (per frame, same T)."""
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(1, 1, 7, generator=g), torch.randn(1, 1, 7, generator=g) * 3
    target = teacher.argmax(-1)
    t = 3.0
    pt_target = float((teacher / t).softmax(-1)[0, 0, target[0, 0]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    dkd = dkd_sum(student, teacher, target, mask, alpha=1.0, beta=1.0 - pt_target, temperature=t)
    kd = kd_kl_sum(student, teacher, mask, temperature=t)  # teacher logits work as log-probs
    assert float(dkd) == pytest.approx(float(kd), rel=1e-5)


def test_dkd_gradient_reaches_only_the_student():
    student = torch.randn(2, 3, 5, requires_grad=True)
    teacher = torch.randn(2, 3, 5, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    dkd_sum(student, teacher.detach(), teacher.argmax(-1), mask).backward()
    assert student.grad[~mask].abs().sum() == 0 and student.grad[mask].abs().sum() > 0
    assert teacher.grad is None


def test_layer_distillation_loss_by_hand():
    pred = torch.tensor([[[1.0, 2.0], [0.0, 1.0], [5.0, 5.0]]])
    target = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    loss, cos = layer_distillation_loss(pred, target, mask, cos_weight=1.0)
    # frame 1: L1 mean |0|,|2| = 1; cos = 1 / sqrt(5); frame 2: L1 0.5, cos = 1
    c1 = 1 / math.sqrt(5)

    def logsig(x):
        return -math.log1p(math.exp(-x))

    by_hand = ((1.0 - logsig(c1)) + (0.5 - logsig(1.0))) / 2
    assert float(loss) == pytest.approx(by_hand, rel=1e-6)
    assert float(cos) == pytest.approx((c1 + 1.0) / 2, rel=1e-6)
    l1_only, _ = layer_distillation_loss(pred, target, mask, cos_weight=0.0)
    assert float(l1_only) == pytest.approx(0.75)
