"""Figures that training or EM produce, recorded by the tests that assert on them.

BLAS kernels (picked at run time per CPU model), thread counts and seeds move every such figure a
little from machine to machine, so each test asserts with a margin against that spread.
``tests/spread.py`` reruns these tests under a new machine's variations and prints each figure's
range beside its threshold: :func:`figure` appends the figures to ``$ESPNET_DISTILL_FIGURES``
(JSON lines) when it is set; :func:`test_seed` is the seed the spread script varies.
"""

from __future__ import annotations

import json
import os

FIGURES_ENV = "ESPNET_DISTILL_FIGURES"
SEED_ENV = "ESPNET_DISTILL_TEST_SEED"


def test_seed(default: int = 1234) -> int:
    """The seed of the tiny corpora and of the training runs that the fixtures start."""
    return int(os.environ.get(SEED_ENV, default))


test_seed.__test__ = False  # a helper, not a test


def figure(name: str, value: float, threshold: str, broken: str) -> float:
    """Print (``-s``) and record a figure that a test asserts on; returns ``value``.

    ``threshold``: the assertion (e.g. ``"< 0.3"``); ``broken``: what a broken implementation
    gives (e.g. ``"~1.0"``): the spread table shows both beside the measured range.
    """
    print(f"figure {name} = {value:.4g} (asserted {threshold}; broken: {broken})")
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            row = {"name": name, "value": float(value), "threshold": threshold, "broken": broken}
            f.write(json.dumps(row) + "\n")
    return value
