"""How much of a test set the LM text already holds: a WER decoded with an n-gram trained on
text that contains the test sentences is optimistic, and nothing else in a results table says so.

For each set: the share of its sentences that occur verbatim (whitespace-normalised) as a line of
the LM text, and the share of its word n-grams (of the LM's order, with the sentence boundaries)
that the n-gram LM holds, read off KenLM's own lookups (``full_scores``' n-gram lengths).
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from espnet_distill.lm.ngram import read_text_lines
from espnet_distill.utils import atomic_write_text

log = logging.getLogger(__name__)

WARN_SHARE = 0.05  # verbatim test sentences in the LM text worth a warning in the log and table


def read_kaldi_text(path: Path) -> dict[str, str]:
    """utterance id -> transcript of a Kaldi ``text`` file."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        utt, _, text = line.strip().partition(" ")
        if utt:
            out[utt] = " ".join(text.split())
    return out


def lines_among(lm_texts: list[Path], wanted: set[str]) -> set[str]:
    """The sentences of ``wanted`` that are lines of the LM text (one streamed pass)."""
    found = set()
    for line in read_text_lines(lm_texts):
        sentence = " ".join(line.split())
        if sentence in wanted:
            found.add(sentence)
    return found


def ngram_hits(model_file: Path, sentences: list[str], order: int) -> tuple[int, int]:
    """(n-grams of ``order`` the LM holds, n-grams) over ``sentences`` with <s> and </s>: KenLM
    reports the length of the n-gram each word's probability came from."""
    import kenlm

    model = kenlm.Model(str(model_file))
    hits = total = 0
    for sentence in sentences:
        for i, (_, length, _) in enumerate(model.full_scores(sentence, bos=True, eos=True)):
            if i + 2 >= order:  # the word (or </s>) has a full history, <s> included
                total += 1
                hits += length == order
    return hits, total


def lm_text_overlap(
    lm_texts: list[Path], refs: dict[str, Path], model_file: Path | None, order: int, out: Path
) -> dict[str, dict]:
    """The overlap of each set (name -> Kaldi text) with the LM text, added to ``out`` (YAML;
    sets already in it are kept, so stage 8 adds only the sets stage 5 did not see)."""
    known = yaml.safe_load(out.read_text()) if out.is_file() else {}
    known = known or {}
    todo = {name: read_kaldi_text(path) for name, path in refs.items() if name not in known}
    if not todo:
        return known
    found = lines_among(lm_texts, {t for texts in todo.values() for t in texts.values()})
    for name, texts in todo.items():
        verbatim = sum(1 for t in texts.values() if t in found)
        entry = {
            "sentences": len(texts),
            "verbatim": verbatim,
            "verbatim_share": round(verbatim / max(1, len(texts)), 4),
        }
        if model_file is not None:
            hits, total = ngram_hits(model_file, list(texts.values()), order)
            entry.update(
                ngram_order=order, ngrams=total, ngrams_in_lm_share=round(hits / max(1, total), 4)
            )
        entry["lm_text"] = [str(p) for p in lm_texts]
        known[name] = entry
    atomic_write_text(out, yaml.safe_dump(known, sort_keys=True))
    return known
