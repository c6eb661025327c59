"""Knowledge-distillation losses over frames.

- cross-modal KD (asr1): temperature KL to a unit LM's distribution, and label interpolation (the
  hard target mixed with the LM's distribution);
- HuBERT distillation (ssl1): output-level KD (the same temperature KL, on HuBERT's cluster
  logits), decoupled KD (Zhao et al. 2022) and DistilHuBERT's layer-wise L1 - log sigmoid(cos).

The distribution losses work on per-frame logits (B, N, V), per-frame teacher log-probabilities or
logits (B, N, V) and a mask (B, N) of the frames that have a teacher (for cross-modal KD: speech
frames of the alignment, not silence or padding). They return a sum over frames; the caller
divides (for asr1 by batch size x upsampling, the scale of
:meth:`~espnet_distill.models.acoustic_model.FrameClassifier.loss`).
"""

from __future__ import annotations

import torch


def kd_kl_sum(
    student_logits: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
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


def label_interpolation_sum(
    logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    teacher_mask: torch.Tensor,
    weight: float,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy to ``(1 - weight) * one-hot + weight * teacher`` summed over frames.

    Frames with a target (>= 0) but no teacher keep the plain one-hot target. Written as
    ``(1 - w) CE(one-hot) + w T^2 KL(teacher || student)``, which differs from the cross-entropy to
    the mixed target by the teacher's entropy only (no gradient) when T = 1.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"label interpolation weight must be in [0, 1], got {weight}")
    scored = targets >= 0
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1, reduction="none"
    ).view(targets.shape)
    with_teacher = teacher_mask & scored
    hard = torch.where(with_teacher, (1.0 - weight) * ce, ce).masked_fill(~scored, 0.0).sum()
    soft = kd_kl_sum(logits, teacher_log_probs, with_teacher, temperature)
    return hard + weight * soft


def dkd_sum(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Decoupled KD (Zhao et al., CVPR 2022) summed over masked frames:
    ``alpha * TCKD + beta * NCKD``, each times T^2.

    TCKD: KL between the binary distributions (p_target, 1 - p_target) of teacher and student;
    NCKD: KL between their distributions renormalised over the non-target classes. ``target``
    (B, N) is the class each frame counts as "target" (for HuBERT: the teacher's top cluster).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    t = temperature
    one_hot = torch.nn.functional.one_hot(target.clamp(min=0), student_logits.size(-1)).bool()
    log_ps, log_pt = (student_logits / t).log_softmax(-1), (teacher_logits / t).log_softmax(-1)
    # binary (target, rest) log-probabilities; log(1 - p) via logsumexp over the other classes
    neg_inf = torch.finfo(log_ps.dtype).min

    def binary(log_p: torch.Tensor) -> torch.Tensor:
        tgt = log_p.masked_fill(~one_hot, neg_inf).logsumexp(-1)
        rest = log_p.masked_fill(one_hot, neg_inf).logsumexp(-1)
        return torch.stack([tgt, rest], dim=-1)

    bs, bt = binary(log_ps), binary(log_pt)
    tckd = (bt.exp() * (bt - bs)).sum(-1)
    ns = (student_logits / t).masked_fill(one_hot, neg_inf).log_softmax(-1)
    nt = (teacher_logits / t).masked_fill(one_hot, neg_inf).log_softmax(-1)
    nckd = (nt.exp() * (nt - ns)).masked_fill(one_hot, 0.0).sum(-1)
    per_frame = (alpha * tckd + beta * nckd) * (t * t)
    return per_frame.masked_fill(~mask, 0.0).sum()


def layer_distillation_loss(
    predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, cos_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """DistilHuBERT's loss of one prediction head (Chang et al. 2022), averaged over the masked
    frames: L1 (mean over dimensions) - ``cos_weight`` * log sigmoid(cosine similarity).

    Returns (loss, cosine similarity averaged over the frames) for logging.
    """
    m = mask.to(predicted.dtype)
    n = m.sum().clamp(min=1.0)
    l1 = (predicted - target).abs().mean(-1)
    cos = torch.nn.functional.cosine_similarity(predicted, target, dim=-1)
    loss = ((l1 - cos_weight * torch.nn.functional.logsigmoid(cos)) * m).sum() / n
    return loss, ((cos * m).sum() / n).detach()
