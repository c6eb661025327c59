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
from espnet_distill.graph.tlg import TlgDecoder, scaled_ctc_scores
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


GRAPH_BACKENDS = ("kaldi", "k2")
# k2's lattice beam: icefall's 8 where the lattice is rescored; for a one-best only the best path
# matters, and a narrow lattice saves the time and memory of the rest (HCLG: millions of arcs)
RESCORE_OUTPUT_BEAM, ONE_BEST_OUTPUT_BEAM = 8.0, 0.5


def _k2_backend():
    """The k2 backend module, or a one-line error saying how to get k2."""
    try:
        from espnet_distill.graph import k2_backend
    except ImportError as err:
        raise ValueError(
            f"graph backend k2: k2 cannot be imported ({err}); tools/install_k2.sh builds it"
        ) from None
    return k2_backend


class WfstSearch(Search):
    """A search over an OpenFst graph, by kaldi-decoder (one-best) or by k2 (``backend="k2"``:
    one-best from a lattice, or with ``rescore_lm`` the lattice rescored with that word n-gram
    at the extra weight ``lm_scale``; :mod:`espnet_distill.graph.k2_backend`)."""

    scale_names: tuple[str, ...]  # the weights of the scores the search reads

    def __init__(
        self, settings: dict, backend: str, rescore_lm: Path | None, words_file: Path
    ) -> None:
        if backend not in GRAPH_BACKENDS:
            raise ValueError(f"graph backend {backend!r}: not one of {GRAPH_BACKENDS}")
        if rescore_lm is not None and backend != "k2":
            raise ValueError(f"rescoring with {rescore_lm} needs the k2 backend (lattices)")
        super().__init__({**settings, "backend": backend})
        self.weight_names = self.scale_names
        self.k2_decoder, self.rescore_G = None, None
        if rescore_lm is not None:
            self.settings["rescore_lm"] = str(rescore_lm)
            self.weight_names = (*self.scale_names, "lm_scale")
            self.rescore_G = _k2_backend().word_acceptor(rescore_lm, words_file)
        # the word lattices of one scale setting (bounded in size: K2Decoder.word_lattice),
        # reused for every lm_scale (the grid varies it last)
        self._lattices: dict[int, tuple[np.ndarray, object]] = {}
        self._lattices_of: tuple[float, ...] | None = None

    def k2_beams(self, graph_beam: float, max_active: int) -> dict:
        """k2's search options for the searches' beam and max. active states."""
        output_beam = ONE_BEST_OUTPUT_BEAM if self.rescore_G is None else RESCORE_OUTPUT_BEAM
        return {
            "search_beam": graph_beam,
            "output_beam": output_beam,
            "max_active_states": max_active,
        }

    @abstractmethod
    def scaled(self, scores: np.ndarray, *scales: float) -> np.ndarray:
        """The per-label scores the k2 search reads, at these scales."""

    @abstractmethod
    def kaldi_words(self, scores: np.ndarray, *scales: float) -> list[str]:
        """kaldi-decoder's one-best words at these scales."""

    def for_weights(self, *weights: float) -> Callable[[np.ndarray], str]:
        if self.k2_decoder is None:
            return lambda scores: " ".join(self.kaldi_words(scores, *weights))
        scales = weights[: len(self.scale_names)]
        if self.rescore_G is None:
            return lambda scores: " ".join(
                self.k2_decoder.one_best(self.k2_decoder.lattice(self.scaled(scores, *scales)))[0]
            )
        lm_scale = weights[-1]
        if self._lattices_of != scales:
            self._lattices, self._lattices_of = {}, scales

        def rescored(scores: np.ndarray) -> str:
            cached = self._lattices.get(id(scores))
            if cached is None or cached[0] is not scores:
                lattice = self.k2_decoder.lattice(self.scaled(scores, *scales))
                cached = (scores, self.k2_decoder.word_lattice(lattice))
                self._lattices[id(scores)] = cached
            return " ".join(self.k2_decoder.rescore(cached[1], self.rescore_G, lm_scale))

        return rescored


class Tlg(WfstSearch):
    """WFST search over T o L o G: only lexicon words can be output."""

    method = "tlg"
    scale_names = ("acoustic_scale", "blank_penalty")

    def __init__(
        self,
        graph_dir: Path,
        graph_beam: float,
        max_active: int,
        backend: str = "kaldi",
        rescore_lm: Path | None = None,
    ) -> None:
        settings = {"graph": str(graph_dir), "graph_beam": graph_beam, "max_active": max_active}
        super().__init__(settings, backend, rescore_lm, graph_dir / "words.txt")
        if backend == "k2":
            self.k2_decoder = _k2_backend().tlg_decoder(
                graph_dir, **self.k2_beams(graph_beam, max_active)
            )
        else:
            self.wfst = TlgDecoder(graph_dir, graph_beam, max_active)

    def scaled(self, scores: np.ndarray, *scales: float) -> np.ndarray:
        return scaled_ctc_scores(scores, *scales)

    def kaldi_words(self, scores: np.ndarray, *scales: float) -> list[str]:
        return self.wfst(scores, *scales)


class Hclg(WfstSearch):
    """WFST search over H o C o L o G with HMM-state log-likelihoods; ``model`` names where
    they come from (the GMM-HMM or a hybrid network) in the recorded settings. ``lang_dir``: the
    phone lang dir of the graph, whose lexicon scores k2's lattice rescoring keeps."""

    method = "hclg"
    scale_names = ("acoustic_scale",)

    def __init__(
        self,
        graph_dir: Path,
        transition_model: TransitionModel,
        graph_beam: float,
        max_active: int,
        model: str,
        backend: str = "kaldi",
        rescore_lm: Path | None = None,
        lang_dir: Path | None = None,
    ) -> None:
        settings = {
            "model": model,
            "graph": str(graph_dir),
            "graph_beam": graph_beam,
            "max_active": max_active,
        }
        super().__init__(settings, backend, rescore_lm, graph_dir / "words.txt")
        if backend == "k2":
            self.k2_decoder = _k2_backend().hclg_decoder(
                graph_dir,
                transition_model,
                lang_dir,
                **self.k2_beams(graph_beam, max_active),
            )
        else:
            self.wfst = HclgDecoder(graph_dir, transition_model, graph_beam, max_active)

    def scaled(self, scores: np.ndarray, *scales: float) -> np.ndarray:
        (acoustic_scale,) = scales
        return np.asarray(scores, dtype=np.float32) * acoustic_scale

    def kaldi_words(self, scores: np.ndarray, *scales: float) -> list[str]:
        return self.wfst(scores, *scales)


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
