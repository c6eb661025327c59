"""SV metrics (espnet_distill/score/verification.py) against hand-computed trial lists and the
usual VoxCeleb computation (sklearn's ROC + scipy's root of 1 - tpr = fpr)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from espnet_distill.score.verification import (
    bootstrap_eers,
    eer_threshold,
    equal_error_rate,
    error_rates,
    min_dcf,
)

# sorted by score: T T N T N N N
SCORES = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1])
LABELS = np.array([1, 1, 1, 0, 0, 0, 0])


def test_hand_computed_list():
    p_miss, p_fa = error_rates(SCORES, LABELS)
    np.testing.assert_allclose(p_miss, [1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0])
    np.testing.assert_allclose(p_fa, [0, 0, 0, 1 / 4, 1 / 4, 1 / 2, 3 / 4, 1])
    # the curves cross between accepting 3 and 4 trials, where P_fa stays 1/4
    assert equal_error_rate(SCORES, LABELS) == pytest.approx(0.25)
    # p_target 0.01: best is accepting the two top targets, cost (1/3) 0.01, over 0.01
    assert min_dcf(SCORES, LABELS, p_target=0.01) == pytest.approx(1 / 3)
    # p_target 0.5: accepting all three targets and one non-target, (1/4) 0.5, over 0.5
    assert min_dcf(SCORES, LABELS, p_target=0.5) == pytest.approx(0.25)
    # the equal-error point accepts the top four (0.9, 0.8, 0.7, 0.4): midway to the fifth
    assert eer_threshold(SCORES, LABELS) == pytest.approx(0.35)
    accepted = SCORES >= eer_threshold(SCORES, LABELS)
    assert (~accepted[LABELS == 1]).mean() == 0 and accepted[LABELS == 0].mean() == 0.25


def test_separable_tied_and_bad_lists():
    assert equal_error_rate([3, 2, 1, 0], [1, 1, 0, 0]) == 0.0
    assert min_dcf([3, 2, 1, 0], [1, 1, 0, 0]) == 0.0
    # all scores tied: one step from (1, 0) to (0, 1), crossing at 0.5
    assert equal_error_rate([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert min_dcf([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need target and non-target trials, got 2 and 0"):
        equal_error_rate([1, 2], [1, 1])
    with pytest.raises(ValueError, match="p_target must be in"):
        min_dcf(SCORES, LABELS, p_target=1.0)


def test_matches_the_roc_computation_on_random_trials():
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.random(500) < 0.3
        scores = np.round(rng.normal(labels * 1.5, 1.0), 2)  # rounding makes ties
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        p_miss, p_fa = error_rates(scores, labels)
        np.testing.assert_allclose(p_fa, fpr, atol=1e-12)
        np.testing.assert_allclose(p_miss, 1 - tpr, atol=1e-12)
        roc = interp1d(fpr, tpr)
        reference = brentq(lambda x, roc=roc: 1.0 - x - roc(x), 0.0, 1.0)
        assert equal_error_rate(scores, labels) == pytest.approx(reference, abs=1e-9)
        costs = 0.01 * (1 - tpr) + 0.99 * fpr
        assert min_dcf(scores, labels) == pytest.approx(costs.min() / 0.01)


def test_bootstrap_eers_are_paired_stratified_and_spread_like_the_binomial():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(400, bool), np.zeros(1600, bool)]
    good = rng.normal(labels * 2.0, 1.0)
    eers = bootstrap_eers([good, good, good + 1e-9 * rng.random(2000), -good], labels, n_boot=300)
    assert eers.shape == (300, 4)
    np.testing.assert_array_equal(eers[:, 0], eers[:, 1])  # the same resamples for every system
    assert np.abs(eers[:, 0] - eers[:, 2]).max() < 0.01
    # stratified: every resample has both kinds of trial (else equal_error_rate would raise),
    # centred on the full list's EER, with about the binomial spread of an error rate on
    # the ~400 targets and ~1600 non-targets the EER is read from
    eer = equal_error_rate(good, labels)
    assert abs(eers[:, 0].mean() - eer) < 0.01
    binomial = np.sqrt(eer * (1 - eer) * (1 / 400 + 1 / 1600) / 4)
    assert 0.5 * binomial < eers[:, 0].std() < 2 * binomial
    assert (eers[:, 3] > 0.8).all()  # a reversed scorer stays reversed
    assert (bootstrap_eers([[3, 2, 1, 0]], [1, 1, 0, 0], n_boot=50) == 0).all()  # separable
    with pytest.raises(ValueError, match="3 scores for 4 trials"):
        bootstrap_eers([[1, 2, 3]], [1, 0, 1, 0])
