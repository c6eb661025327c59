"""Statistical power of paired comparisons (espnet_distill.score.power), against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from espnet_distill.score.power import detectable_effect, paired_difference_se
from espnet_distill.score.wer import paired_bootstrap


def test_detectable_effect_is_found_with_80_percent_power():
    # the textbook constant: z_0.975 + z_0.8 = 1.95996 + 0.84162
    assert detectable_effect(1.0) == pytest.approx(2.80158, abs=1e-4)
    assert detectable_effect(2.0, alpha=0.01, power=0.9) == pytest.approx(2 * (2.57583 + 1.28155))
    # simulated: estimates of a true effect of that size, with that standard error, are
    # significant (two-sided 0.05) in 80% of draws (binomial sd over 20k draws: 0.003)
    rng = np.random.default_rng(0)
    estimates = rng.normal(detectable_effect(1.5), 1.5, size=20000)
    assert np.mean(np.abs(estimates / 1.5) > 1.959964) == pytest.approx(0.80, abs=0.015)
    with pytest.raises(ValueError, match="alpha and power"):
        detectable_effect(1.0, power=1.0)


def test_paired_difference_se_matches_the_spread_of_simulated_experiments():
    """Experiments of S seeds on a test set of n utterances: each gives a mean difference whose
    spread over many experiments is the truth; the estimate from one experiment (per-seed spread,
    the test set's standard error) is unbiased for its square."""
    rng = np.random.default_rng(1)
    seeds, n, sigma_seed, sigma_utt = 3, 400, 0.8, 6.0
    means, estimated_var = [], []
    for _ in range(4000):
        test_set = rng.normal(1.0, sigma_utt, size=n).mean()  # this test set's difference
        per_seed = test_set + rng.normal(0.0, sigma_seed, size=seeds)
        means.append(per_seed.mean())
        estimated_var.append(paired_difference_se(per_seed, sigma_utt / np.sqrt(n)) ** 2)
    truth = sigma_seed**2 / seeds + sigma_utt**2 / n
    assert np.var(means) == pytest.approx(truth, rel=0.06)  # the simulation itself
    assert np.mean(estimated_var) == pytest.approx(truth, rel=0.06)
    # a broken estimate (seed variance not divided by the seeds, or left out) is far off
    assert sigma_seed**2 + sigma_utt**2 / n > 1.5 * truth and sigma_utt**2 / n < 0.5 * truth
    # one seed: the test set's part alone
    assert paired_difference_se([2.0], 0.5) == 0.5
    with pytest.raises(ValueError, match="no seed"):
        paired_difference_se([], 0.5)


def test_paired_bootstrap_standard_error_is_the_analytic_one():
    # equal reference lengths: delta = 100 * mean(errors difference) / words, whose standard
    # error is 100 * sd(difference) / (words * sqrt(n)); 1000 resamples estimate it to ~2%
    rng = np.random.default_rng(2)
    n, words = 500, 12
    base = rng.poisson(3.0, size=n)
    system = np.maximum(base + rng.integers(-2, 2, size=n), 0)
    out = paired_bootstrap(base, system, np.full(n, words))
    analytic = 100 * np.std(system - base, ddof=1) / (words * np.sqrt(n))
    assert out["delta_se"] == pytest.approx(analytic, rel=0.1)
