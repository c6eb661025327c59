"""Kaldi-style phone lang dir (stage 3): what the GMM-HMM aligner and HCLG graphs read.

``data/lang_phone/``:

- ``phones.txt``: ``<eps>``, silence phones (``SIL`` optional silence, ``SPN`` spoken noise /
  unknown word), the ARPAbet phones (with ``_B _I _E _S`` word-position variants when
  ``position_dependent``), then the disambiguation symbols ``#0 #1 ...``
- ``words.txt``: ``<eps>``, ``!SIL``, ``<unk>``, the words, then ``#0 <s> </s>`` (for G)
- ``lexicon.txt`` / ``lexicon_disambig.txt``, ``g2p_failed.txt`` (words left out and why)
- ``topo`` (Kaldi format), ``phones/{silence,nonsilence,optional_silence,disambig,sets}.txt``
  (``sets.txt``: one line per base phone with its position variants, the tree's roots)
- ``L.fst`` (optional silence with ``sil_prob``) and ``L_disambig.fst`` (kaldifst, arc-sorted)
"""

from __future__ import annotations

import logging
from pathlib import Path

import kaldifst

from espnet_distill.lang.lexicon_fst import add_disambig_symbols, lexicon_fst_text
from espnet_distill.lang.topology import make_topology
from espnet_distill.utils import atomic_output, atomic_write_text

log = logging.getLogger(__name__)

SIL, SPN = "SIL", "SPN"
SIL_WORD, UNK_WORD = "!SIL", "<unk>"
POSITIONS = ("_B", "_I", "_E", "_S")


def base_phone(phone: str) -> str:
    """``AA_B`` -> ``AA`` (position suffix removed); other phones unchanged."""
    return phone[:-2] if phone[-2:] in POSITIONS else phone


def base_pronunciations(lexicon: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
    """The lexicon with position-free phones (:func:`base_phone`), pronunciations in order."""
    return {w: [[base_phone(p) for p in pron] for pron in ps] for w, ps in lexicon.items()}


def add_word_positions(pron: list[str]) -> list[str]:
    """Kaldi's word-position-dependent phones: begin, internal, end, singleton."""
    if len(pron) == 1:
        return [pron[0] + "_S"]
    return [pron[0] + "_B", *(p + "_I" for p in pron[1:-1]), pron[-1] + "_E"]


def _write_table(path: Path, symbols: list[str]) -> None:
    atomic_write_text(path, "".join(f"{s} {i}\n" for i, s in enumerate(symbols)))


def _write_fst(fst: kaldifst.StdVectorFst, path: Path) -> None:
    with atomic_output(path) as tmp:
        fst.write(str(tmp))


def prepare_phone_lang(
    lexicon: list[tuple[str, list[str]]],
    lang_dir: Path,
    base_phones: list[str],
    sil_prob: float = 0.5,
    position_dependent: bool = False,
    num_states: int = 3,
    num_sil_states: int = 3,
    failed: dict[str, str] | None = None,
) -> None:
    """Write the lang dir (see module doc) for ``lexicon`` over ``base_phones``."""
    (lang_dir / "phones").mkdir(parents=True, exist_ok=True)
    unknown = sorted({p for _, pron in lexicon for p in pron} - set(base_phones))
    if unknown:
        raise ValueError(f"lexicon uses phones outside the phone set: {unknown[:10]}")
    words = [(w, add_word_positions(p) if position_dependent else p) for w, p in lexicon]
    full_lexicon = [(SIL_WORD, [SIL]), (UNK_WORD, [SPN]), *words]
    lexicon_disambig, max_disambig = add_disambig_symbols(full_lexicon)
    sil_disambig = max_disambig + 1  # follows optional silence in L_disambig (Kaldi's habit)

    nonsil = [p + s for p in base_phones for s in POSITIONS] if position_dependent else base_phones
    disambig = [f"#{n}" for n in range(sil_disambig + 1)]
    phones = ["<eps>", SIL, SPN, *nonsil, *disambig]
    phone_ids = {p: i for i, p in enumerate(phones)}
    _write_table(lang_dir / "phones.txt", phones)
    word_list = list(dict.fromkeys(w for w, _ in words))
    word_symbols = ["<eps>", SIL_WORD, UNK_WORD, *word_list, "#0", "<s>", "</s>"]
    word_ids = {w: i for i, w in enumerate(word_symbols)}
    _write_table(lang_dir / "words.txt", word_symbols)

    atomic_write_text(
        lang_dir / "lexicon.txt", "".join(f"{w} {' '.join(p)}\n" for w, p in full_lexicon)
    )
    atomic_write_text(
        lang_dir / "lexicon_disambig.txt",
        "".join(f"{w} {' '.join(p)}\n" for w, p in lexicon_disambig),
    )
    atomic_write_text(
        lang_dir / "g2p_failed.txt",
        "".join(f"{w}\t{why}\n" for w, why in sorted((failed or {}).items())),
    )
    topo = make_topology(
        [phone_ids[p] for p in nonsil], [phone_ids[SIL], phone_ids[SPN]], num_states, num_sil_states
    )
    atomic_write_text(lang_dir / "topo", topo.to_kaldi())
    plist = lang_dir / "phones"
    atomic_write_text(plist / "silence.txt", f"{SIL}\n{SPN}\n")
    atomic_write_text(plist / "optional_silence.txt", f"{SIL}\n")
    atomic_write_text(plist / "nonsilence.txt", "".join(f"{p}\n" for p in nonsil))
    atomic_write_text(plist / "disambig.txt", "".join(f"{p}\n" for p in disambig))
    sets = [[SIL], [SPN]] + [
        [p + s for s in POSITIONS] if position_dependent else [p] for p in base_phones
    ]
    atomic_write_text(plist / "sets.txt", "".join(" ".join(s) + "\n" for s in sets))

    L = kaldifst.compile(
        lexicon_fst_text(full_lexicon, phone_ids, word_ids, phone_ids[SIL], sil_prob)
    )
    kaldifst.arcsort(L, sort_type="olabel")
    _write_fst(L, lang_dir / "L.fst")
    L_disambig = kaldifst.compile(
        lexicon_fst_text(
            lexicon_disambig,
            phone_ids,
            word_ids,
            phone_ids[SIL],
            sil_prob,
            sil_disambig=phone_ids[f"#{sil_disambig}"],
        )
    )
    # G's back-off arcs read #0 (word side): pass it through from the phone side
    kaldifst.add_self_loops(L_disambig, isyms=[phone_ids["#0"]], osyms=[word_ids["#0"]])
    kaldifst.arcsort(L_disambig, sort_type="olabel")
    _write_fst(L_disambig, lang_dir / "L_disambig.fst")
    log.info(
        "phone lang dir %s: %d phones (+%d disambig), %d words, %d pronunciations",
        lang_dir,
        len(phones) - 1 - len(disambig),
        len(disambig),
        len(word_list),
        len(full_lexicon),
    )


def read_lexicon(path: Path) -> dict[str, list[list[str]]]:
    """Word -> pronunciations of a Kaldi lexicon.txt (a clear error on a bad line)."""
    out: dict[str, list[list[str]]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) < 2:
            raise ValueError(f"{path}:{n}: expected 'word phone...', got {line!r}")
        out.setdefault(fields[0], []).append(fields[1:])
    return out
