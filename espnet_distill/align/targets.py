"""Frame targets in three units from an HMM alignment, and senone sequences from text alone.

The units (:data:`UNITS`, the one registry that stage 4, stage 5, the KD heads and the configs
read; each with its vocabulary ``<targets>/units/<unit>.txt`` and frame targets
``<targets>/<unit>.scp``, and its stage-5 LM ``<unit_lm_dir>/<unit>/model.pt``):

- ``senone``: the tree leaf (pdf id) of every 10 ms frame;
- ``monophone``: the position-independent phone of every frame (``SIL``, ``SPN``, ARPAbet);
- ``subword``: the BPE piece of every frame. Word spans come from the phone alignment (the
  phones are split into the transcript's words by their lexicon pronunciations); a word's frames
  are shared among its pieces in proportion to their letters; silence frames get ``<blk>`` (0).

Their text side (a sentence as unit ids, what the unit LMs train on) is
:class:`espnet_distill.kd.units.TextToUnits`.

:func:`senones_from_text` gives the senone sequence of a sentence with no audio (lexicon ->
phones -> triphone windows -> tree -> one pdf per HMM state), what the senone LM trains on.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
from lhotse import CutSet

from espnet_distill.align.features import load_align_features
from espnet_distill.align.hmm import TransitionModel, phone_segments
from espnet_distill.align.trainer import Aligner, GmmSystem, Lang
from espnet_distill.align.tree import Tree
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.lang.phone_lang import SIL, SPN, base_phone, base_pronunciations, read_lexicon
from espnet_distill.lang.topology import Topology
from espnet_distill.utils import atomic_write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """One unit of the frame targets and of the unit LMs, and where its files are."""

    name: str
    about: str

    def vocabulary(self, targets_dir: Path) -> Path:
        """``name id`` lines, ids 0..N-1 (stage 4)."""
        return targets_dir / "units" / f"{self.name}.txt"

    def frames(self, targets_dir: Path) -> Path:
        """The unit id of every 10 ms frame of each aligned cut (a Kaldi scp, stage 4)."""
        return targets_dir / f"{self.name}.scp"

    def lm(self, unit_lm_dir: Path) -> Path:
        """The unit LM of stage 5 (a KD head's teacher)."""
        return unit_lm_dir / self.name / "model.pt"


# In the order of frame_targets' outputs.
UNITS = {
    unit.name: unit
    for unit in (
        Unit("senone", "tree leaves (pdfs) of the triphone HMM states"),
        Unit("monophone", "position-independent phones"),
        Unit("subword", "BPE pieces"),
    )
}


def unit_named(name: str, where: str) -> Unit:
    """The unit ``name``; ValueError naming ``where`` (a config key, a flag) when none is."""
    if name not in UNITS:
        raise ValueError(f"{where}: unknown unit '{name}', expected one of {', '.join(UNITS)}")
    return UNITS[name]


def split_words(
    phones: list[str], words: list[str], prons: dict[str, list[list[str]]]
) -> list[tuple[int, int]] | None:
    """Split a phone sequence (no silences) into ``words``: (first, end) phone index per word.

    Tries each word's pronunciations (dynamic programming over positions); None if no split
    spells the sequence.
    """
    memo: dict[tuple[int, int], list[tuple[int, int]] | None] = {}

    def solve(w: int, i: int) -> list[tuple[int, int]] | None:
        if w == len(words):
            return [] if i == len(phones) else None
        key = (w, i)
        if key not in memo:
            memo[key] = None
            for pron in prons.get(words[w], []):
                j = i + len(pron)
                if phones[i:j] == pron:
                    rest = solve(w + 1, j)
                    if rest is not None:
                        memo[key] = [(i, j), *rest]
                        break
        return memo[key]

    return solve(0, 0)


def frame_targets(
    tids: np.ndarray,
    tm: TransitionModel,
    words: list[str],
    prons: dict[str, list[list[str]]],
    phone_names: dict[int, str],
    monophone_ids: dict[str, int],
    pieces_of: dict[str, list[tuple[int, int]]],
    silence: set[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(senone, monophone, subword) id per frame of one utterance's alignment.

    ``pieces_of``: word -> [(piece id, letters)]; ``prons`` with base (position-free) phones.
    Raises ValueError if the aligned phones do not spell the words (a lexicon mismatch).
    """
    senone = tm.tid_pdf[tids].astype(np.int32)
    segs = phone_segments(tids, tm)
    base = [base_phone(phone_names[p]) for p, _, _ in segs]
    monophone = np.empty(len(tids), dtype=np.int32)
    for (_, s, e), name in zip(segs, base, strict=True):
        monophone[s:e] = monophone_ids[name]
    subword = np.zeros(len(tids), dtype=np.int32)
    speech = [k for k, name in enumerate(base) if name not in silence or name == "SPN"]
    spans = split_words([base[k] for k in speech], words, prons)
    if spans is None:
        raise ValueError(f"aligned phones {' '.join(base)} do not spell '{' '.join(words)}'")
    for word, (i, j) in zip(words, spans, strict=True):
        start, end = segs[speech[i]][1], segs[speech[j - 1]][2]
        pieces = pieces_of[word]
        letters = np.array([max(1, n) for _, n in pieces], dtype=float)
        bounds = start + np.round(np.cumsum(letters) / letters.sum() * (end - start)).astype(int)
        prev = start
        for (piece, _), b in zip(pieces, bounds, strict=True):
            subword[prev:b] = piece
            prev = b
    return senone, monophone, subword


class UnitTargets:
    """The three units of stage 4 for one lang dir, triphone system and BPE model: their
    vocabularies, and the frame targets of an alignment (:func:`frame_targets`) in them."""

    def __init__(
        self,
        lang_dir: Path,
        phones: dict[str, int],
        real_phones: list[int],
        tm: TransitionModel,
        num_senones: int,
        bpe_model: Path,
    ) -> None:
        self.tm, self.num_senones = tm, num_senones
        self.phone_names = {i: p for p, i in phones.items()}
        self.prons = base_pronunciations(read_lexicon(Path(lang_dir) / "lexicon.txt"))
        units = dict.fromkeys([SIL, SPN] + [base_phone(self.phone_names[p]) for p in real_phones])
        self.monophone_ids = {p: i for i, p in enumerate(units)}
        self.tokenizer = BpeTokenizer(bpe_model)
        self._pieces_of: dict[str, list[tuple[int, int]]] = {}

    def __call__(self, tids: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(senone, monophone, subword) targets of ``tids``, the alignment of ``text``."""
        words = [w if w in self.prons else "<unk>" for w in text.split()]
        sp = self.tokenizer.sp
        for w in words:
            if w not in self._pieces_of:
                ids = self.tokenizer.encode(w)
                self._pieces_of[w] = [(i, len(sp.id_to_piece(i).lstrip("\u2581"))) for i in ids]
        return frame_targets(
            tids,
            self.tm,
            words,
            self.prons,
            self.phone_names,
            self.monophone_ids,
            self._pieces_of,
            {SIL, SPN},
        )

    def vocabularies(self) -> dict[str, str]:
        """``units/<unit>.txt`` contents: ``<name> <id>`` lines."""
        sp = self.tokenizer.sp
        return {
            "senone": "".join(f"s{i} {i}\n" for i in range(self.num_senones)),
            "monophone": "".join(f"{p} {i}\n" for p, i in self.monophone_ids.items()),
            "subword": "".join(
                f"{sp.id_to_piece(i)} {i}\n" for i in range(self.tokenizer.vocab_size)
            ),
        }


def senones_from_phones(phones: list[int], tree: Tree, topology: Topology) -> list[int]:
    """One pdf per HMM state of a phone sequence (utterance-edge context 0 at both ends)."""
    padded = [0, *phones, 0]
    out = []
    for k, phone in enumerate(phones):
        window = tuple(padded[k : k + 3]) if tree.context_width == 3 else (phone,)
        for st in topology.states(phone):
            if st.pdf_class is not None:
                out.append(tree.pdf(window, st.pdf_class))
    return out


def senones_from_text(
    words: list[str],
    prons: dict[str, list[list[str]]],
    phone_ids: dict[str, int],
    tree: Tree,
    topology: Topology,
    edge_silence: str | None = "SIL",
) -> list[int]:
    """Senone (pdf) sequence of a sentence: first pronunciations, one pdf per HMM state.

    ``edge_silence`` is the phone assumed before and after the sentence (recordings start and
    end in silence); None leaves the utterance-edge context there instead.
    """
    phones = [phone_ids[p] for w in words for p in prons[w][0]]
    if edge_silence:
        phones = [phone_ids[edge_silence], *phones, phone_ids[edge_silence]]
    return senones_from_phones(phones, tree, topology)


def is_original_speed(cut: object) -> bool:
    """Not a speed-perturbed copy (lhotse ids ``<id>_sp<factor>``)."""
    return "_sp" not in cut.id


def write_targets(
    exp_dir: Path,
    lang_dir: Path,
    bpe_model: Path,
    lang: Lang,
    tri: GmmSystem,
    cuts: CutSet,
    nj: int = 1,
) -> None:
    """Align every cut (speed-perturbed copies too) with ``tri`` in ``nj`` jobs and write the
    three targets to ``exp_dir/targets`` (the cuts it could not align: ``exp_dir/failed.txt``)."""
    out = exp_dir / "targets"
    if (out / ".done").is_file():
        log.info("%s exists: targets are written", out / ".done")
        return
    (out / "units").mkdir(parents=True, exist_ok=True)
    log.info("aligning all %d cuts with the triphone system", len(cuts))
    feats = load_align_features(cuts)
    utts = {}
    for cut in cuts:
        utts[cut.id] = (
            lang.word_ids(" ".join(s.text for s in cut.supervisions).split())[0],
            feats[cut.id],
        )
    aligner = Aligner(lang, utts, nj=nj)
    alis, *_ = aligner.iteration(tri, True, None, "final alignment", accumulate=False)
    failed = dict(aligner.failed)

    units = UnitTargets(
        lang_dir, lang.phones, lang.real_phones, tri.tm, tri.tree.num_pdfs, bpe_model
    )
    written = 0
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(
                kaldiio.WriteHelper(
                    f"ark,scp:{unit.frames(out).with_suffix('.ark')},{unit.frames(out)}"
                )
            )
            for unit in UNITS.values()
        ]
        for cut in cuts:
            if cut.id not in alis:
                continue
            try:
                targets = units(alis[cut.id].tids, " ".join(s.text for s in cut.supervisions))
            except ValueError as err:
                failed[cut.id] = str(err)
                continue
            for write, ids in zip(writers, targets, strict=True):
                write(cut.id, ids)
            written += 1
    for name, text in units.vocabularies().items():
        atomic_write_text(UNITS[name].vocabulary(out), text)
    atomic_write_text(
        exp_dir / "failed.txt", "".join(f"{u}\t{why}\n" for u, why in sorted(failed.items()))
    )
    log.info(
        "targets for %d of %d cuts (%d not aligned, see %s); %d senones",
        written,
        len(cuts),
        len(cuts) - written,
        exp_dir / "failed.txt",
        tri.tree.num_pdfs,
    )
    (out / ".done").touch()
