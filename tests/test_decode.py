"""CTC prefix beam search against brute-force enumeration; word n-gram fusion; KenLM training."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from espnet_distill.decode.ctc_beam import CtcPrefixBeamSearch, WordLmScorer
from espnet_distill.lm.ngram import train_word_ngram


def _brute_force(log_probs: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """P(label sequence) summed over every CTC alignment, by enumerating all V^T paths."""
    T, V = log_probs.shape
    probs: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels = tuple(k for k, _ in itertools.groupby(path) if k != blank)
        p = math.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
        probs[labels] = probs.get(labels, 0.0) + p
    return probs


@pytest.mark.parametrize("seed", range(6))
def test_prefix_beam_search_without_lm_finds_the_most_probable_labelling(seed):
    rng = np.random.default_rng(seed)
    T, V = 6, 3
    logits = rng.normal(size=(T, V)) * 2
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    probs = _brute_force(log_probs)
    best = max(probs, key=probs.get)
    pieces = ["<blk>", "\u2581a", "b"]
    decoder = CtcPrefixBeamSearch(
        pieces, beam=64, prune_threshold=1e9, max_candidates=V, lm=None, word_bonus=0.0
    )
    assert tuple(decoder(log_probs)) == best


@pytest.fixture(scope="module")
def toy_lm(tmp_path_factory):
    """ARPA by hand: unigrams P(CAT) = 0.7, P(HAT) = 0.1, P(</s>) = 0.1, P(<unk>) = 0.1, all
    back-off weights 1; one bigram (KenLM needs order >= 2) that the tests never reach."""
    d = tmp_path_factory.mktemp("lm")
    arpa = d / "toy.arpa"
    entries = {"<unk>": 0.1, "<s>": None, "</s>": 0.1, "CAT": 0.7, "HAT": 0.1}
    lines = ["\\data\\", f"ngram 1={len(entries)}", "ngram 2=1", "", "\\1-grams:"]
    for w, p in entries.items():
        lines.append(f"{-99 if p is None else math.log10(p):.6f}\t{w}\t0")
    lines += ["", "\\2-grams:", f"{math.log10(0.5):.6f}\tHAT </s>", "", "\\end\\", ""]
    arpa.write_text("\n".join(lines))
    return str(arpa)


def test_word_lm_scorer_returns_natural_log_probabilities(toy_lm):
    lm = WordLmScorer(toy_lm)
    s, state = lm.score(lm.start(), "CAT")
    assert s == pytest.approx(math.log(0.7), abs=1e-4)
    assert lm.score(state, "HAT")[0] == pytest.approx(math.log(0.1), abs=1e-4)


def test_lm_fusion_resolves_an_acoustically_ambiguous_word(toy_lm):
    # pieces: blank, "▁C", "▁H", "AT". Acoustics slightly prefer "▁h at" (HAT) over "▁c at" (CAT).
    pieces = ["<blk>", "\u2581C", "\u2581H", "AT"]
    frames = np.full((4, 4), 1e-3)
    frames[0, [1, 2]] = [0.45, 0.55]
    frames[1, 0] = 1.0
    frames[2, 3] = 1.0
    frames[3, 0] = 1.0
    log_probs = np.log(frames / frames.sum(1, keepdims=True))
    no_lm = CtcPrefixBeamSearch(pieces, beam=8, lm=None, word_bonus=0.0)
    assert no_lm(log_probs) == [2, 3]  # HAT
    with_lm = CtcPrefixBeamSearch(
        pieces, beam=8, lm=WordLmScorer(toy_lm), lm_weight=1.0, word_bonus=0.0
    )
    assert with_lm(log_probs) == [1, 3]  # CAT: ln(0.7/0.1) outweighs ln(0.55/0.45)


def test_kenlm_word_ngram_trained_by_lmplz(tmp_path):
    text = tmp_path / "lm.txt"
    text.write_text("THE CAT SAT\nTHE CAT RAN\nTHE DOG SAT\n" * 20)
    binary = train_word_ngram([text], tmp_path / "lm", order=2)
    import kenlm

    model = kenlm.Model(str(binary))
    # after THE, CAT (2/3) is more likely than DOG (1/3); an unseen order scores lower
    assert model.score("THE CAT SAT") > model.score("THE DOG SAT") > model.score("SAT THE DOG")
    assert (tmp_path / "lm" / "word_2gram.arpa").read_text().startswith("\\data\\")


SEARCH_BEFORE_SPEED_UP = "e5fa30d"  # the commit whose prefix search the faster one must equal


def test_faster_prefix_search_gives_the_hypotheses_of_the_one_before(toy_lm, tmp_path):
    """The search with its LM cache, per-prefix word closing and heap pruning against the
    implementation of :data:`SEARCH_BEFORE_SPEED_UP` (read from git) on peaky random outputs
    with word fusion: the same label sequences, utterance for utterance (a beam of 2 instead of 6
    already differs on some)."""
    from espnet_distill.utils import module_at_commit

    try:
        before = module_at_commit(
            "espnet_distill/decode/ctc_beam.py", SEARCH_BEFORE_SPEED_UP, tmp_path
        )
    except LookupError as err:
        pytest.skip(str(err))
    pieces = ["<blk>", "\u2581C", "\u2581H", "A", "T", "\u2581CAT", "\u2581X", "S"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = rng.normal(size=(60, len(pieces)))
        logits[np.arange(60), rng.integers(0, len(pieces), 60)] += 4  # peaky, as CTC is
        log_probs = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
        now = CtcPrefixBeamSearch(pieces, beam=6, lm=WordLmScorer(toy_lm), lm_weight=0.8)
        then = before.CtcPrefixBeamSearch(
            pieces, beam=6, lm=before.WordLmScorer(toy_lm), lm_weight=0.8
        )
        assert now(log_probs) == then(log_probs)
