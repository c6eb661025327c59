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
        assert (
            decoder.rescore(decoder.word_lattice(lattice), own_lm) == decoder.one_best(lattice)[0]
        )
    # a lattice over the size bound is pruned by arc posterior to fit, keeping its best path
    # (posterior near 1 here); a bound far below the lattice's frame count (a path has an arc
    # per frame) cannot be met, so the bound here is 70% of its arcs (1e-2 leaves about 80%)
    lattice = decoder.lattice(_noisy_log_probs(tok, texts[0], rng, noise=1.0))
    whole, default_bound = decoder.word_lattice(lattice), decoder.max_rescore_arcs
    decoder.max_rescore_arcs = whole.num_arcs * 7 // 10
    bounded = decoder.word_lattice(lattice)
    assert 0 < bounded.num_arcs <= decoder.max_rescore_arcs and decoder.pruned_lattices == 1
    assert decoder.rescore(bounded, own_lm) == decoder.rescore(whole, own_lm)
    decoder.max_rescore_arcs = default_bound
    # an LM of two sentences only: a rescored output is a path its G accepts, so it uses their
    # words alone; on noisy input favouring one of them the rescored path is that sentence
    (tmp_path / "two.txt").write_text("\n".join(texts[:2]) + "\n")
    train_word_ngram([tmp_path / "two.txt"], tmp_path / "lm", order=3)
    two_lm = word_acceptor(tmp_path / "lm" / "word_3gram.arpa", graph_dir / "words.txt")
    two_vocab = set(" ".join(texts[:2]).split())
    for sentence in texts[2:8]:
        lattice = decoder.lattice(_noisy_log_probs(tok, sentence, rng, noise=2.5))
        assert set(decoder.rescore(decoder.word_lattice(lattice), two_lm)) <= two_vocab
    for sentence in texts[:2]:
        lattice = decoder.lattice(_noisy_log_probs(tok, sentence, rng, noise=2.5))
        assert decoder.rescore(decoder.word_lattice(lattice), two_lm, 1.0) == sentence.split()


def test_k2_hclg_one_best_equals_kaldi_decoders_and_rescoring_keeps_transitions(
    aligned, hclg_graph, tiny_features
):
    """The tiny GMM's log-likelihoods of dev sentences (not in the LM text) over HCLG: k2's
    best path scores what kaldi-decoder's does with the same beam (float32 sums of about -2400:
    measured within 0.01; a wrong score column or a lost graph score moves it by tens), and their
    words are the same but where two paths tie. (Homophones tie: THEIR and THERE share phones and,
    seen once each in the LM text, their probability; which one wins is the decoders' tie-breaking,
    and the GMM's EM differs by machine.) Rescoring with the graph's own
    3-gram returns the one-best path with its score (measured: within 0.005 of about -2400):
    HCLG is deterministic on transition ids, so a lattice path's graph score is its transition
    scores, its lexicon's log(1 - sil_prob) = log 0.5 per word and its LM score, and the score
    comes back only if rescoring keeps the first two (dropping them moves it by 25-60)."""
    from lhotse import CutSet

    from espnet_distill.align.features import load_align_features
    from espnet_distill.align.trainer import GmmSystem, Lang
    from espnet_distill.graph.hclg import HclgDecoder
    from espnet_distill.graph.k2_backend import hclg_decoder, word_acceptor

    exp, lang_dir, _, _ = aligned
    tri = GmmSystem.load(exp / "tri", Lang.load(lang_dir))
    cuts = CutSet.from_file(tiny_features / "fbank" / "cuts_dev-clean.jsonl.gz").to_eager()
    feats = load_align_features(cuts)
    kaldi = HclgDecoder(hclg_graph, tri.tm, beam=20.0)
    # an HCLG lattice is not determinized: every alignment within the output beam stays (0.5-4M
    # arcs a tiny utterance at beam 8), so a narrow one keeps rescoring small here
    ours = hclg_decoder(hclg_graph, tri.tm, lang_dir, search_beam=20.0, output_beam=1.0)
    own_lm = word_acceptor(hclg_graph.parent / "lm" / "word_3gram.arpa", hclg_graph / "words.txt")
    acoustic_scale = 0.1
    scores = {c.id: tri.gmm.loglikes(feats[c.id]) * acoustic_scale for c in cuts}
    different_words = 0
    for s in scores.values():
        best = k2.shortest_path(ours.lattice(s), use_double_scores=True)
        kaldi_words, kaldi_cost = kaldi.best_path(s / acoustic_scale, acoustic_scale)
        assert float(best.scores.double().sum()) == pytest.approx(-kaldi_cost, abs=0.05)
        different_words += ours.one_best(ours.lattice(s))[0] != kaldi_words
    assert different_words <= len(scores) // 4
    shortest = sorted(scores, key=lambda u: len(scores[u]))[:2]
    for utt in shortest:
        lattice = ours.lattice(scores[utt])
        one_best = k2.shortest_path(lattice, use_double_scores=True)
        rescored = ours.rescored_path(ours.word_lattice(lattice), own_lm)
        assert [ours.id2word[int(i)] for i in rescored.labels if i > 0] == ours.one_best(lattice)[0]
        assert float(rescored.scores.sum()) == pytest.approx(float(one_best.scores.sum()), abs=0.05)
    # the cached graph (<graph>.k2.pt) is the one converted from HCLG.fst
    assert (hclg_graph / "HCLG.k2.pt").is_file()
    again = hclg_decoder(hclg_graph, tri.tm, search_beam=20.0)
    assert torch.equal(again.graph.labels, ours.graph.labels)
    assert torch.equal(again.graph.graph_scores, ours.graph.graph_scores)


