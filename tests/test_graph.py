"""TLG graphs (kaldifst) and their WFST search (kaldi-decoder) against independent references."""

from __future__ import annotations

import math
import re

import kaldifst
import kaldilm
import kenlm
import numpy as np
import pytest

from espnet_distill.graph.arpa import arpa_to_fst, read_arpa
from espnet_distill.graph.tlg import TlgDecoder, compile_tlg
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.lang.lexicon_fst import add_disambig_symbols
from espnet_distill.lm.ngram import train_word_ngram


def test_disambig_symbols_follow_kaldi_add_lex_disambig():
    lexicon = [("A", ["a"]), ("AB", ["a", "b"]), ("B", ["b"]), ("BEE", ["b"]), ("C", ["c"])]
    out, max_n = add_disambig_symbols(lexicon)
    # A is a prefix of AB; B and BEE are homophones (numbered in order); AB and C are unambiguous
    assert out == [
        ("A", ["a", "#1"]),
        ("AB", ["a", "b"]),
        ("B", ["b", "#1"]),
        ("BEE", ["b", "#2"]),
        ("C", ["c"]),
    ]
    assert max_n == 2


@pytest.fixture(scope="module")
def tlg(tiny_features, tmp_path_factory):
    """(graph dir, transcripts, KenLM model) for the tiny corpus' training text."""
    lang = tiny_features / "lang_bpe_64"
    texts = (lang / "transcript_words.txt").read_text().splitlines()
    out = tmp_path_factory.mktemp("graph")
    lm_text = out / "lm.txt"
    lm_text.write_text("\n".join(texts) + "\n")
    binary = train_word_ngram([lm_text], out / "lm", order=3)
    compile_tlg(lang, out / "lm" / "word_3gram.arpa", out / "graph")
    return out / "graph", texts, kenlm.Model(str(binary))


@pytest.fixture(scope="module")
def tlg_decoder(tlg, tiny_features):
    """(the TLG decoder of ``tlg``, the BPE tokenizer its T was built for)."""
    return TlgDecoder(tlg[0]), BpeTokenizer(tiny_features / "lang_bpe_64" / "bpe.model")


def _one_hot_log_probs(ids: list[int], vocab: int, frames_per_token: int = 2) -> np.ndarray:
    """CTC posteriors that are certain of ``ids``: each token for a few frames, then a blank."""
    rows = []
    for i in ids:
        rows += [i] * frames_per_token + [0]
    lp = np.full((len(rows), vocab), -1e4, dtype=np.float32)
    lp[np.arange(len(rows)), rows] = 0.0
    return lp


def test_tlg_decodes_certain_posteriors_to_the_sentence(tlg, tlg_decoder):
    texts, (decoder, tok) = tlg[1], tlg_decoder
    for sentence in texts[:5]:
        lp = _one_hot_log_probs(tok.encode(sentence), tok.vocab_size)
        assert " ".join(decoder(lp)) == sentence


def test_tlg_path_cost_is_the_kenlm_sentence_log_probability(tlg, tlg_decoder):
    _, texts, lm = tlg
    decoder, tok = tlg_decoder
    for sentence in texts[:5]:
        lp = _one_hot_log_probs(tok.encode(sentence), tok.vocab_size)
        words, graph_cost = decoder.decode_with_cost(lp)
        assert " ".join(words) == sentence
        # the acoustic part is 0 (log 1); the graph part is -ln P(sentence </s> | <s>), except
        # that a tropical back-off FST may find a back-off path cheaper than the n-gram's own
        # (Kaldi's G has the same approximation): never dearer, rarely a little cheaper.
        # G itself is checked against KenLM exactly in test_arpa_counts_and_g_scores_match_kenlm.
        expected = -lm.score(sentence, bos=True, eos=True) * math.log(10)
        assert expected - 1e-2 < graph_cost < expected + 1e-3  # float32 weights in OpenFst


def test_tlg_outputs_only_lexicon_words(tlg, tlg_decoder):
    texts, (decoder, tok) = tlg[1], tlg_decoder
    vocab = {w for t in texts for w in t.split()}
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, tok.vocab_size)).astype(np.float32) * 3
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    words = decoder(lp)
    assert words and set(words) <= vocab


