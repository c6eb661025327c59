"""k2 as the search backend over the same OpenFst graphs (optional: ``tools/install_k2.sh``).

The graphs stay the ones :mod:`.tlg` and :mod:`.hclg` build with kaldifst; this module reads
``TLG.fst`` / ``HCLG.fst`` into a k2 ``Fsa`` (``k2.Fsa.from_openfst``: OpenFst costs become k2
scores, their negation) and searches it with ``k2.intersect_dense_pruned``, as icefall's HLG
decoding does. What it adds to kaldi-decoder's one-best search is the lattice: whole-lattice
rescoring with a larger word n-gram (icefall's ``rescore_with_whole_lattice``).

k2's intersection consumes a frame on every arc, label 0 included, where OpenFst's label 0 is
epsilon. So epsilons are removed first (``k2.remove_epsilon``: the word labels become ragged) and
dense column ``i`` scores input label ``i``: column 0 is never used, column ``k + 1`` is CTC
token ``k`` (TLG) or transition id ``k + 1``'s pdf (HCLG).

Lattice rescoring replaces the lattice's graph scores by a word G's. In TLG the graph score is
the LM's alone, so the result is the acoustic score plus the new LM (icefall's HLG case); in HCLG
it also holds the HMM transition scores, which rescoring drops with the old LM.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import k2
import kaldifst
import numpy as np
import torch

from espnet_distill.align.hmm import TransitionModel
from espnet_distill.graph.arpa import arpa_to_fst
from espnet_distill.lang.lexicon_fst import read_symbol_table

log = logging.getLogger(__name__)

UNUSED_COLUMN_SCORE = -1e10  # column 0: no arc reads label 0 once epsilons are removed


def fsa_from_openfst(fst: kaldifst.StdVectorFst) -> k2.Fsa:
    """An OpenFst transducer as a k2 Fsa (labels: input, aux_labels: output; scores = -costs)."""
    return k2.Fsa.from_openfst(str(fst), acceptor=False)


def epsilon_free_graph(fst: kaldifst.StdVectorFst) -> k2.Fsa:
    """The decoding graph for ``intersect_dense_pruned``: epsilons removed, arc-sorted, with its
    scores kept as ``graph_scores`` so that a lattice can tell graph from acoustic scores."""
    graph = k2.arc_sort(k2.connect(k2.remove_epsilon(fsa_from_openfst(fst))))
    graph.graph_scores = graph.scores.clone()
    return graph


def word_ids_of_path(path: k2.Fsa) -> list[int]:
    """The word ids along a one-path Fsa (aux_labels plain or ragged; 0 and -1 dropped)."""
    aux = path.aux_labels
    values = aux.values if isinstance(aux, k2.RaggedTensor) else aux
    return [int(i) for i in values.tolist() if i > 0]


def word_acceptor(arpa: Path, words_file: Path) -> k2.Fsa:
    """G of an ARPA LM over ``words.txt``'s ids as a k2 acceptor for rescoring, prepared as
    icefall prepares it: back-off arcs (#0) as label 0, epsilon self-loops added so that the
    lattice's own epsilon arcs pass G unchanged, arc-sorted; its scores kept as ``lm_scores``."""
    word_ids = read_symbol_table(words_file)
    G = arpa_to_fst(arpa, word_ids)
    fsa = fsa_from_openfst(G)
    labels = fsa.labels.clone()
    labels[labels == word_ids["#0"]] = 0
    acceptor = k2.Fsa(fsa.arcs.clone())  # labels only: an acceptor
    acceptor.labels = labels
    acceptor.scores = fsa.scores.clone()
    acceptor = k2.arc_sort(k2.add_epsilon_self_loops(k2.arc_sort(acceptor)))
    acceptor.lm_scores = acceptor.scores.clone()
    return k2.create_fsa_vec([acceptor])  # intersect_device pairs FsaVecs


class K2Decoder:
    """One-best search and lattices of per-label scores over an OpenFst graph with k2.

    ``column_of_label[i]`` is the score column that input label ``i`` reads (index 0 unused);
    None: label ``i`` reads column ``i - 1`` (TLG's tokens).
    The beams are k2's (icefall's defaults): ``search_beam`` prunes while searching,
    ``output_beam`` bounds the lattice kept for rescoring.
    """

    def __init__(
        self,
        graph_file: Path,
        words_file: Path,
        column_of_label: np.ndarray | None = None,
        search_beam: float = 20.0,
        output_beam: float = 8.0,
        min_active_states: int = 30,
        max_active_states: int = 10000,
    ) -> None:
        self.graph = epsilon_free_graph(kaldifst.StdVectorFst.read(str(graph_file)))
        self.id2word = {i: w for w, i in read_symbol_table(words_file).items()}
        self.column_of_label = (
            None if column_of_label is None else torch.as_tensor(column_of_label).long()
        )
        self.beams = (search_beam, output_beam, min_active_states, max_active_states)
        log.info(
            "k2 graph %s: %d states, %d arcs (epsilons removed)",
            graph_file,
            self.graph.shape[0],
            self.graph.num_arcs,
        )

    def lattice(self, scores: np.ndarray) -> k2.Fsa:
        """(T, C) scores (already acoustically scaled) -> the pruned lattice (an FsaVec of one)."""
        frames = torch.as_tensor(np.asarray(scores, dtype=np.float32))
        if self.column_of_label is None:
            dense = torch.nn.functional.pad(frames, (1, 0), value=UNUSED_COLUMN_SCORE)
        else:
            dense = frames[:, self.column_of_label.clamp(min=0)]
            dense[:, 0] = UNUSED_COLUMN_SCORE
        segments = torch.tensor([[0, 0, dense.shape[0]]], dtype=torch.int32)
        dense_fsa = k2.DenseFsaVec(dense.unsqueeze(0), segments)
        return k2.intersect_dense_pruned(self.graph, dense_fsa, *self.beams)

    def one_best(self, lattice: k2.Fsa) -> tuple[list[str], float]:
        """Words of the lattice's best path and that path's graph cost (inf if it is empty)."""
        best = k2.shortest_path(lattice, use_double_scores=True)
        if best.num_arcs == 0:
            return [], math.inf
        graph_cost = -float(best.graph_scores.double().sum())
        return [self.id2word[i] for i in word_ids_of_path(best[0])], graph_cost

    def rescore(self, lattice: k2.Fsa, G: k2.Fsa, lm_scale: float = 1.0) -> list[str]:
        """Whole-lattice rescoring: the lattice's graph scores replaced by ``lm_scale`` times
        those of the word acceptor ``G`` (:func:`word_acceptor`), then its best path."""
        if lattice.num_arcs == 0:
            return []
        acoustic = k2.Fsa(lattice.arcs.clone(), aux_labels=lattice.aux_labels)  # labels in arcs
        acoustic.scores = lattice.scores - lattice.graph_scores
        by_words = k2.arc_sort(k2.invert(acoustic))  # labels: words (0 where none), aux: units
        rescored = k2.intersect_device(
            G, by_words, torch.zeros(1, dtype=torch.int32), sorted_match_a=True
        )
        rescored = k2.top_sort(k2.connect(rescored))
        if rescored.num_arcs == 0:
            return []
        rescored.scores = rescored.scores - rescored.lm_scores * (1.0 - lm_scale)
        best = k2.shortest_path(rescored, use_double_scores=True)
        return [self.id2word[int(i)] for i in best.labels.tolist() if i > 0]


def tlg_decoder(graph_dir: Path, **beams) -> K2Decoder:
    """k2 search over ``graph_dir/TLG.fst`` (CTC log-probs: label ``k + 1`` is token ``k``)."""
    return K2Decoder(graph_dir / "TLG.fst", graph_dir / "words.txt", None, **beams)


def hclg_decoder(graph_dir: Path, tm: TransitionModel, **beams) -> K2Decoder:
    """k2 search over ``graph_dir/HCLG.fst`` (per-pdf scores: transition id ``i`` reads the
    column of its pdf)."""
    return K2Decoder(graph_dir / "HCLG.fst", graph_dir / "words.txt", tm.tid_pdf, **beams)
