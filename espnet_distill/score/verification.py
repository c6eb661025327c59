"""Speaker-verification metrics over trial scores: equal error rate, minimum detection cost (NIST
SRE / VoxSRC: p_target 0.01, C_miss = C_fa = 1, normalised as Kaldi's ``compute_min_dcf.py``) and
the operating points of a DET curve (:func:`error_rates`).

Higher scores mean "same speaker". At the threshold just above the i-th highest score, the
accepted trials are the i highest: P_miss = targets not accepted / targets, P_fa = non-targets
accepted / non-targets; both are step functions of the threshold, evaluated at every distinct
score (ties move together).
"""

from __future__ import annotations

import numpy as np


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P_miss, P_fa) at every operating point, from "accept nothing" to "accept all"."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape}: two equal 1-d arrays")
    n_target, n_nontarget = int(labels.sum()), int((~labels).sum())
    if not n_target or not n_nontarget:
        raise ValueError(f"need target and non-target trials, got {n_target} and {n_nontarget}")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # accept a whole group of tied scores at once
    accepted_targets = np.r_[0, np.cumsum(y)[last_of_tie]]
    accepted_nontargets = np.r_[0, np.cumsum(~y)[last_of_tie]]
    return 1 - accepted_targets / n_target, accepted_nontargets / n_nontarget


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER (a fraction): where the P_miss and P_fa step curves cross, linearly interpolated
    between the last operating point with P_miss > P_fa and the first with P_miss <= P_fa; the
    common value itself when an operating point has P_miss == P_fa."""
    p_miss, p_fa = error_rates(scores, labels)
    diff = p_miss - p_fa  # falls from 1 to -1 as more trials are accepted
    i = int(np.flatnonzero(diff <= 0)[0])
    if diff[i] == 0 or i == 0:
        return float(p_fa[i])
    # the segment from point i-1 (diff > 0) to point i (diff <= 0)
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(p_miss[i - 1] + t * (p_miss[i] - p_miss[i - 1]))


def eer_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """A score threshold at the equal-error operating point (accept a trial when its score is >=
    it): midway between the lowest accepted score and the next, at the first operating point
    with P_miss <= P_fa."""
    scores = np.asarray(scores, dtype=np.float64)
    p_miss, p_fa = error_rates(scores, labels)
    i = int(np.flatnonzero(p_miss - p_fa <= 0)[0])  # operating point i accepts i score groups
    levels = np.unique(scores)[::-1]  # the distinct scores, highest first: one group each
    if i == 0:
        return float(levels[0] + 1e-6)
    if i >= len(levels):
        return float(levels[-1])
    return float((levels[i - 1] + levels[i]) / 2)


def min_dcf(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """min over thresholds of C_miss P_miss p_target + C_fa P_fa (1 - p_target), divided by the
    cost of the best trial-independent decision, min(C_miss p_target, C_fa (1 - p_target))."""
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    p_miss, p_fa = error_rates(scores, labels)
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def bootstrap_eers(
    score_sets: list[np.ndarray], labels: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """EERs (fractions) of systems scored on the same trials, over ``n_boot`` resamples of the
    trials, stratified (targets and non-targets resampled apart, so each resample keeps both
    counts) and shared by the systems (paired): an array (n_boot, len(score_sets)). Trials that
    share speakers are not independent: the spread this gives is a lower bound."""
    labels = np.asarray(labels).astype(bool)
    scores = np.stack([np.asarray(s, dtype=np.float64) for s in score_sets])
    if scores.shape[1] != labels.shape[0]:
        raise ValueError(f"{scores.shape[1]} scores for {labels.shape[0]} trials")
    rng = np.random.default_rng(seed)
    target, nontarget = np.flatnonzero(labels), np.flatnonzero(~labels)
    out = np.empty((n_boot, len(score_sets)))
    for b in range(n_boot):
        idx = np.r_[rng.choice(target, len(target)), rng.choice(nontarget, len(nontarget))]
        for k in range(len(score_sets)):
            out[b, k] = equal_error_rate(scores[k, idx], labels[idx])
    return out
