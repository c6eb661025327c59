"""HMM transition model, per-utterance training graphs (kaldifst) and Viterbi alignment.

Like Kaldi's TransitionModel, every (phone, HMM state, pdf) tuple the tree allows gets one
*transition id* per outgoing transition of its topology state; transition ids (1-based) are the
input labels of H, so a best path through H o C o L o W names, per frame, the phone, the HMM
state, the pdf and whether the frame is a self-loop. Forced alignment is kaldi-decoder's
FasterDecoder over that graph with the GMM log-likelihoods (Kaldi's ``gmm-align-compiled``:
acoustic scale 0.1, self-loop scale 0.1, beam 10 then a retry beam 100: the first
# flat-start iterations have very peaky GMMs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kaldi_decoder
import kaldifst
import numpy as np

from espnet_distill.align.tree import Tree
from espnet_distill.lang.topology import Topology


class TransitionModel:
    """Transition ids of (phone, state, pdf) tuples, with re-estimated transition probabilities."""

    def __init__(self, topology: Topology, tree: Tree, phones: list[int]) -> None:
        self.topology = topology
        tuples: list[tuple[int, int, int]] = []
        for phone in phones:
            set_idx = tree.set_of[phone]
            for state, hmm_state in enumerate(topology.states(phone)):
                if hmm_state.pdf_class is None:
                    continue
                for pdf in tree.pdfs_of_root((set_idx, hmm_state.pdf_class)):
                    tuples.append((phone, state, pdf))
        self.tuples = tuples
        self.tuple_index = {t: i for i, t in enumerate(tuples)}
        # tid 0 is unused (epsilon); tid -> (tuple index, transition index)
        tid_tuple, tid_trans, self.first_tid = [-1], [-1], []
        for i, (phone, state, _) in enumerate(tuples):
            self.first_tid.append(len(tid_tuple))
            for k in range(len(topology.states(phone)[state].transitions)):
                tid_tuple.append(i)
                tid_trans.append(k)
        self.tid_tuple = np.array(tid_tuple)
        self.tid_trans = np.array(tid_trans)
        n = len(tid_tuple)
        self.tid_pdf = np.array([-1] + [tuples[t][2] for t in tid_tuple[1:]])
        self.tid_phone = np.array([-1] + [tuples[t][0] for t in tid_tuple[1:]])
        self.tid_state = np.array([-1] + [tuples[t][1] for t in tid_tuple[1:]])
        dst = [-1]
        for t, k in zip(tid_tuple[1:], tid_trans[1:], strict=True):
            phone, state, _ = tuples[t]
            dst.append(topology.states(phone)[state].transitions[k][0])
        self.tid_dst = np.array(dst)
        self.tid_self_loop = self.tid_dst == self.tid_state
        self.loop_tid = np.full(len(tuples), -1)  # each tuple's self-loop tid (-1: none)
        for tid in np.nonzero(self.tid_self_loop)[0]:
            self.loop_tid[self.tid_tuple[tid]] = tid
        final = [-1] + [len(topology.states(self.tid_phone[i])) - 1 for i in range(1, n)]
        self.tid_ends_phone = self.tid_dst == np.array(final)
        self.log_probs = np.zeros(n)
        for tid in range(1, n):
            phone, state, _ = tuples[tid_tuple[tid]]
            prob = topology.states(phone)[state].transitions[tid_trans[tid]][1]
            self.log_probs[tid] = math.log(max(prob, 1e-10))

    @property
    def num_tids(self) -> int:
        """Number of transition ids (the largest tid)."""
        return len(self.tid_tuple) - 1

    def tid(self, phone: int, state: int, pdf: int, transition: int) -> int:  # noqa: D102
        return self.first_tid[self.tuple_index[(phone, state, pdf)]] + transition

    def update(self, tid_counts: np.ndarray, floor: float = 0.01) -> None:
        """ML transition probabilities from counts (Kaldi's MleUpdate with a probability floor)."""
        for i in range(len(self.tuples)):
            tids = np.nonzero(self.tid_tuple == i)[0]
            total = tid_counts[tids].sum()
            if total <= 0:
                continue
            probs = np.maximum(tid_counts[tids] / total, floor)
            self.log_probs[tids] = np.log(probs / probs.sum())

    def arc_costs(self, self_loop_scale: float = 0.1) -> np.ndarray:
        """Graph cost of every tid with Kaldi's self-loop scaling (index 0 unused).

        A self-loop costs ``-scale * log p_loop``; any other arc is renormalised without the
        self-loop and pays ``-scale * log(1 - p_loop)`` instead (Kaldi's AddSelfLoops).
        """
        lp = self.log_probs
        loop_tids = np.maximum(self.loop_tid, 0)
        p_loop = np.where(self.loop_tid >= 0, np.exp(lp[loop_tids]), 0.0)  # per tuple
        log_stay = np.log(np.maximum(1.0 - p_loop, 1e-10))[self.tid_tuple[1:]]  # per tid
        costs = np.zeros(len(lp))
        costs[1:] = np.where(
            self.tid_self_loop[1:],
            -self_loop_scale * lp[1:],
            -(lp[1:] - log_stay) - self_loop_scale * log_stay,
        )
        return costs

    def state_dict(self) -> dict[str, np.ndarray]:  # noqa: D102
        return {"log_probs": self.log_probs}


def h_transducer_text(
    tm: TransitionModel, tree: Tree, windows: list[list[int]], self_loop_scale: float = 0.1
) -> str:
    """H for the context windows of one C o L o W: transition ids -> window index (1-based).

    State 0 is start and final; each window's HMM is entered by an epsilon arc that outputs the
    window index, then its emitting states read transition ids until the final state.
    """
    lines, next_state = [], 1
    costs = tm.arc_costs(self_loop_scale)
    for index, window in enumerate(windows):
        if not window or window[tree.central] <= 0:  # epsilon / disambiguation entries
            continue
        phone = window[tree.central]
        states = tm.topology.states(phone)
        ids = {}
        for s, st in enumerate(states):
            if st.pdf_class is not None:
                ids[s] = next_state
                next_state += 1
        lines.append(f"0 {ids[0]} 0 {index}")
        for s, st in enumerate(states):
            if st.pdf_class is None:
                continue
            pdf = tree.pdf(window, st.pdf_class)
            tids = [tm.tid(phone, s, pdf, k) for k in range(len(st.transitions))]
            for (dst, _), tid in zip(st.transitions, tids, strict=True):
                target = 0 if states[dst].pdf_class is None else ids[dst]
                lines.append(f"{ids[s]} {target} {tid} 0 {costs[tid]}")
    lines.append("0")
    return "\n".join(lines) + "\n"


def training_graph(
    L: kaldifst.StdVectorFst,
    word_ids: list[int],
    tm: TransitionModel,
    tree: Tree,
    self_loop_scale: float = 0.1,
) -> kaldifst.StdVectorFst:
    """H o C o L o W for one transcript (Kaldi's compile-train-graphs); L must be olabel-sorted."""
    W = kaldifst.make_linear_acceptor(word_ids)
    LW = kaldifst.compose(L, W)
    if LW.num_states == 0:
        raise ValueError("the lexicon cannot spell the transcript")
    CLW, windows = kaldifst.compose_context([], tree.context_width, tree.central, LW)
    H = kaldifst.compile(h_transducer_text(tm, tree, windows, self_loop_scale))
    kaldifst.arcsort(H, sort_type="olabel")
    graph = kaldifst.compose(H, CLW)
    kaldifst.connect(graph)
    return graph


@dataclass
class Alignment:
    """Per-frame transition ids of one utterance, and the best path's cost."""

    tids: np.ndarray
    cost: float


def align_utterance(
    graph: kaldifst.StdVectorFst,
    loglikes: np.ndarray,
    tm: TransitionModel,
    acoustic_scale: float = 0.1,
    beam: float = 10.0,
    retry_beam: float = 100.0,
) -> Alignment | None:
    """Viterbi alignment of (T, num_pdfs) log-likelihoods; None if no path reaches the end."""
    scores = np.ascontiguousarray(loglikes[:, tm.tid_pdf[1:]] * acoustic_scale, dtype=np.float32)
    for b in (beam, retry_beam):
        opts = kaldi_decoder.FasterDecoderOptions(beam=b, max_active=1 << 30)
        decoder = kaldi_decoder.FasterDecoder(graph, opts)
        decoder.decode(kaldi_decoder.DecodableCtc(scores))
        if not decoder.reached_final():
            continue
        ok, path = decoder.get_best_path()
        if not ok:
            continue
        _, tids, _, weight = kaldifst.get_linear_symbol_sequence(path)
        if len(tids) == len(loglikes):
            return Alignment(np.array(tids), float(weight.value1 + weight.value2))
    return None


def phone_segments(tids: np.ndarray, tm: TransitionModel) -> list[tuple[int, int, int]]:
    """(phone, first frame, end frame) of every phone instance of an alignment."""
    out, start = [], 0
    for t, tid in enumerate(tids):
        if tm.tid_ends_phone[tid]:
            out.append((int(tm.tid_phone[tid]), start, t + 1))
            start = t + 1
    return out
