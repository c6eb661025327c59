"""TLG decoding graphs for CTC subword models (kaldifst) and their search (kaldi-decoder).

T is the standard CTC topology over the BPE tokens (one state per token, blank at id 0), L spells
every word with its pieces, G is the word n-gram (ARPA -> FST, :mod:`espnet_distill.graph.arpa`). The construction is
icefall/sherpa's for kaldifst: L o G is determinized and minimized, T gets self-loops that emit the
disambiguation symbols L o G still reads, T o LG is determinized.

Labels in the graph: token ``i`` is ``i + 1`` (0 is epsilon in OpenFst, but it is the blank id
in the network), token disambiguation symbol ``#n`` is ``vocab_size + 1 + n``; words keep their
ids of ``<graph_dir>/words.txt``.

Usage (stage 7 of asr.sh)::

    python -m espnet_distill.bin.compile_graph --lang-dir data/lang_bpe_100 \\
        --arpa data/lm/word_3gram.arpa --out-dir data/graph_tlg_3gram
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import kaldi_decoder
import kaldifst
import numpy as np

from espnet_distill.graph.arpa import arpa_to_fst
from espnet_distill.lang.lexicon_fst import (
    add_disambig_symbols,
    bpe_lexicon,
    lexicon_fst_text,
    read_symbol_table,
)
from espnet_distill.utils import atomic_output, atomic_write_text

log = logging.getLogger(__name__)

SPECIAL_WORDS = {"<eps>", "!SIL", "<unk>", "<s>", "</s>", "#0"}


def ctc_topo_text(vocab_size: int) -> str:
    """Standard CTC topology T (text format): blank and repeats emit nothing, a new token emits it."""
    lines = []
    for i in range(vocab_size):
        for k in range(vocab_size):
            olabel = k + 1 if (k != i and k != 0) else 0
            lines.append(f"{i} {k} {k + 1} {olabel}")
        lines.append(f"{i}")
    return "\n".join(lines) + "\n"


def compile_tlg(lang_dir: Path, arpa: Path, out_dir: Path) -> Path:
    """Write ``TLG.fst``, ``words.txt``, ``lexicon.txt``, ``lexicon_disambig.txt``; returns TLG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = read_symbol_table(lang_dir / "tokens.txt")
    vocab_size = max(tokens.values()) + 1
    lang_words = read_symbol_table(lang_dir / "words.txt")
    words = sorted(w for w in lang_words if w not in SPECIAL_WORDS)
    # G's symbol table: the lang dir's words plus what arpa2fst needs.
    word_ids = dict(lang_words)
    for extra in ("#0", "<s>", "</s>"):
        word_ids.setdefault(extra, max(word_ids.values()) + 1)
    atomic_write_text(
        out_dir / "words.txt",
        "".join(f"{w} {i}\n" for w, i in sorted(word_ids.items(), key=lambda x: x[1])),
    )

    lexicon = bpe_lexicon(words, lang_dir / "bpe.model")
    unknown = sorted({p for _, pron in lexicon for p in pron if p not in tokens})
    if unknown:
        raise ValueError(f"{lang_dir / 'bpe.model'}: pieces missing from tokens.txt: {unknown[:5]}")
    atomic_write_text(out_dir / "lexicon.txt", "".join(f"{w} {' '.join(p)}\n" for w, p in lexicon))
    lexicon_disambig, max_disambig = add_disambig_symbols(lexicon)
    atomic_write_text(
        out_dir / "lexicon_disambig.txt",
        "".join(f"{w} {' '.join(p)}\n" for w, p in lexicon_disambig),
    )
    token_labels = {t: i + 1 for t, i in tokens.items()}
    first_disambig = vocab_size + 1
    for n in range(max_disambig + 1):
        token_labels[f"#{n}"] = first_disambig + n
    last_disambig = first_disambig + max_disambig

    L = kaldifst.compile(lexicon_fst_text(lexicon_disambig, token_labels, word_ids))
    # G's back-off arcs read #0: L passes #0 (token side) to #0 (word side) everywhere.
    kaldifst.add_self_loops(L, isyms=[first_disambig], osyms=[word_ids["#0"]])
    G = arpa_to_fst(arpa, word_ids)
    kaldifst.arcsort(L, sort_type="olabel")
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = kaldifst.compose(L, G)
    kaldifst.determinize_star(LG)
    kaldifst.minimize_encoded(LG)
    kaldifst.arcsort(LG, sort_type="ilabel")

    # T passes the disambiguation symbols LG still reads (#n:#n self-loops). T and LG are both
    # deterministic on their input, so T o LG is too and needs no determinization; afterwards the
    # disambiguation symbols become epsilons (Kaldi's fstrmsymbols), keeping back-off arcs as
    # epsilon arcs instead of expanding them.
    T = kaldifst.compile(ctc_topo_text(vocab_size))
    disambig = list(range(first_disambig, last_disambig + 1))
    kaldifst.add_self_loops(T, isyms=disambig, osyms=disambig)
    kaldifst.arcsort(T, sort_type="olabel")
    TLG = kaldifst.compose(T, LG)
    for state in kaldifst.StateIterator(TLG):
        for arc in kaldifst.ArcIterator(TLG, state):
            if arc.ilabel >= first_disambig:
                arc.ilabel = 0
    kaldifst.arcsort(TLG, sort_type="ilabel")
    graph = out_dir / "TLG.fst"
    with atomic_output(graph) as tmp:
        TLG.write(str(tmp))
    n_states = TLG.num_states
    n_arcs = sum(TLG.num_arcs(s) for s in range(n_states))
    log.info(
        "TLG: %d words, %d tokens (+%d disambig), %d states, %d arcs -> %s",
        len(words),
        vocab_size,
        max_disambig + 1,
        n_states,
        n_arcs,
        graph,
    )
    return graph


