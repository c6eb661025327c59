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

Lattice rescoring replaces the old LM in the lattice's scores by a word G's. In TLG the graph
score is the LM's alone, so the lattice keeps its acoustic scores and gains the new LM (icefall's
HLG case). In HCLG the graph score also holds the HMM transition scores and the lexicon's optional
silence: each arc's transition id costs the same on every path (``TransitionModel.arc_costs``;
determinization only moves costs along a path), and L pays log(1 - sil_prob) at the start and
after every word, or log(sil_prob) where a silence follows. Both are put back, so only the old LM
goes, as Kaldi's ``lattice-lmrescore --lm-scale=-1`` with the old G does; exactly at sil_prob 0.5
(the recipe's), where both silence choices cost the same. (k2 has no back-off (phi) matching, so
subtracting the old G itself would take each word sequence's worst back-off route.)

The epsilon-free graph is cached beside the OpenFst one (``<graph>.k2.pt``, as icefall keeps
``HLG.pt``): reading a 4M-arc HCLG through OpenFst's text format takes tens of seconds.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import k2
import kaldifst
import numpy as np
import torch

from espnet_distill.align.hmm import TransitionModel
from espnet_distill.graph.arpa import arpa_to_fst
from espnet_distill.lang.lexicon_fst import read_symbol_table
from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)

