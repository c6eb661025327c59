"""Stage 8's searches behind one interface.

A :class:`Search` turns one utterance's network scores into its hypothesis text, under the
weights it is tuned over on the dev set: CTC log-probs (T, V) for ``greedy``, ``beam_lm`` and
``tlg``; HMM-state log-likelihoods (T, num_pdfs) of the GMM or of the hybrid network's senone
head for ``hclg``. ``bin/decode_ctc`` and ``bin/decode_hclg`` build one and call
:func:`decode_set`, which tries the weight grid (or reads the chosen weights of an earlier
tuning run) through :func:`~espnet_distill.decode.tuning.tune`. A new decoder is one more
subclass here and one more name in ``config.DECODE_METHODS``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_distill.align.hmm import TransitionModel
from espnet_distill.decode.ctc_beam import CtcPrefixBeamSearch, WordLmScorer
from espnet_distill.decode.tuning import tune, weight_grid
from espnet_distill.graph.hclg import HclgDecoder
from espnet_distill.graph.tlg import TlgDecoder
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.nn import greedy_ctc


class Search(ABC):
    """One decoding method: ``for_weights(*weights)`` (the weights named ``weight_names``) is
    the search of one utterance at that setting; ``settings`` are its fixed options, recorded
    with the chosen weights (best.yaml)."""

    method: str
    weight_names: tuple[str, ...] = ()

    def __init__(self, settings: dict | None = None) -> None:
        self.settings = settings or {}

    @abstractmethod
    def for_weights(self, *weights: float) -> Callable[[np.ndarray], str]:
        """One utterance's scores -> its hypothesis text, at these weights."""


class GreedyCtc(Search):
    """CTC best path: the most likely unit of every frame, repeats and blanks removed."""

    method = "greedy"

    def __init__(self, tokenizer: BpeTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def for_weights(self, *weights: float) -> Callable[[np.ndarray], str]:
        return self._text

    def _text(self, scores: np.ndarray) -> str:
        ids = greedy_ctc(torch.from_numpy(scores)[None], torch.tensor([len(scores)]))[0]
        return self.tokenizer.decode(ids)


class CtcBeamLm(Search):
    """CTC prefix beam search with word n-gram shallow fusion (:mod:`.ctc_beam`)."""

    method = "beam_lm"
    weight_names = ("lm_weight", "word_bonus")

    def __init__(self, tokenizer: BpeTokenizer, lm: Path, beam: int) -> None:
        super().__init__({"beam": beam, "lm": str(lm)})
        self.tokenizer, self.beam = tokenizer, beam
        self.lm = WordLmScorer(str(lm))
        self.pieces = [tokenizer.sp.id_to_piece(i) for i in range(tokenizer.vocab_size)]

    def for_weights(self, *weights: float) -> Callable[[np.ndarray], str]:
        lm_weight, word_bonus = weights
        search = CtcPrefixBeamSearch(  # one search (and its LM state cache) per setting
            self.pieces,
            self.tokenizer.blank_id,
            self.beam,
            lm=self.lm,
            lm_weight=lm_weight,
            word_bonus=word_bonus,
        )
        return lambda scores: self.tokenizer.decode(search(scores))


class Tlg(Search):
    """WFST search (kaldi-decoder) over T o L o G: only lexicon words can be output."""

    method = "tlg"
    weight_names = ("acoustic_scale", "blank_penalty")

    def __init__(self, graph_dir: Path, graph_beam: float, max_active: int) -> None:
        super().__init__(
            {"graph": str(graph_dir), "graph_beam": graph_beam, "max_active": max_active}
        )
        self.wfst = TlgDecoder(graph_dir, graph_beam, max_active)

    def for_weights(self, *weights: float) -> Callable[[np.ndarray], str]:
        return lambda scores: " ".join(self.wfst(scores, *weights))


class Hclg(Search):
    """WFST search over H o C o L o G with HMM-state log-likelihoods; ``model`` names where
    they come from (the GMM-HMM or a hybrid network) in the recorded settings."""

    method = "hclg"
    weight_names = ("acoustic_scale",)

    def __init__(
        self,
        graph_dir: Path,
        transition_model: TransitionModel,
        graph_beam: float,
        max_active: int,
        model: str,
    ) -> None:
        super().__init__(
            {
                "model": model,
                "graph": str(graph_dir),
                "graph_beam": graph_beam,
                "max_active": max_active,
            }
        )
        self.wfst = HclgDecoder(graph_dir, transition_model, graph_beam, max_active)

    def for_weights(self, *weights: float) -> Callable[[np.ndarray], str]:
        return lambda scores: " ".join(self.wfst(scores, *weights))


def decode_all(scores: dict[str, np.ndarray], search: Search, *weights: float) -> dict[str, str]:
    """Hypothesis text per utterance, in utterance-id order, with a progress bar."""
    desc = " ".join(
        [search.method, *(f"{n}={w}" for n, w in zip(search.weight_names, weights, strict=True))]
    )
    text = search.for_weights(*weights)
    return {
        utt: text(s)
        for utt, s in tqdm(sorted(scores.items()), desc=desc, unit="utt", mininterval=2)
    }


def decode_set(
    scores: dict[str, np.ndarray],
    search: Search,
    values: Sequence[Sequence[float]],
    best_from: Path | None,
    tune_ref: Path | None,
    out_dir: Path,
) -> tuple[dict[str, str], dict]:
    """Every combination of ``values`` (one list per weight name), scored on ``tune_ref``, or the
    weights of ``best_from``; returns the chosen hypotheses and settings (see ``tune``)."""
    if not search.weight_names:
        return decode_all(scores, search), {}
    grid = weight_grid(search.weight_names, values, best_from)
    decode = functools.partial(decode_all, scores, search)
    return tune(grid, search.weight_names, decode, tune_ref, out_dir, search.settings)