def scaled_ctc_scores(
    log_probs: np.ndarray, acoustic_scale: float = 1.0, blank_penalty: float = 0.0
) -> np.ndarray:
    """The per-frame token scores a TLG search reads: ``blank_penalty`` subtracted from the
    blank's log-probability (icefall/sherpa's blank penalty: a positive value trades deletions
    for insertions), then everything times ``acoustic_scale`` (float32, C-contiguous)."""
    scaled = np.array(log_probs, dtype=np.float32)
    scaled[:, 0] -= blank_penalty
    return np.ascontiguousarray(scaled * acoustic_scale)


class TlgDecoder:
    """1-best WFST search of CTC log-probs over a TLG graph (kaldi-decoder's FasterDecoder)."""

    def __init__(self, graph_dir: Path, beam: float = 16.0, max_active: int = 7000) -> None:
        self.graph = kaldifst.StdVectorFst.read(str(graph_dir / "TLG.fst"))
        words = read_symbol_table(graph_dir / "words.txt")
        self.id2word = {i: w for w, i in words.items()}
        opts = kaldi_decoder.FasterDecoderOptions(beam=beam, max_active=max_active)
        self.decoder = kaldi_decoder.FasterDecoder(self.graph, opts)

    def __call__(
        self, log_probs: np.ndarray, acoustic_scale: float = 1.0, blank_penalty: float = 0.0
    ) -> list[str]:
        """(T, V) log-probs -> words of the best path (empty if no final state was reached)."""
        return self.decode_with_cost(log_probs, acoustic_scale, blank_penalty)[0]

    def decode_with_cost(
        self, log_probs: np.ndarray, acoustic_scale: float = 1.0, blank_penalty: float = 0.0
    ) -> tuple[list[str], float]:
        """Words of the best path and its graph cost (the negated natural-log LM probability);
        the scales as in :func:`scaled_ctc_scores`."""
        scaled = scaled_ctc_scores(log_probs, acoustic_scale, blank_penalty)
        self.decoder.decode(kaldi_decoder.DecodableCtc(scaled))
        ok, lattice = self.decoder.get_best_path()
        if not ok:
            return [], math.inf
        _, _, olabels, weight = kaldifst.get_linear_symbol_sequence(lattice)
        return [self.id2word[i] for i in olabels if i != 0], float(weight.value1)
