"""Stage 3 phone lang dir: G2P accuracy, HMM topology, and L.fst checked with kaldifst."""

from __future__ import annotations

import math
import random

import kaldifst
import pytest

from espnet_distill.lang.lexicon import (
    ARPABET,
    EspeakG2P,
    build_lexicon,
    ipa_to_arpabet,
    load_cmudict,
    phone_error_rate,
)
from espnet_distill.lang.lexicon_fst import read_symbol_table
from espnet_distill.lang.phone_lang import add_word_positions, prepare_phone_lang
from espnet_distill.lang.topology import make_topology, read_topo

LEXICON = [
    ("A", ["AH"]),
    ("A", ["EY"]),
    ("CAT", ["K", "AE", "T"]),
    ("CATS", ["K", "AE", "T", "S"]),
    ("SAT", ["S", "AE", "T"]),
    ("AT", ["AE", "T"]),
]


@pytest.fixture(scope="module")
def cmu():
    return load_cmudict()


def test_g2p_phone_error_rate_on_held_out_cmudict_words(cmu):
    # CMUdict words espeak-ng spells by its own rules; scored against CMUdict's closest variant
    random.seed(0)
    words = random.sample(sorted(w for w in cmu if w.isalpha()), 500)
    prons, failed = EspeakG2P()(words)
    assert not failed
    per = phone_error_rate([cmu[w] for w in words], [prons[w] for w in words])
    print(f"G2P phone error rate on 500 held-out CMUdict words: {100 * per:.1f}%")
    assert per < 0.15  # measured 9.8% on 2000 words


def test_ipa_mapping_examples_and_unmapped_symbols():
    assert ipa_to_arpabet("tʃ_ˈɜː_tʃ_ɪ_l") == ["CH", "ER", "CH", "IH", "L"]
    assert ipa_to_arpabet("z_ˈæ_k_ɚ_ɹ_i") == ["Z", "AE", "K", "ER", "IY"]  # no linking r
    assert ipa_to_arpabet("b_ˈʌ_ʔ_n̩") == ["B", "AH", "T", "AH", "N"]
    with pytest.raises(KeyError):
        ipa_to_arpabet("k_ʘ_t")


def test_words_the_g2p_cannot_spell_are_left_out_with_a_reason(cmu):
    lexicon, failed = build_lexicon(["CAT", "R2D2", "ZORBLAXITY"], cmu)
    words = {w for w, _ in lexicon}
    assert "CAT" in words and "ZORBLAXITY" in words
    assert "R2D2" not in words and "letters" in failed["R2D2"]


def test_topology_round_trips_and_reads_kaldi_silence_topology(tmp_path):
    topo = make_topology([3, 4, 5], [1, 2], num_states=3, num_sil_states=5)
    path = tmp_path / "topo"
    path.write_text(topo.to_kaldi())
    again = read_topo(path)
    assert again.to_kaldi() == topo.to_kaldi()
    assert again.num_pdf_classes(4) == 3 and again.num_pdf_classes(1) == 5
    # Kaldi's gen_topo.pl silence entry: ergodic first states
    path.write_text(
        "<Topology>\n<TopologyEntry>\n<ForPhones>\n1 2\n</ForPhones>\n"
        "<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 <Transition> 2 0.25 "
        "<Transition> 3 0.25 </State>\n<State> 1 <PdfClass> 1 <Transition> 1 0.5 "
        "<Transition> 4 0.5 </State>\n<State> 2 <PdfClass> 2 <Transition> 2 1.0 </State>\n"
        "<State> 3 <PdfClass> 3 <Transition> 4 1.0 </State>\n<State> 4 </State>\n"
        "</TopologyEntry>\n</Topology>\n"
    )
    kaldi = read_topo(path)
    assert kaldi.num_pdf_classes(2) == 4 and len(kaldi.states(1)[0].transitions) == 4
    with pytest.raises(KeyError, match="phone id 7"):
        kaldi.states(7)


def test_word_position_phones():
    assert add_word_positions(["K", "AE", "T"]) == ["K_B", "AE_I", "T_E"]
    assert add_word_positions(["AH"]) == ["AH_S"]


@pytest.fixture(scope="module")
def lang(tmp_path_factory):
    lang_dir = tmp_path_factory.mktemp("lang_phone")
    prepare_phone_lang(LEXICON, lang_dir, ARPABET, sil_prob=0.5)
    return lang_dir


def _transduce(L: kaldifst.StdVectorFst, phone_ids: list[int]):
    """Best output (words) and cost of ``L`` on a phone sequence; None if L rejects it."""
    acceptor = kaldifst.make_linear_acceptor(phone_ids)
    kaldifst.arcsort(L, sort_type="ilabel")
    composed = kaldifst.compose(acceptor, L)
    if composed.num_states == 0:
        return None
    best = kaldifst.shortest_path(composed, n=1)
    ok, _, words, weight = kaldifst.get_linear_symbol_sequence(best)
    assert ok
    return words, weight.value if hasattr(weight, "value") else float(weight)


def test_lexicon_fst_accepts_every_pronunciation_and_rejects_non_words(lang):
    phones = read_symbol_table(lang / "phones.txt")
    words = read_symbol_table(lang / "words.txt")
    id2word = {i: w for w, i in words.items()}
    L = kaldifst.StdVectorFst.read(str(lang / "L.fst"))
    no_sil = -math.log(0.5)
    for word, pron in LEXICON:
        out = _transduce(L, [phones[p] for p in pron])
        assert out is not None, f"L rejects {word} {pron}"
        assert [id2word[w] for w in out[0]] == [word]
        # no initial silence, no silence after the word: two no-silence choices
        assert out[1] == pytest.approx(2 * no_sil, abs=1e-4)
    # two words with optional silence between them, and a leading silence
    seq = ["SIL", "K", "AE", "T", "SIL", "S", "AE", "T"]
    out = _transduce(L, [phones[p] for p in seq])
    # optional silences (cheaper than the word !SIL): start->sil, CAT->sil, SAT->no silence
    assert [id2word[w] for w in out[0]] == ["CAT", "SAT"]
    assert out[1] == pytest.approx(3 * no_sil, abs=1e-4)
    # phone strings that spell no word sequence
    for bad in (["K", "AE"], ["T", "AE", "K"], ["S", "S"]):
        assert _transduce(L, [phones[p] for p in bad]) is None, bad


def test_lexicon_disambig_marks_prefixes_and_l_disambig_reads_them(lang):
    lex = dict(
        (w, p)
        for w, p in (
            line.split(maxsplit=1)
            for line in (lang / "lexicon_disambig.txt").read_text().splitlines()
        )
    )
    assert lex["CAT"] == "K AE T #1"  # CAT is a prefix of CATS
    phones = read_symbol_table(lang / "phones.txt")
    L = kaldifst.StdVectorFst.read(str(lang / "L_disambig.fst"))
    words = read_symbol_table(lang / "words.txt")
    out = _transduce(L, [phones[p] for p in ["K", "AE", "T", "#1"]])
    assert out is not None and out[0] == [words["CAT"]]
    assert _transduce(L, [phones[p] for p in ["K", "AE", "T"]]) is None  # #1 is required
