"""Statistical power of a paired comparison: how large an effect a design can see.

A difference between two systems measured over training seeds on one test set has two sources of
noise: the seeds (each seed's difference, on the same utterances, varies with training) and the
test set (another sample of utterances would give another difference: the paired bootstrap's
spread). The standard error of the mean difference adds both; the smallest true difference that a
two-sided test at level alpha detects with probability ``power`` is then
``(z_{1-alpha/2} + z_power) * se`` (normal approximation; 2.80 se at 0.05 and 80%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def detectable_effect(standard_error: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided level-``alpha`` test of an estimate with this
    standard error detects with probability ``power`` (normal approximation)."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha}, {power}")
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * standard_error


def paired_difference_se(seed_differences: Sequence[float], test_set_se: float) -> float:
    """Standard error of the mean over seeds of a paired difference: the seed-to-seed variance
    of the per-seed differences over the number of seeds, plus the test set's sampling variance
    (``test_set_se``: the paired bootstrap's standard deviation). One seed gives no seed variance:
    the test set's part alone (an underestimate, said where it is reported)."""
    diffs = np.asarray(seed_differences, dtype=np.float64)
    if diffs.size == 0:
        raise ValueError("no seed differences")
    seed_var = float(diffs.var(ddof=1)) / diffs.size if diffs.size > 1 else 0.0
    return math.sqrt(seed_var + test_set_se**2)
