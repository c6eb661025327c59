"""Word -> subword lexicons and Kaldi-style disambiguation symbols.

The lexicon of a BPE lang dir spells every word with its sentencepiece pieces (one canonical
segmentation, as icefall's ``lang_bpe`` does). Before L is composed with G and determinized, every
spelling that is a prefix of another spelling, or shared by several words, gets a ``#n`` symbol at
its end, exactly as Kaldi's ``utils/add_lex_disambig.pl`` does.
"""

from __future__ import annotations

import math
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


def lexicon_fst_text(
    lexicon: Lexicon,
    token_ids: dict[str, int],
    word_ids: dict[str, int],
    sil_label: int | None = None,
    sil_prob: float = 0.5,
    sil_disambig: int | None = None,
) -> str:
    """L in OpenFst text format, built like Kaldi's ``utils/lang/make_lexicon_fst.py``.

    Without ``sil_label`` (CTC/BPE lexicons): state 0 is start, loop and final, one path of tokens
    per spelling. With it (phone lexicons): optional silence between words and at the start, taken
    with probability ``sil_prob``; ``sil_disambig`` (a ``#n`` label) follows that silence in
    L_disambig so that L o G stays determinizable. The word label is on a spelling's first arc.
    """
    lines: list[str] = []
    if sil_label is None:
        next_state = 1
        for word, pron in lexicon:
            src = 0
            for j, token in enumerate(pron):
                dst = 0 if j == len(pron) - 1 else next_state
                if dst:
                    next_state += 1
                lines.append(f"{src} {dst} {token_ids[token]} {word_ids[word] if j == 0 else 0}")
                src = dst
        lines.append("0")
        return "\n".join(lines) + "\n"

    if not 0.0 < sil_prob < 1.0:
        raise ValueError(f"sil_prob must be in (0, 1), got {sil_prob}")
    sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    start, loop, sil_state, next_state = 0, 1, 2, 3
    lines.append(f"{start} {loop} 0 0 {no_sil_cost}")
    lines.append(f"{start} {sil_state} 0 0 {sil_cost}")
    if sil_disambig is None:
        lines.append(f"{sil_state} {loop} {sil_label} 0")
    else:
        lines.append(f"{sil_state} {next_state} {sil_label} 0")
        lines.append(f"{next_state} {loop} {sil_disambig} 0")
        next_state += 1
    for word, pron in lexicon:
        if not pron:
            raise ValueError(f"lexicon: word {word!r} has an empty pronunciation")
        src = loop
        for j, token in enumerate(pron[:-1]):
            lines.append(f"{src} {next_state} {token_ids[token]} {word_ids[word] if j == 0 else 0}")
            src, next_state = next_state, next_state + 1
        olabel = word_ids[word] if len(pron) == 1 else 0
        last = token_ids[pron[-1]]
        lines.append(f"{src} {loop} {last} {olabel} {no_sil_cost}")
        lines.append(f"{src} {sil_state} {last} {olabel} {sil_cost}")
    lines.append(f"{loop}")
    return "\n".join(lines) + "\n"
