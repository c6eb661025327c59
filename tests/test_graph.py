"""TLG graphs (kaldifst) and their WFST search (kaldi-decoder) against independent references."""

from __future__ import annotations

import math

import kenlm
import numpy as np
import pytest

from espnet_distill.graph.lexicon import add_disambig_symbols
from espnet_distill.graph.tlg import TlgDecoder, compile_tlg
from espnet_distill.lang.bpe import BpeTokenizer
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


def _one_hot_log_probs(ids: list[int], vocab: int, frames_per_token: int = 2) -> np.ndarray:
    """CTC posteriors that are certain of ``ids``: each token for a few frames, then a blank."""
    rows = []
    for i in ids:
        rows += [i] * frames_per_token + [0]
    lp = np.full((len(rows), vocab), -1e4, dtype=np.float32)
    lp[np.arange(len(rows)), rows] = 0.0
    return lp


def test_tlg_decodes_certain_posteriors_to_the_sentence(tlg, tiny_features):
    graph_dir, texts, _ = tlg
    tok = BpeTokenizer(tiny_features / "lang_bpe_64" / "bpe.model")
    decoder = TlgDecoder(graph_dir)
    for sentence in texts[:5]:
        lp = _one_hot_log_probs(tok.encode(sentence), tok.vocab_size)
        assert " ".join(decoder(lp)) == sentence


def test_tlg_path_cost_is_the_kenlm_sentence_log_probability(tlg, tiny_features):
    graph_dir, texts, lm = tlg
    tok = BpeTokenizer(tiny_features / "lang_bpe_64" / "bpe.model")
    decoder = TlgDecoder(graph_dir)
    for sentence in texts[:5]:
        lp = _one_hot_log_probs(tok.encode(sentence), tok.vocab_size)
        words, graph_cost = decoder.decode_with_cost(lp)
        assert " ".join(words) == sentence
        # the acoustic part is 0 (log 1); the graph part is -ln P(sentence </s> | <s>).
        # kaldilm prints G's weights with 6 significant digits: a few 1e-3 nats per sentence.
        expected = -lm.score(sentence, bos=True, eos=True) * math.log(10)
        assert graph_cost == pytest.approx(expected, abs=1e-2)


def test_tlg_outputs_only_lexicon_words(tlg, tiny_features):
    graph_dir, texts, _ = tlg
    tok = BpeTokenizer(tiny_features / "lang_bpe_64" / "bpe.model")
    vocab = {w for t in texts for w in t.split()}
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, tok.vocab_size)).astype(np.float32) * 3
    lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    words = TlgDecoder(graph_dir)(lp)
    assert words and set(words) <= vocab
