"""Losses of cross-modal KD over frames: temperature KL to an LM's distribution, and label
interpolation (the hard target mixed with the LM's distribution).

Both work on per-frame logits (B, N, V) and per-frame teacher log-probabilities (B, N, V) with a
mask (B, N) of the frames that have a teacher (speech frames of the alignment; silence and padding
have none). They return a sum over frames; the caller divides (by batch size x upsampling, the
scale of :meth:`~espnet_distill.models.acoustic_model.FrameClassifier.loss`).
"""

from __future__ import annotations

import torch


def kd_kl_sum(student_logits: torch.Tensor, teacher_log_probs: torch.Tensor, mask: torch.Tensor,
              temperature: float = 1.0) -> torch.Tensor:  # fmt: skip
    """T^2 * sum over masked frames of KL(softmax(teacher / T) || softmax(student / T)).

    The T^2 factor (Hinton et al.) keeps the gradient scale independent of the temperature.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    t = temperature
    log_q = (teacher_log_probs / t).log_softmax(-1)
    log_p = (student_logits / t).log_softmax(-1)
    kl = (log_q.exp() * (log_q - log_p)).sum(-1)  # (B, N)
    return (t * t) * kl.masked_fill(~mask, 0.0).sum()


def label_interpolation_sum(logits: torch.Tensor, targets: torch.Tensor,
                            teacher_log_probs: torch.Tensor, teacher_mask: torch.Tensor,
                            weight: float, temperature: float = 1.0) -> torch.Tensor:  # fmt: skip
    """Cross-entropy to ``(1 - weight) * one-hot + weight * teacher`` summed over frames.

    Frames with a target (>= 0) but no teacher keep the plain one-hot target. Written as
    ``(1 - w) CE(one-hot) + w T^2 KL(teacher || student)``, which differs from the cross-entropy to
    the mixed target by the teacher's entropy only (no gradient) when T = 1.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"label interpolation weight must be in [0, 1], got {weight}")
    scored = targets >= 0
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                           targets.reshape(-1), ignore_index=-1,
                                           reduction="none").view(targets.shape)  # fmt: skip
    with_teacher = teacher_mask & scored
    hard = torch.where(with_teacher, (1.0 - weight) * ce, ce).masked_fill(~scored, 0.0).sum()
    soft = kd_kl_sum(logits, teacher_log_probs, with_teacher, temperature)
    return hard + weight * soft
