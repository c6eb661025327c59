"""Text and alignments in the three KD units (:data:`espnet_distill.align.targets.UNITS`):
senones, monophones, subwords.

The unit LMs of cross-modal KD train on text only, so every unit must be computable from a sentence:

- ``subword``: the BPE pieces of the sentence (ids of ``units/subword.txt``; ``<blk>`` never occurs);
- ``monophone``: each word's first lexicon pronunciation, position-free phones (``units/monophone.txt``);
- ``senone``: lexicon -> triphone windows -> tree -> one pdf per HMM state
  (:func:`~espnet_distill.align.targets.senones_from_text`), silence at the sentence edges giving the
  first and last phone its usual left/right context, then the silence states themselves dropped.

Silence is not part of any unit sequence: optional pauses are acoustics, not language, and the
text has none. The same rule turns a stage-4 frame alignment into the unit *token* sequence that the
LM reads (:func:`tokens_of_frames`): runs of the same id are one token (one HMM state visit for
senones, one phone, one piece), silence runs are left out, and every speech frame points to its
token. The LM's prediction for token k given tokens < k is then the soft label of token k's frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from espnet_distill.align.targets import UNITS, senones_from_text, unit_named
from espnet_distill.align.tree import Tree
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.lang.lexicon_fst import read_symbol_table
from espnet_distill.lang.phone_lang import SIL, SPN, base_phone, base_pronunciations, read_lexicon
from espnet_distill.lang.topology import read_topo


def read_units(path: Path) -> list[str]:
    """``units/<unit>.txt`` (``name id`` lines, ids 0..N-1 in order) -> names by id."""
    table = read_symbol_table(path)
    names = sorted(table, key=table.__getitem__)
    if [table[n] for n in names] != list(range(len(names))):
        raise ValueError(f"{path}: unit ids must be 0..{len(names) - 1} without gaps")
    return names


@dataclass
class UnitTables:
    """Where the stage-3/4 outputs are: the phone lang dir, stage 4's dir, the BPE model."""

    lang_dir: Path
    align_dir: Path
    bpe_model: Path


class TextToUnits:
    """Sentence -> unit id sequence, for each unit (see the module doc)."""

    def __init__(self, tables: UnitTables) -> None:
        targets_dir = tables.align_dir / "targets"
        self.names = {name: read_units(u.vocabulary(targets_dir)) for name, u in UNITS.items()}
        lexicon = read_lexicon(tables.lang_dir / "lexicon.txt")
        self.prons = lexicon  # lang-dir phones (position-dependent ones too), for the tree
        self.base_prons = base_pronunciations(lexicon)
        self.phone_ids = read_symbol_table(tables.lang_dir / "phones.txt")
        self.monophone_ids = {p: i for i, p in enumerate(self.names["monophone"])}
        self.tree = Tree.load(tables.align_dir / "tri" / "tree.json")
        self.topology = read_topo(tables.lang_dir / "topo")
        self.tokenizer = BpeTokenizer(tables.bpe_model)
        # frame ids that are not part of unit sequences (see tokens_of_frames)
        self.silence = {
            "senone": self._silence_senones(),
            "monophone": {self.monophone_ids[p] for p in (SIL, SPN) if p in self.monophone_ids},
            "subword": {0},  # <blk>: silence frames of the subword targets
        }

    def _silence_senones(self) -> set[int]:
        """pdfs of the silence phones' trees (never in a unit sequence)."""
        out = set()
        for set_idx, pdf_class in self.tree.roots:
            phones = self.tree.phone_sets[set_idx]
            names = {base_phone(p) for p, i in self.phone_ids.items() if i in phones}
            if names & {SIL, SPN}:
                out.update(self.tree.pdfs_of_root((set_idx, pdf_class)))
        return out

    def oov(self, words: list[str]) -> list[str]:
        """Words without a pronunciation (their sentence cannot be converted to phone units)."""
        return [w for w in words if w not in self.prons]

    def __call__(self, unit: str, text: str) -> list[int]:
        unit_named(unit, "TextToUnits")
        words = text.split()
        if unit == "subword":
            return self.tokenizer.encode(text)
        missing = self.oov(words)
        if missing:
            raise KeyError(f"no pronunciation of {', '.join(sorted(set(missing)))}")
        if unit == "monophone":
            return [self.monophone_ids[p] for w in words for p in self.base_prons[w][0]]
        seq = senones_from_text(words, self.prons, self.phone_ids, self.tree, self.topology)
        return [s for s in seq if s not in self.silence["senone"]]


def tokens_of_frames(frames: np.ndarray, silence: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame unit ids -> (token ids, token index of every frame, -1 on silence frames)."""
    frames = np.asarray(frames)
    if frames.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[True], frames[1:] != frames[:-1]])
    run = np.cumsum(starts) - 1  # run index of every frame
    run_ids = frames[starts]
    speech_run = np.array([int(u) not in silence for u in run_ids])
    token_of_run = np.where(speech_run, np.cumsum(speech_run) - 1, -1)
    return run_ids[speech_run].astype(np.int64), token_of_run[run].astype(np.int64)
