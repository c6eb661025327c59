"""k2, the optional FSA backend (tools/install_k2.sh builds it; make test does not need it):
its CTC loss and its one-best search over a CTC topology against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

k2 = pytest.importorskip("k2", reason="k2 is not installed (tools/install_k2.sh builds it)")


def _dense(log_probs: torch.Tensor):
    """(T, C) log-probs of one utterance as k2's DenseFsaVec."""
    segments = torch.tensor([[0, 0, log_probs.shape[0]]], dtype=torch.int32)
    return k2.DenseFsaVec(log_probs.unsqueeze(0), segments)


def test_k2_ctc_loss_equals_torch():
    torch.manual_seed(0)
    log_probs = torch.randn(20, 6).log_softmax(-1)
    target = [1, 2, 3, 2]
    expected = torch.nn.functional.ctc_loss(
        log_probs.unsqueeze(1), torch.tensor([target]), [20], [4], reduction="sum"
    )
    graph = k2.ctc_graph([target], modified=False)
    loss = k2.ctc_loss(graph, _dense(log_probs), output_beam=1e10, reduction="sum")
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_one_best_over_the_ctc_topology_is_greedy_decoding():
    """With every token sequence allowed (no LM), the best path is the frame-wise argmax with
    repeats merged and blanks dropped."""
    torch.manual_seed(1)
    log_probs = torch.randn(30, 6).log_softmax(-1)
    lattice = k2.intersect_dense_pruned(k2.ctc_topo(5), _dense(log_probs), 20.0, 8.0, 1, 1000)
    best = k2.shortest_path(lattice, use_double_scores=True)
    frames = log_probs.argmax(-1).tolist()
    greedy = [t for i, t in enumerate(frames) if t != 0 and (i == 0 or t != frames[i - 1])]
    assert best.aux_labels[best.aux_labels > 0].tolist() == greedy


# ---------------------------------------------------------------- the k2 graph backend


@pytest.fixture(scope="module")
def tlg_dir(tiny_features, tmp_path_factory):
    """(TLG graph dir, training sentences, BPE tokenizer) of the tiny corpus, 3-gram G."""
    from espnet_distill.graph.tlg import compile_tlg
    from espnet_distill.lang.bpe import BpeTokenizer
    from espnet_distill.lm.ngram import train_word_ngram

    lang = tiny_features / "lang_bpe_64"
    texts = (lang / "transcript_words.txt").read_text().splitlines()
    out = tmp_path_factory.mktemp("k2_tlg")
    (out / "lm.txt").write_text("\n".join(texts) + "\n")
    train_word_ngram([out / "lm.txt"], out / "lm", order=3)
    compile_tlg(lang, out / "lm" / "word_3gram.arpa", out / "graph")
    return out / "graph", texts, BpeTokenizer(lang / "bpe.model")


def _noisy_log_probs(tok, sentence: str, rng, noise: float) -> np.ndarray:
    """CTC log-probs that favour ``sentence`` (2 frames a token, then a blank) under noise."""
    rows = []
    for i in tok.encode(sentence):
        rows += [i, i, 0]
    logits = rng.normal(size=(len(rows), tok.vocab_size)) * noise
    logits[np.arange(len(rows)), rows] += 4.0
    return (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)


def test_k2_tlg_one_best_equals_kaldi_decoders(tlg_dir):
    """The same TLG.fst searched by kaldi-decoder and by k2: same words and graph cost, with
    beams wide enough that both searches are exact on this small graph."""
    from espnet_distill.graph.k2_backend import tlg_decoder
    from espnet_distill.graph.tlg import TlgDecoder

    graph_dir, texts, tok = tlg_dir
    kaldi, ours = TlgDecoder(graph_dir, beam=30.0), tlg_decoder(graph_dir, search_beam=30.0)
    rng = np.random.default_rng(0)
    differing_from_reference = 0
    for sentence in texts[:12]:
        log_probs = _noisy_log_probs(tok, sentence, rng, noise=2.0)
        kaldi_words, kaldi_cost = kaldi.decode_with_cost(log_probs)
        words, graph_cost = ours.one_best(ours.lattice(log_probs))
        assert words == kaldi_words
        assert graph_cost == pytest.approx(kaldi_cost, abs=1e-3)
        differing_from_reference += words != sentence.split()
    # the noise makes some searches leave the reference sentence: the comparison is not only
    # of certain posteriors (noise 2.0 changes the hypothesis of 2-6 of these 12)
    assert differing_from_reference > 0


def test_k2_whole_lattice_rescoring(tlg_dir, tmp_path):
    """Rescoring with the LM the graph was built from returns the one-best path; with an LM of
    one sentence only, the lattice's path of that sentence wins where the lattice holds it."""
    from espnet_distill.graph.k2_backend import tlg_decoder, word_acceptor
    from espnet_distill.lm.ngram import train_word_ngram

    graph_dir, texts, tok = tlg_dir
    decoder = tlg_decoder(graph_dir)
    own_lm = word_acceptor(graph_dir.parent / "lm" / "word_3gram.arpa", graph_dir / "words.txt")
    rng = np.random.default_rng(1)
    for sentence in texts[:6]:
        lattice = decoder.lattice(_noisy_log_probs(tok, sentence, rng, noise=1.0))
        assert decoder.rescore(lattice, own_lm) == decoder.one_best(lattice)[0]
    # an LM of two sentences only: a rescored output is a path its G accepts, so it uses their
    # words alone; on noisy input favouring one of them the rescored path is that sentence
    (tmp_path / "two.txt").write_text("\n".join(texts[:2]) + "\n")
    train_word_ngram([tmp_path / "two.txt"], tmp_path / "lm", order=3)
    two_lm = word_acceptor(tmp_path / "lm" / "word_3gram.arpa", graph_dir / "words.txt")
    two_vocab = set(" ".join(texts[:2]).split())
    for sentence in texts[2:8]:
        lattice = decoder.lattice(_noisy_log_probs(tok, sentence, rng, noise=2.5))
        assert set(decoder.rescore(lattice, two_lm)) <= two_vocab
    for sentence in texts[:2]:
        lattice = decoder.lattice(_noisy_log_probs(tok, sentence, rng, noise=2.5))
        assert decoder.rescore(lattice, two_lm, lm_scale=1.0) == sentence.split()
