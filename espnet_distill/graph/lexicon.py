"""Word -> subword lexicons and Kaldi-style disambiguation symbols.

The lexicon of a BPE lang dir spells every word with its sentencepiece pieces (one canonical
segmentation, as icefall's ``lang_bpe`` does). Before L is composed with G and determinized, every
spelling that is a prefix of another spelling, or shared by several words, gets a ``#n`` symbol at
its end, exactly as Kaldi's ``utils/add_lex_disambig.pl`` does.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import sentencepiece as spm

Lexicon = list[tuple[str, list[str]]]


def read_symbol_table(path: Path) -> dict[str, int]:
    """Kaldi ``symbol id`` table; a clear error naming the file and line on a bad line."""
    table: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise ValueError(f"{path}:{n}: expected 'symbol id', got {line!r}")
        table[fields[0]] = int(fields[1])
    return table


def bpe_lexicon(words: list[str], bpe_model: Path) -> Lexicon:
    """Each word spelled with the BPE model's pieces (its ``encode`` of the word alone)."""
    sp = spm.SentencePieceProcessor(model_file=str(bpe_model))
    return [(w, sp.encode(w, out_type=str)) for w in words]


def add_disambig_symbols(lexicon: Lexicon) -> tuple[Lexicon, int]:
    """Append ``#1``, ``#2``... where needed (see module doc); returns it and the highest n used.

    ``#0`` (n = 0) is reserved for G's back-off arcs, so the count of symbols is ``max_n + 1``.
    """
    count = Counter(tuple(p) for _, p in lexicon)
    prefixes = set()
    for _, pron in lexicon:
        for i in range(1, len(pron)):
            prefixes.add(tuple(pron[:i]))
    last_used: Counter = Counter()
    out: Lexicon = []
    max_n = 0
    for word, pron in lexicon:
        key = tuple(pron)
        if key in prefixes or count[key] > 1 or not pron:
            last_used[key] += 1
            max_n = max(max_n, last_used[key])
            pron = [*pron, f"#{last_used[key]}"]
        out.append((word, list(pron)))
    return out, max_n
