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

from espnet_distill.bin import add_paths, make_parser, one_line_errors
from espnet_distill.data.download import CORPORA, download
from espnet_distill.utils import setup_logging


@one_line_errors(OSError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--corpus", choices=CORPORA, required=True)
    add_paths(parser, "--out-dir")
    parser.add_argument("--parts", nargs="*", help="LibriSpeech parts (default: all seven)")
    args = parser.parse_args(argv)
    setup_logging()
    print(download(args.corpus, args.out_dir, args.parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
