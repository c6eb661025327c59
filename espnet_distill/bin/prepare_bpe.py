"""Stage 3 (subword part): train the sentencepiece BPE model and write data/lang_bpe_<N>.

Usage:
    python -m espnet_distill.bin.prepare_bpe --text data/train_clean_100/text \\
        --vocab-size 256 --lang-dir data/lang_bpe_256 [--extra-text corpus/demo/lm.txt.gz]
"""

from __future__ import annotations

import sys
from pathlib import Path

from lhotse.serialization import open_best

from espnet_distill.bin import add_paths, make_parser
from espnet_distill.lang.bpe import train_bpe
from espnet_distill.utils import setup_logging


def read_kaldi_text(path: Path) -> list[str]:
    """Transcripts of a Kaldi ``text`` file (first field is the utterance id)."""
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise ValueError(f"{path}:{lineno}: expected '<utt-id> <transcript>', got {line!r}")
        out.append(fields[1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--text", type=Path, required=True, help="Kaldi text file of the training set"
    )
    parser.add_argument(
        "--extra-text", type=Path, help="plain (optionally .gz) sentences, e.g. LM text"
    )
    parser.add_argument("--vocab-size", type=int, required=True)
    add_paths(parser, "--lang-dir")
    args = parser.parse_args(argv)
    setup_logging()
    texts = read_kaldi_text(args.text)
    if args.extra_text:
        with open_best(args.extra_text, "r") as f:  # plain or .gz
            texts += [line.strip() for line in f if line.strip()]
    train_bpe(texts, args.lang_dir, args.vocab_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
