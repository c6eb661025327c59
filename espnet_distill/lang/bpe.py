"""Subword units: a sentencepiece BPE model and its lang dir.

``data/lang_bpe_<N>/``: ``bpe.model``, ``tokens.txt`` (``<blk> 0`` first: id 0 is the CTC blank),
``words.txt`` (the training vocabulary, Kaldi symbol-table format) and ``transcript_words.txt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sentencepiece as spm

from espnet_distill.utils import atomic_write_text

log = logging.getLogger(__name__)

BLANK = "<blk>"
UNK = "<unk>"


def train_bpe(
    texts: list[str], lang_dir: Path, vocab_size: int, seed_sentences: int = 2_000_000
) -> Path:
    """Train the BPE model on ``texts`` (one sentence each) and write the lang dir."""
    lang_dir.mkdir(parents=True, exist_ok=True)
    train_file = lang_dir / "transcript_words.txt"
    atomic_write_text(train_file, "\n".join(texts) + "\n")
    prefix = lang_dir / "bpe"
    spm.SentencePieceTrainer.train(
        input=str(train_file),
        model_prefix=str(prefix) + ".tmp",
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        input_sentence_size=seed_sentences,
        shuffle_input_sentence=True,
        user_defined_symbols=[BLANK],  # id 0
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        num_threads=1,  # deterministic
        minloglevel=2,
    )
    for ext in ("model", "vocab"):
        Path(f"{prefix}.tmp.{ext}").replace(f"{prefix}.{ext}")
    sp = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
    assert sp.piece_to_id(BLANK) == 0, "the CTC blank must be id 0"
    atomic_write_text(
        lang_dir / "tokens.txt",
        "".join(f"{sp.id_to_piece(i)} {i}\n" for i in range(sp.get_piece_size())),
    )
    words = sorted({w for t in texts for w in t.split()})
    table = ["<eps> 0", "!SIL 1", f"{UNK} 2"] + [f"{w} {i + 3}" for i, w in enumerate(words)]
    atomic_write_text(lang_dir / "words.txt", "\n".join(table) + "\n")
    log.info(
        "BPE %d trained on %d sentences (%d word types) -> %s",
        vocab_size,
        len(texts),
        len(words),
        lang_dir,
    )
    return lang_dir / "bpe.model"


class BpeTokenizer:
    """Text <-> CTC label ids (blank = 0) with the lang dir's sentencepiece model."""

    def __init__(self, model_file: Path) -> None:
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.vocab_size = self.sp.get_piece_size()
        self.blank_id = self.sp.piece_to_id(BLANK)

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if i != self.blank_id])
