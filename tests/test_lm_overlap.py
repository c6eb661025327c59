"""The overlap of a test set with the LM text: verbatim sentences counted per utterance, and the
share of its word trigrams the n-gram LM holds against the trigrams of the text it was trained on
(an unpruned KenLM model holds exactly those)."""

from __future__ import annotations

import yaml

from espnet_distill.lm.ngram import train_word_ngram
from espnet_distill.score.results import overlap_note

from .cli import run_step

LM_TEXT = [
    "THE CAT SAT ON THE MAT",
    "A DOG RAN IN THE PARK",
    "THE CAT RAN HOME",
    "SHE SAW THE DOG",
    "THE MAT WAS RED",
]
REFS = {
    "u1": "THE CAT SAT ON THE MAT",
    "u2": "THE CAT SAT ON THE MAT",
    "u3": "A DOG SAT HOME",
    "u4": "SHE  SAW THE DOG",
    "u5": "NOTHING LIKE IT",
}


def _trigrams(sentence: str) -> list[tuple[str, ...]]:
    words = ["<s>", *sentence.split(), "</s>"]
    return [tuple(words[i : i + 3]) for i in range(len(words) - 2)]


def test_overlap_counts_verbatim_sentences_and_trigrams_the_lm_holds(tmp_path):
    text = tmp_path / "lm.txt"
    text.write_text("".join(f"{s}\n" for s in LM_TEXT))
    model = train_word_ngram([text], tmp_path / "lm", order=3)
    ref = tmp_path / "text"
    ref.write_text("".join(f"{u} {t}\n" for u, t in REFS.items()))
    out = tmp_path / "overlap.yaml"
    r = run_step("lm_overlap", lm_text=text, model=model, order=3, ref=f"test={ref}", out_file=out)
    assert r.returncode == 0, r.stderr
    o = yaml.safe_load(out.read_text())["test"]
    # u1, u2 and u4 (whitespace aside) are lines of the LM text; u3 and u5 are not
    assert (o["sentences"], o["verbatim"], o["verbatim_share"]) == (5, 3, 0.6)
    seen = {g for s in LM_TEXT for g in _trigrams(s)}
    ref_grams = [g for t in REFS.values() for g in _trigrams(t)]
    assert o["ngrams"] == len(ref_grams)
    assert o["ngrams_in_lm_share"] == round(sum(g in seen for g in ref_grams) / len(ref_grams), 4)
    assert 0 < o["ngrams_in_lm_share"] < 1
    assert "WARNING" in r.stderr and "WERs with this LM are optimistic on test" in r.stderr
    note = overlap_note(o)
    assert note.startswith("LM text overlap: 3 of 5 sentences (60.0%) occur verbatim")
    assert "are optimistic on this set" in note
    # a second call keeps what it measured and adds only new sets
    text.write_text("")
    r = run_step("lm_overlap", lm_text=text, ref=[f"test={ref}", f"other={ref}"], out_file=out)
    both = yaml.safe_load(out.read_text())
    assert both["test"] == o and both["other"]["verbatim"] == 0 and "ngrams" not in both["other"]
