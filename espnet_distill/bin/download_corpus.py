"""``run.sh --download true``: lhotse's download functions for the corpora the recipes read
(a network is needed; by default the recipes expect the data on disk).

Usage:
    python -m espnet_distill.bin.download_corpus --corpus librispeech --out-dir downloads \\
        [--parts train-clean-100 dev-clean dev-other test-clean test-other]
    python -m espnet_distill.bin.download_corpus --corpus mini_librispeech --out-dir downloads
    python -m espnet_distill.bin.download_corpus --corpus speech_commands --out-dir downloads
    python -m espnet_distill.bin.download_corpus --corpus voxceleb1 --out-dir downloads
"""

from __future__ import annotations

import sys
import urllib.error
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser
from espnet_distill.utils import setup_logging

CORPORA = ("librispeech", "mini_librispeech", "speech_commands", "voxceleb1")


def download(corpus: str, target_dir: Path, parts: list[str] | None = None) -> Path:
    """Download (resumable, lhotse) and return the directory the recipe's --corpus_dir takes."""
    from lhotse.recipes import (
        download_librispeech,
        download_speechcommands,
        download_voxceleb1,
    )

    if corpus == "librispeech":
        return download_librispeech(target_dir, dataset_parts=parts or "librispeech")
    if corpus == "mini_librispeech":
        return download_librispeech(target_dir, dataset_parts="mini_librispeech")
    if corpus == "speech_commands":
        return download_speechcommands("2", target_dir)
    if corpus == "voxceleb1":
        return download_voxceleb1(target_dir)
    raise ValueError(f"unknown corpus '{corpus}', expected one of {', '.join(CORPORA)}")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--corpus", choices=CORPORA, required=True)
    add_paths(parser, "--out-dir")
    parser.add_argument("--parts", nargs="*", help="LibriSpeech parts (default: all seven)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        print(download(args.corpus, args.out_dir, args.parts))
    except (urllib.error.URLError, OSError) as err:
        print(
            f"download_corpus: downloading {args.corpus} failed ({err}); without a network, "
            "put the corpus on disk and pass its path (--corpus_dir)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