def _walk_g(G: kaldifst.StdVectorFst, word_ids: list[int], backoff: int) -> float:
    """Cost of a sentence under G with back-off semantics (take the n-gram arc if there is
    one, else the back-off arc), the way an n-gram LM scores it; ``</s>`` is the final weight."""
    state, cost = G.start, 0.0
    arcs = {
        s: {a.ilabel: (a.nextstate, a.weight.value) for a in kaldifst.ArcIterator(G, s)}
        for s in range(G.num_states)
    }
    for w in [*word_ids, None]:
        while True:
            if w is None and math.isfinite(G.final(state).value):
                return cost + G.final(state).value
            if w is not None and w in arcs[state]:
                state, c = arcs[state][w]
                cost += c
                break
            state, c = arcs[state][backoff]
            cost += c


@pytest.mark.parametrize("lm_order", [3, 4])
def test_arpa_counts_and_g_scores_match_kenlm(tmp_path, lm_order):
    text = ["THE CAT SAT", "THE DOG SAT", "A CAT RAN", "THE CAT RAN AWAY", "A DOG SAT"]
    (tmp_path / "lm.txt").write_text("\n".join(text) + "\n")
    binary = train_word_ngram([tmp_path / "lm.txt"], tmp_path / "lm", order=lm_order)
    arpa = tmp_path / "lm" / f"word_{lm_order}gram.arpa"
    order, ngrams = read_arpa(arpa)
    assert order == lm_order
    # distinct n-grams of the text with sentence boundaries, counted independently
    for n in range(1, lm_order + 1):
        expected = set()
        for t in text:
            words = ["<s>", *t.split(), "</s>"]
            expected |= {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
        if n == 1:
            expected |= {("<unk>",)}
        assert {g for g in ngrams if len(g) == n} == expected
    vocab = sorted({w for t in text for w in t.split()})
    word_ids = {w: i + 1 for i, w in enumerate(["<unk>", *vocab, "#0", "<s>", "</s>"])}
    G = arpa_to_fst(arpa, word_ids)
    lm = kenlm.Model(str(binary))
    (tmp_path / "words.txt").write_text(
        "".join(f"{w} {i}\n" for w, i in [("<eps>", 0), *word_ids.items()])
    )
    # kaldilm's G (Kaldi's arpa2fst, weights printed with 6 digits) as a second reference
    G_kaldilm = kaldifst.compile(
        kaldilm.arpa2fst(
            str(arpa), disambig_symbol="#0", read_symbol_table=str(tmp_path / "words.txt")
        )
    )
    for sentence in [*text, "THE DOG RAN", "A CAT SAT AWAY THE"]:
        ids = [word_ids[w] for w in sentence.split()]
        expected = -lm.score(sentence, bos=True, eos=True)
        ours = _walk_g(G, ids, word_ids["#0"])
        assert ours / math.log(10) == pytest.approx(expected, abs=1e-5)
        assert _walk_g(G_kaldilm, ids, word_ids["#0"]) == pytest.approx(ours, abs=1e-4)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-1.0\tA\n\\end\\\n", "header says 3"),
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<s>\nx.5\tA\n\\end\\\n", ":6: bad number"),
        (
            "\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<s>\n-1.0\tA B C D\n\\end\\\n",
            ":6: a 1-gram line",
        ),
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<s>\n", "no \\end\\"),
    ],
)
def test_malformed_arpa_is_named_with_its_line(tmp_path, bad, message):
    path = tmp_path / "bad.arpa"
    path.write_text(bad)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        read_arpa(path)
    assert str(path) in str(err.value)


def test_wfst_search_backend_errors(tmp_path, monkeypatch):
    """Lattice rescoring without the k2 backend, and the k2 backend where k2 does not import,
    are one-line errors saying what is needed (before any graph is read)."""
    import sys

    from espnet_distill.decode.searches import Tlg

    with pytest.raises(ValueError, match="needs the k2 backend"):
        Tlg(tmp_path, 12.0, 7000, backend="kaldi", rescore_lm=tmp_path / "G.arpa")
    with pytest.raises(ValueError, match="not one of"):
        Tlg(tmp_path, 12.0, 7000, backend="openfst")
    monkeypatch.setitem(sys.modules, "k2", None)  # import k2 raises ImportError
    monkeypatch.delitem(sys.modules, "espnet_distill.graph.k2_backend", raising=False)
    import espnet_distill.graph

    monkeypatch.delattr(espnet_distill.graph, "k2_backend", raising=False)
    with pytest.raises(ValueError, match="install_k2.sh"):
        Tlg(tmp_path, 12.0, 7000, backend="k2")
