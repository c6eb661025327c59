"""Stage 5 (word n-gram part): KenLM word n-gram on LM text (never test text).

Usage:
    python -m espnet_distill.bin.train_word_ngram --text data/train_clean_100/text.words \\
        corpus/demo/librispeech-lm-norm.txt.gz --order 3 --out-dir data/lm
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser
from espnet_distill.lm.ngram import train_word_ngram
from espnet_distill.utils import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--text", type=Path, nargs="+", required=True, help="plain or .gz sentence files"
    )
    parser.add_argument("--order", type=int, default=3)
    add_paths(parser, "--out-dir")
    args = parser.parse_args(argv)
    setup_logging()
    for path in args.text:
        if not path.is_file():
            print(f"train_word_ngram: LM text {path} does not exist", file=sys.stderr)
            return 1
    train_word_ngram(args.text, args.out_dir, args.order)
    return 0


if __name__ == "__main__":
    sys.exit(main())