UNUSED_COLUMN_SCORE = -1e10  # column 0: no arc reads label 0 once epsilons are removed
# icefall's arc-posterior thresholds for a lattice too large to rescore, continued until any
# lattice fits (at 1e-2 a frame keeps at most about a hundred arcs)
PRUNE_THRESHOLDS = (1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def fsa_from_openfst(fst: kaldifst.StdVectorFst) -> k2.Fsa:
    """An OpenFst transducer as a k2 Fsa (labels: input, aux_labels: output; scores = -costs)."""
    return k2.Fsa.from_openfst(str(fst), acceptor=False)


def epsilon_free_graph(fst: kaldifst.StdVectorFst) -> k2.Fsa:
    """The decoding graph for ``intersect_dense_pruned``: epsilons removed, arc-sorted, with its
    scores kept as ``graph_scores`` so that a lattice can tell graph from acoustic scores."""
    graph = k2.arc_sort(k2.connect(k2.remove_epsilon(fsa_from_openfst(fst))))
    graph.graph_scores = graph.scores.clone()
    return graph


def load_graph(graph_file: Path) -> k2.Fsa:
    """:func:`epsilon_free_graph` of an OpenFst graph file, through its cache ``<graph>.k2.pt``
    (rebuilt when the graph is newer)."""
    cache = graph_file.with_suffix(".k2.pt")
    if cache.is_file() and cache.stat().st_mtime >= graph_file.stat().st_mtime:
        return k2.Fsa.from_dict(torch.load(cache, weights_only=False))
    start = time.perf_counter()
    graph = epsilon_free_graph(kaldifst.StdVectorFst.read(str(graph_file)))
    with atomic_output(cache) as tmp:
        torch.save(graph.as_dict(), tmp)
    log.info("%s -> %s in %.1f s", graph_file, cache, time.perf_counter() - start)
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
    None: label ``i`` reads column ``i - 1`` (TLG's tokens). ``label_graph_scores[i]``: the part
    of the graph score of an arc with input label ``i`` that is not the LM's (HCLG's transition
    scores), kept by rescoring; None: the graph score is all LM (TLG). ``word_graph_score``: the
    non-LM graph score every word (and the start) carries (HCLG's lexicon), kept too.
    The beams are k2's (icefall's defaults): ``search_beam`` prunes while searching,
    ``output_beam`` bounds the lattice kept for rescoring, and ``max_rescore_arcs`` bounds its
    size (:meth:`bounded`).
    """

    def __init__(
        self,
        graph_file: Path,
        words_file: Path,
        column_of_label: np.ndarray | None = None,
        label_graph_scores: np.ndarray | None = None,
        word_graph_score: float = 0.0,
        search_beam: float = 20.0,
        output_beam: float = 8.0,
        min_active_states: int = 30,
        max_active_states: int = 10000,
        max_rescore_arcs: int = 50_000,
    ) -> None:
        self.graph = load_graph(graph_file)
        self.id2word = {i: w for w, i in read_symbol_table(words_file).items()}
        self.column_of_label = (
            None if column_of_label is None else torch.as_tensor(column_of_label).long()
        )
        self.label_graph_scores = (
            None
            if label_graph_scores is None
            else torch.as_tensor(label_graph_scores, dtype=torch.float32).clone()
        )
        if self.label_graph_scores is not None:
            self.label_graph_scores[0] = 0.0
        self.word_graph_score = word_graph_score
        self.beams = (search_beam, output_beam, min_active_states, max_active_states)
        self.max_rescore_arcs = max_rescore_arcs
        self.pruned_lattices = 0  # by :meth:`bounded`
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

    def word_lattice(self, lattice: k2.Fsa) -> k2.Fsa | None:
        """What rescoring intersects with a word G: the lattice with its old LM scores taken out
        (only its acoustic and non-LM graph scores left), words as labels, no units, and pruned
        by arc posterior to at most ``max_rescore_arcs`` arcs; None if it has no arc."""
        if lattice.num_arcs == 0:
            return None
        acoustic = k2.Fsa(lattice.arcs.clone(), aux_labels=lattice.aux_labels)  # labels in arcs
        acoustic.scores = lattice.scores - lattice.graph_scores
        if self.label_graph_scores is not None:  # final arcs read -1: index 0, which is 0
            kept = self.label_graph_scores[lattice.labels.long().clamp(min=0)]
            acoustic.scores = acoustic.scores + kept
        inverted = k2.invert(acoustic)  # labels: words (0 where none; -1: final), aux: units
        by_words = k2.Fsa(inverted.arcs.clone())  # the units are not needed again
        by_words.scores = inverted.scores.clone()
        if self.word_graph_score:  # per word, and once a path on its final arc
            by_words.scores = by_words.scores + self.word_graph_score * (by_words.labels != 0)
        return self.bounded(k2.arc_sort(by_words))

    def bounded(self, lattice: k2.Fsa) -> k2.Fsa:
        """``lattice`` pruned by arc posterior until at most ``max_rescore_arcs`` arcs are left,
        as icefall prunes a lattice whose rescoring ran out of GPU memory. On the CPU there is
        no exception to catch (the kernel kills the process), so the bound is set beforehand:
        the intersection with G holds each arc once per back-off state of its word history,
        and its time grows faster than the lattice (demo TLG, 4-gram, one thread: 180k arcs
        18 s, the same pruned to 37k 0.7 s)."""
        arcs, applied = lattice.num_arcs, None
        for threshold in PRUNE_THRESHOLDS:
            if lattice.num_arcs <= self.max_rescore_arcs:
                break
            lattice, applied = k2.prune_on_arc_post(lattice, threshold, True), threshold
        if applied is not None:
            self.pruned_lattices += 1
            log.info(
                "lattice of %d arcs pruned to %d (arc posterior >= %g) for rescoring",
                arcs,
                lattice.num_arcs,
                applied,
            )
        return lattice

    def rescored_path(
        self, word_lattice: k2.Fsa | None, G: k2.Fsa, lm_scale: float = 1.0
    ) -> k2.Fsa | None:
        """Whole-lattice rescoring of a :meth:`word_lattice`: ``lm_scale`` times the LM scores
        of the word acceptor ``G`` (:func:`word_acceptor`) added; its best path (labels: words),
        None if no path is left."""
        if word_lattice is None:
            return None
        rescored = k2.intersect_device(
            G, word_lattice, torch.zeros(1, dtype=torch.int32), sorted_match_a=True
        )
        rescored = k2.top_sort(k2.connect(rescored))
        if rescored.num_arcs == 0:
            return None
        rescored.scores = rescored.scores - rescored.lm_scores * (1.0 - lm_scale)
        return k2.shortest_path(rescored, use_double_scores=True)

    def rescore(self, word_lattice: k2.Fsa | None, G: k2.Fsa, lm_scale: float = 1.0) -> list[str]:
        """The words of :meth:`rescored_path` (none if no path is left)."""
        best = self.rescored_path(word_lattice, G, lm_scale)
        if best is None:
            return []
        return [self.id2word[int(i)] for i in best.labels.tolist() if i > 0]


def tlg_decoder(graph_dir: Path, **beams) -> K2Decoder:
    """k2 search over ``graph_dir/TLG.fst`` (CTC log-probs: label ``k + 1`` is token ``k``)."""
    return K2Decoder(graph_dir / "TLG.fst", graph_dir / "words.txt", None, **beams)


def lexicon_word_score(lang_dir: Path) -> float:
    """log(1 - sil_prob) of ``lang_dir/L.fst``: what the lexicon adds at the start and after a
    word not followed by optional silence (:func:`~espnet_distill.lang.lexicon_fst
    .lexicon_fst_text`: the start state's arc to the final loop state), with a warning where the
    silence choice costs something else."""
    lexicon = kaldifst.StdVectorFst.read(str(lang_dir / "L.fst"))
    costs = {
        math.isfinite(lexicon.final(arc.nextstate).value): arc.weight.value
        for arc in kaldifst.ArcIterator(lexicon, lexicon.start)
    }
    if set(costs) != {True, False}:
        raise ValueError(f"{lang_dir / 'L.fst'}: no optional silence at its start state")
    if not math.isclose(costs[True], costs[False], abs_tol=1e-5):
        log.warning(
            "%s: optional silence costs %.3f vs %.3f without: rescoring keeps the latter per word",
            lang_dir / "L.fst",
            costs[False],
            costs[True],
        )
    return -float(costs[True])


def hclg_decoder(
    graph_dir: Path, tm: TransitionModel, lang_dir: Path | None = None, **beams
) -> K2Decoder:
    """k2 search over ``graph_dir/HCLG.fst`` (per-pdf scores: transition id ``i`` reads the
    column of its pdf). Rescoring keeps the transition scores and, given the phone ``lang_dir``
    the graph was built from, the lexicon's (:func:`lexicon_word_score`)."""
    word_score = lexicon_word_score(lang_dir) if lang_dir is not None else 0.0
    return K2Decoder(
        graph_dir / "HCLG.fst",
        graph_dir / "words.txt",
        tm.tid_pdf,
        -tm.arc_costs(),
        word_score,
        **beams,
    )
