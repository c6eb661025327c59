"""CTC prefix beam search over subword pieces with word n-gram shallow fusion (KenLM).

Hypotheses are label prefixes with blank/non-blank path scores (Graves 2012, prefix search). A
sentencepiece piece that starts with the word-boundary mark ``▁`` closes the word in progress, which
is then scored by the word LM; the final word and ``</s>`` are scored at the end. The ranking score
is ``log P_ctc + lm_weight * ln P_lm + word_bonus * n_words`` (the usual shallow-fusion form; the
bonus offsets the LM's preference for short outputs).

No lexicon restricts the words: out-of-vocabulary words are scored with the LM's ``<unk>``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

NEG_INF = -math.inf
LN10 = math.log(10.0)
WORD_MARK = "\u2581"  # sentencepiece's word-boundary mark


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@dataclass(slots=True)
class _Hyp:
    p_blank: float
    p_nonblank: float
    lm_score: float  # natural log, words closed so far
    n_words: int
    lm_state: object | None
    partial: str  # the word being spelled

    def total(self) -> float:
        return _logaddexp(self.p_blank, self.p_nonblank)


class WordLmScorer:
    """Natural-log word scores from a KenLM model (ARPA or binary), keeping KenLM states.

    Scores are cached by (state, word): a search closes the same word from the same state once
    for every word-start piece it extends a prefix with, in frame after frame."""

    def __init__(self, path: str, cache_size: int = 200_000) -> None:
        import kenlm

        self._kenlm = kenlm
        self.model = kenlm.Model(path)
        self._cache: dict[tuple[object, str], tuple[float, object]] = {}
        self.cache_size = cache_size

    def start(self) -> object:
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def score(self, state: object, word: str) -> tuple[float, object]:
        key = (state, word)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = self._kenlm.State()
        hit = self.model.BaseScore(state, word, out) * LN10, out
        if len(self._cache) >= self.cache_size:  # bounded: a long decode does not grow it forever
            self._cache.clear()
        self._cache[key] = hit
        return hit


class CtcPrefixBeamSearch:
    """Decode one utterance's (T, V) CTC log-probs into label ids."""

    def __init__(
        self,
        pieces: list[str],
        blank_id: int = 0,
        beam: int = 10,
        prune_threshold: float = 8.0,
        max_candidates: int = 12,
        lm: WordLmScorer | None = None,
        lm_weight: float = 0.5,
        word_bonus: float = 1.0,
    ) -> None:
        self.pieces = pieces
        self.blank_id = blank_id
        self.beam = beam
        self.prune_threshold = prune_threshold
        self.max_candidates = max_candidates
        self.lm = lm
        self.lm_weight = lm_weight
        self.word_bonus = word_bonus
        self._word_start = [p.startswith(WORD_MARK) for p in pieces]
        # what a piece adds to the word being spelled (a word-start piece: the new word's start)
        self._tails = [
            p[len(WORD_MARK) :] if w else p for p, w in zip(pieces, self._word_start, strict=True)
        ]

    def _close_word(self, h: _Hyp) -> tuple[float, int, object | None]:
        if not h.partial:
            return h.lm_score, h.n_words, h.lm_state
        if self.lm is None:
            return h.lm_score, h.n_words + 1, h.lm_state
        s, state = self.lm.score(h.lm_state, h.partial)
        return h.lm_score + s, h.n_words + 1, state

    def __call__(self, log_probs: np.ndarray) -> list[int]:
        """(T, V) natural-log CTC posteriors -> best label sequence (no blanks)."""
        start = self.lm.start() if self.lm is not None else None
        beams: dict[tuple[int, ...], _Hyp] = {(): _Hyp(0.0, NEG_INF, 0.0, 0, start, "")}
        blank_id, word_start, tails = self.blank_id, self._word_start, self._tails
        lm_weight, word_bonus = self.lm_weight, self.word_bonus

        def rank(item: tuple[tuple[int, ...], _Hyp]) -> float:
            h = item[1]
            return (
                _logaddexp(h.p_blank, h.p_nonblank)
                + lm_weight * h.lm_score
                + word_bonus * h.n_words
            )

        for frame in log_probs:
            best = frame.max()
            cands = np.nonzero(frame >= best - self.prune_threshold)[0]
            if len(cands) > self.max_candidates:
                cands = cands[np.argsort(-frame[cands])[: self.max_candidates]]
            scored = list(zip(cands.tolist(), frame[cands].tolist(), strict=True))
            nxt: dict[tuple[int, ...], _Hyp] = {}
            for prefix, h in beams.items():
                total = h.total()
                last = prefix[-1] if prefix else None
                closed = None  # the LM state after the word in progress: one per prefix and frame
                for c, lp in scored:
                    if c == blank_id:
                        stay = nxt.get(prefix)
                        if stay is None:
                            stay = nxt[prefix] = _Hyp(
                                NEG_INF, NEG_INF, h.lm_score, h.n_words, h.lm_state, h.partial
                            )
                        stay.p_blank = _logaddexp(stay.p_blank, total + lp)
                        continue
                    if c == last:
                        # a repeated label without a blank between collapses into the same prefix
                        stay = nxt.get(prefix)
                        if stay is None:
                            stay = nxt[prefix] = _Hyp(
                                NEG_INF, NEG_INF, h.lm_score, h.n_words, h.lm_state, h.partial
                            )
                        stay.p_nonblank = _logaddexp(stay.p_nonblank, h.p_nonblank + lp)
                        ext_score = h.p_blank + lp
                    else:
                        ext_score = total + lp
                    if ext_score == NEG_INF:
                        continue
                    new_prefix = prefix + (c,)
                    ext = nxt.get(new_prefix)
                    if ext is None:
                        if word_start[c]:  # the piece closes the word in progress, starts one
                            if closed is None:
                                closed = self._close_word(h)
                            lm_score, n_words, state = closed
                            ext = _Hyp(NEG_INF, NEG_INF, lm_score, n_words, state, tails[c])
                        else:
                            ext = _Hyp(
                                NEG_INF,
                                NEG_INF,
                                h.lm_score,
                                h.n_words,
                                h.lm_state,
                                h.partial + tails[c],
                            )
                        nxt[new_prefix] = ext
                    ext.p_nonblank = _logaddexp(ext.p_nonblank, ext_score)
            # = sorted(..., reverse=True)[:beam], ties in insertion order (heapq's documented
            # equivalence), without sorting every candidate
            beams = dict(heapq.nlargest(self.beam, nxt.items(), key=rank))
        return list(max(beams.items(), key=lambda kv: self._final_score(kv[1]))[0])

    def _final_score(self, h: _Hyp) -> float:
        lm_score, n_words, state = self._close_word(h)
        if self.lm is not None:
            end, _ = self.lm.score(state, "</s>")
            lm_score += end
        return h.total() + self.lm_weight * lm_score + self.word_bonus * n_words