def test_tlg_search_with_k2_rescoring_tunes_lm_scale_on_cached_lattices(
    tlg_dir, tmp_path, monkeypatch
):
    """Stage 8's search with ``--graph-backend k2 --rescore-lm``: the grid (acoustic scale x
    blank penalty x lm_scale) builds one lattice per utterance and scale setting, whatever the
    number of lm_scales, and every setting's hypotheses are the rescoring of those lattices."""
    from espnet_distill.decode.searches import Tlg, decode_set
    from espnet_distill.graph import k2_backend

    graph_dir, texts, tok = tlg_dir
    lm = graph_dir.parent / "lm" / "word_3gram.arpa"
    rng = np.random.default_rng(2)
    scores = {f"u{i}": _noisy_log_probs(tok, t, rng, noise=2.0) for i, t in enumerate(texts[:4])}
    ref = tmp_path / "text"
    ref.write_text("".join(f"u{i} {t}\n" for i, t in enumerate(texts[:4])))
    search = Tlg(graph_dir, 12.0, 7000, backend="k2", rescore_lm=lm)
    assert search.weight_names == ("acoustic_scale", "blank_penalty", "lm_scale")
    built = []
    lattice = k2_backend.K2Decoder.lattice
    monkeypatch.setattr(
        k2_backend.K2Decoder, "lattice", lambda self, s: built.append(1) or lattice(self, s)
    )
    values = [[0.8, 1.0], [0.0], [0.5, 1.0, 2.0]]
    hyps, chosen = decode_set(scores, search, values, None, ref, tmp_path / "dev")
    assert len(built) == 2 * len(scores)  # two scale settings, three lm_scales each
    assert chosen["backend"] == "k2" and chosen["rescore_lm"] == str(lm)
    decoder = search.k2_decoder
    G = k2_backend.word_acceptor(lm, graph_dir / "words.txt")
    for utt, s in scores.items():
        best = decoder.lattice(search.scaled(s, chosen["acoustic_scale"], chosen["blank_penalty"]))
        assert hyps[utt] == " ".join(
            decoder.rescore(decoder.word_lattice(best), G, chosen["lm_scale"])
        )
