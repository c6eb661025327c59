"""HCLG decoding graphs for senone (hybrid / GMM) models, built the way Kaldi's mkgraph.sh does.

1. ``LG = L_disambig o G``, determinized (``determinize_star``) and minimized;
2. ``CLG``: kaldifst's ``compose_context`` (triphone context, ``ilabels`` = context windows);
3. ``Ha``: per window, its HMM's *forward* transition ids in order (no self-loops), the window
   on the first arc; disambiguation windows (``#n`` and Kaldi's ``#-1``) become self-loops on the
   hub state with their own labels;
4. ``HCLGa = Ha o CLG``, determinized, disambiguation labels turned into epsilons, minimized;
5. self-loops added with Kaldi's *reordering*: a state's visit is its forward transition id on the
   arc entering it, then that state's self-loops at the destination. States entered by arcs of
   different HMM states are split first, so every state with a self-loop has one entering kind.
   Transition probabilities use Kaldi's scales (transition 1.0, self-loop 0.1).

Input labels of HCLG are transition ids (1-based; see :class:`~espnet_distill.align.hmm.
TransitionModel`): a decodable gives column ``tid - 1`` the score of the tid's pdf.

Usage (stage 7)::

    python -m espnet_distill.bin.compile_graph --kind hclg --lang-dir data/lang_phone \\
        --align-dir exp/align/tri --arpa data/lm/word_3gram.arpa --out-dir data/graph_hclg_3gram
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import kaldi_decoder
import kaldifst
import numpy as np

from espnet_distill.align.hmm import TransitionModel
from espnet_distill.align.tree import Tree
from espnet_distill.graph.arpa import arpa_to_fst
from espnet_distill.lang.lexicon_fst import read_symbol_table
from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)


def ha_text(
    windows: list[list[int]],
    tm: TransitionModel,
    tree: Tree,
    first_disambig: int,
    costs: np.ndarray,
) -> tuple[str, int]:
    """Ha (text) over compose_context's ``windows``; returns it and the number of disambig labels.

    Only left-to-right topologies (one forward transition per state, in order) are supported here.
    """
    lines, next_state, n_disambig = [], 1, 0
    for index, window in enumerate(windows):
        if not window:
            continue
        if len(window) == 1 and window[0] <= 0:  # #n (as -n) or Kaldi's #-1 (as 0)
            label = first_disambig + n_disambig
            n_disambig += 1
            lines.append(f"0 0 {label} {index}")
            continue
        phone = window[tree.central]
        states = tm.topology.states(phone)
        src, olabel = 0, index
        emitting = [s for s, st in enumerate(states) if st.pdf_class is not None]
        for k, s in enumerate(emitting):
            st = states[s]
            forward = [j for j, (dst, _) in enumerate(st.transitions) if dst != s]
            if len(forward) != 1 or st.transitions[forward[0]][0] != s + 1:
                raise ValueError(f"HCLG needs left-to-right HMMs; phone {phone} state {s} is not")
            tid = tm.tid(phone, s, tree.pdf(window, st.pdf_class), forward[0])
            dst = 0 if k == len(emitting) - 1 else next_state
            if dst:
                next_state += 1
            lines.append(f"{src} {dst} {tid} {olabel} {costs[tid]}")
            src, olabel = dst, 0
    lines.append("0")
    return "\n".join(lines) + "\n", n_disambig


def add_self_loops_reordered(
    fst: kaldifst.StdVectorFst, tm: TransitionModel, costs: np.ndarray
) -> kaldifst.StdVectorFst:
    """Split states by the HMM state of their entering arcs, then add self-loops (module doc).

    Works in place (the graph has millions of arcs): one pass reads every arc, numpy finds the
    states entered by several kinds, and only those arcs and states are touched again.
    """
    n = fst.num_states
    src, pos, dst, ilab = [], [], [], []
    for s in range(n):
        for k, arc in enumerate(kaldifst.ArcIterator(fst, s)):
            src.append(s)
            pos.append(k)
            dst.append(arc.nextstate)
            ilab.append(arc.ilabel)
    dst_a = np.array(dst, dtype=np.int64)
    ilab_a = np.array(ilab)
    kind = np.where(ilab_a > 0, tm.tid_tuple[np.maximum(ilab_a, 0)], -1).astype(np.int64)
    # distinct (state, entering kind) pairs; the start state is also entered "from nowhere" (-1)
    pairs = np.unique(np.concatenate([np.stack([dst_a, kind], 1), [[fst.start, -1]]]), axis=0)
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:, 0] != pairs[:-1, 0]
    # the first (smallest) kind of a state keeps its id, every other kind gets a copy
    copy_of: dict[tuple[int, int], int] = {}
    for state, k in pairs[~first]:
        copy_of[(int(state), int(k))] = fst.add_state()
    if copy_of:
        span = int(kind.max()) + 2
        codes = np.array([st * span + k + 1 for st, k in copy_of])
        moved = np.nonzero(np.isin(dst_a * span + kind + 1, codes))[0]
        for i in moved.tolist():
            it = kaldifst.ArcIterator(fst, src[i])
            it.seek(pos[i])
            it.value.nextstate = copy_of[(dst[i], int(kind[i]))]  # the arc itself, in place
        for (state, _), new in copy_of.items():
            for arc in kaldifst.ArcIterator(fst, state):
                fst.add_arc(new, kaldifst.StdArc(arc.ilabel, arc.olabel, arc.weight, arc.nextstate))
            fst.set_final(new, fst.final(state))
    kind_of_state = {int(st): int(k) for st, k in pairs[first]}
    kind_of_state.update({new: k for (_, k), new in copy_of.items()})
    for state, k in kind_of_state.items():
        if k >= 0 and tm.loop_tid[k] >= 0:
            loop = int(tm.loop_tid[k])
            fst.add_arc(state, kaldifst.StdArc(loop, 0, float(costs[loop]), state))
    return fst


def compile_hclg(
    lang_dir: Path,
    tree: Tree,
    tm: TransitionModel,
    arpa: Path,
    out_dir: Path,
    self_loop_scale: float = 0.1,
) -> Path:
    """Write ``<out_dir>/HCLG.fst`` and ``words.txt`` (see module doc); returns HCLG's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    phones = read_symbol_table(lang_dir / "phones.txt")
    words_file = lang_dir / "words.txt"
    (out_dir / "words.txt").write_text(words_file.read_text())
    disambig_phones = [i for p, i in phones.items() if p.startswith("#")]
    L = kaldifst.StdVectorFst.read(str(lang_dir / "L_disambig.fst"))
    kaldifst.arcsort(L, sort_type="olabel")
    G = arpa_to_fst(arpa, read_symbol_table(words_file))
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = kaldifst.compose(L, G)
    kaldifst.determinize_star(LG)
    kaldifst.minimize_encoded(LG)
    kaldifst.arcsort(LG, sort_type="ilabel")
    CLG, windows = kaldifst.compose_context(disambig_phones, tree.context_width, tree.central, LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")

    costs = tm.arc_costs(self_loop_scale)
    first_disambig = tm.num_tids + 1
    text, n_disambig = ha_text(windows, tm, tree, first_disambig, costs)
    Ha = kaldifst.compile(text)
    kaldifst.arcsort(Ha, sort_type="olabel")
    HCLGa = kaldifst.compose(Ha, CLG)
    kaldifst.determinize_star(HCLGa)
    for state in kaldifst.StateIterator(HCLGa):
        for arc in kaldifst.ArcIterator(HCLGa, state):
            if arc.ilabel >= first_disambig:
                arc.ilabel = 0
    kaldifst.minimize_encoded(HCLGa)
    HCLG = add_self_loops_reordered(HCLGa, tm, costs)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    graph = out_dir / "HCLG.fst"
    with atomic_output(graph) as tmp:
        HCLG.write(str(tmp))
    n_arcs = sum(HCLG.num_arcs(s) for s in range(HCLG.num_states))
    log.info(
        "HCLG: LG %d states, CLG %d windows, HCLG %d states, %d arcs -> %s",
        LG.num_states,
        len(windows),
        HCLG.num_states,
        n_arcs,
        graph,
    )
    return graph


class HclgDecoder:
    """1-best WFST search of per-pdf scores over HCLG (kaldi-decoder's FasterDecoder)."""

    def __init__(
        self, graph_dir: Path, tm: TransitionModel, beam: float = 13.0, max_active: int = 7000
    ) -> None:
        self.graph = kaldifst.StdVectorFst.read(str(graph_dir / "HCLG.fst"))
        words = read_symbol_table(graph_dir / "words.txt")
        self.id2word = {i: w for w, i in words.items()}
        self.tm = tm
        opts = kaldi_decoder.FasterDecoderOptions(beam=beam, max_active=max_active)
        self.decoder = kaldi_decoder.FasterDecoder(self.graph, opts)

    def __call__(self, pdf_scores: np.ndarray, acoustic_scale: float = 0.1) -> list[str]:
        """(T, num_pdfs) log-likelihoods (or log posterior - log prior) -> words."""
        return self.best_path(pdf_scores, acoustic_scale)[0]

    def best_path(
        self, pdf_scores: np.ndarray, acoustic_scale: float = 0.1
    ) -> tuple[list[str], float]:
        """The best path's words and its total cost: graph cost minus the scaled log-likelihoods
        (inf if no path survived the beam)."""
        scores = np.ascontiguousarray(
            pdf_scores[:, self.tm.tid_pdf[1:]] * acoustic_scale, dtype=np.float32
        )
        self.decoder.decode(kaldi_decoder.DecodableCtc(scores))
        ok, lattice = self.decoder.get_best_path()
        if not ok:
            return [], math.inf
        _, _, olabels, cost = kaldifst.get_linear_symbol_sequence(lattice)
        return [self.id2word[i] for i in olabels if i != 0], cost.value1 + cost.value2
