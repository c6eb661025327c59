"""Sentence text for the synthetic corpus: Debian's fortunes, normalised like LibriSpeech.

LibriSpeech transcripts are upper case, words of letters and apostrophes, single spaces, no
punctuation and no digits; :func:`normalize_sentence` maps a raw sentence to that form or rejects it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Files that are mostly ASCII art, program code or non-English text.
EXCLUDED_FORTUNE_FILES = {"ascii-art", "art", "perl", "translate-me", "linux", "zippy"}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ALLOWED_RAW = re.compile(r"^[A-Za-z ,.;:!?'\"()-]+$")
_ATTRIBUTION = re.compile(r"^\s*(--|-- |\u2014)")

log = logging.getLogger(__name__)

# The synthesiser reads these abbreviations as the full word; LibriSpeech writes the full word.
_EXPANSIONS = {"MR": "MISTER", "MRS": "MISSUS", "DR": "DOCTOR", "VS": "VERSUS", "JR": "JUNIOR"}
# Read differently by different voices (street/saint, company/C O): such sentences are dropped.
_AMBIGUOUS = {"ST", "CO", "INC", "LTD", "ETC"}


def normalize_sentence(raw: str, min_words: int = 4, max_words: int = 20) -> str | None:
    """Return the LibriSpeech-style form of ``raw`` or None if it cannot be spoken cleanly.

    Sentences with digits or symbols (code, URLs, ASCII art) are rejected rather than guessed at,
    so that the spoken audio and the transcript always agree.
    """
    raw = " ".join(raw.replace("&", " and ").split())
    if not raw or not _ALLOWED_RAW.match(raw):
        return None
    text = raw.upper().replace("-", " ")
    text = re.sub(r"[^A-Z' ]", " ", text)
    words = [w.strip("'") for w in text.split()]
    words = [_EXPANSIONS.get(w, w) for w in words if w]
    if _AMBIGUOUS.intersection(words):
        return None
    if not min_words <= len(words) <= max_words:
        return None
    if any(len(w) > 18 for w in words):
        return None
    return " ".join(words)


def split_fortunes(text: str) -> Iterable[str]:
    """Yield raw sentences of a fortune file (fortunes separated by lines holding only ``%``)."""
    for fortune in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        lines = [ln for ln in fortune.splitlines() if ln.strip() and not _ATTRIBUTION.match(ln)]
        # Overstruck text (backspaces) and indented verse/code are unreliable as speech.
        body = " ".join(ln.strip() for ln in lines if "\b" not in ln)
        yield from _SENTENCE_END.split(body)


def load_sentences(fortune_dir: Path = FORTUNE_DIR) -> list[str]:
    """All distinct normalised sentences of the fortune files, sorted (the caller shuffles)."""
    if not fortune_dir.is_dir():
        raise FileNotFoundError(
            f"{fortune_dir}: fortune text not found; run tools/install.sh (Debian package fortunes)"
        )
    sentences: set[str] = set()
    n_files = 0
    for path in sorted(fortune_dir.iterdir()):
        if path.suffix in {".dat", ".u8"} or path.name in EXCLUDED_FORTUNE_FILES:
            continue
        if path.is_symlink() or not path.is_file():
            continue
        n_files += 1
        text = path.read_bytes().decode("utf-8", errors="replace")
        for raw in split_fortunes(text):
            norm = normalize_sentence(raw)
            if norm:
                sentences.add(norm)
    log.info(
        "%d distinct sentences from %d fortune files in %s", len(sentences), n_files, fortune_dir
    )
    return sorted(sentences)
