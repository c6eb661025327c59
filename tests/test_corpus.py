"""The synthetic corpus: LibriSpeech layout read by lhotse's own recipe, held-out text, speakers."""

from __future__ import annotations

import gzip

import soundfile as sf
from lhotse.recipes import prepare_librispeech

from espnet_distill.data.synth_corpus import (
    FESTIVAL_VOICES,
    SIZES,
    SPLITS,
    make_speakers,
    plan_corpus,
)
from espnet_distill.data.text import load_sentences, normalize_sentence


def test_lhotse_prepare_librispeech_reads_the_corpus(tiny_corpus, tmp_path):
    manifests = prepare_librispeech(tiny_corpus / "LibriSpeech", output_dir=tmp_path)
    cfg = SIZES["tiny"]
    expected = {
        part: n_spk * n_utt
        for part, n_spk, n_utt in zip(
            SPLITS,
            cfg.speakers,
            cfg.utts_per_speaker,
            strict=True,
        )
    }
    assert {p: len(m["supervisions"]) for p, m in manifests.items()} == expected
    for _part, m in manifests.items():
        for rec in m["recordings"]:
            assert rec.sampling_rate == 16000 and rec.num_channels == 1
            assert 0.5 < rec.duration < 35.0
        for sup in m["supervisions"]:
            assert (
                sup.text == sup.text.upper()
                and sup.text.replace("'", "").replace(" ", "").isalpha()
            )
    # durations in the manifest are the files' own
    rec = next(iter(manifests["dev-clean"]["recordings"]))
    info = sf.info(rec.sources[0].source)
    assert abs(info.duration - rec.duration) < 1e-3


def test_splits_are_speaker_disjoint_and_test_text_is_held_out(tiny_corpus, tmp_path):
    manifests = prepare_librispeech(tiny_corpus / "LibriSpeech", output_dir=tmp_path)
    spk = {p: {s.speaker for s in m["supervisions"]} for p, m in manifests.items()}
    for i, part in enumerate(SPLITS):
        for other in SPLITS[i + 1 :]:
            assert not spk[part] & spk[other], (part, other)
    with gzip.open(tiny_corpus / "librispeech-lm-norm.txt.gz", "rt") as f:
        lm_text = f.read()
    lm_sentences = set(lm_text.splitlines())
    train_text = " ".join(s.text for s in manifests["train-clean-100"]["supervisions"])
    for part in ("dev-clean", "test-clean", "test-other"):
        for sup in manifests[part]["supervisions"]:
            # every test utterance is one or two held-out sentences: none is in the LM text
            assert sup.text not in lm_sentences
            assert sup.text not in train_text
    speakers_txt = (tiny_corpus / "LibriSpeech" / "SPEAKERS.TXT").read_text().splitlines()
    assert speakers_txt[0].startswith(";ID")
    assert len(speakers_txt) - 1 == sum(SIZES["tiny"].speakers)
    # test-other is the held-out engine: festival voices only there, and none of them elsewhere
    engine_of = {
        int(row.split("|")[0]): row.split("|")[4].strip().split(":") for row in speakers_txt[1:]
    }
    for part, speakers in spk.items():
        engines = {engine_of[int(s)][0] for s in speakers}
        held_out = engines == {"festival"} if part == "test-other" else "festival" not in engines
        assert held_out, (part, engines)
    assert {engine_of[int(s)][1] for s in spk["test-other"]} == set(FESTIVAL_VOICES)


def test_plan_is_deterministic_and_held_out():
    sentences = load_sentences()
    a = plan_corpus("demo", 7, sentences)
    b = plan_corpus("demo", 7, sentences)
    assert a[0] == b[0]
    assert a[0] != plan_corpus("demo", 8, sentences)[0]
    utts, lm_sentences, _ = a
    held = {u["text"] for u in utts if u["split"] != "train-clean-100"}
    lm = set(lm_sentences)
    for text in held:
        assert text not in lm


def test_demo_corpus_has_at_least_40_distinct_voices():
    n = sum(SIZES["demo"].speakers[:3])  # test-other's festival speakers come after these
    speakers = make_speakers(n, 1234)
    assert n >= 40
    assert len({(s.engine, s.voice, s.variant) for s in speakers}) >= 40
    assert {s.engine for s in speakers} == {"espeak-ng", "flite"}
    # make_speakers is prefix-stable: the tiny corpus' speakers are the demo's first ones
    assert make_speakers(5, 1234) == speakers[:5]


def test_normalize_sentence_like_librispeech():
    assert (
        normalize_sentence("Don't panic -- it's only a test, you know!")
        == "DON'T PANIC IT'S ONLY A TEST YOU KNOW"
    )
    assert (
        normalize_sentence("Call 555-1234 now, please do") is None
    )  # digits are not spoken reliably
    assert normalize_sentence("x = y + 1; print(x)") is None
    assert normalize_sentence("Too short") is None
    # abbreviations are written as the synthesiser speaks them, or the sentence is dropped
    assert normalize_sentence("Mr. Smith met Dr. Who today") == "MISTER SMITH MET DOCTOR WHO TODAY"
    assert normalize_sentence("He lives on Main St. in town") is None
