"""Stage 1: a LibriSpeech-layout corpus -> lhotse manifests (recordings, supervisions).

Bad items (undecodable or empty transcript lines, missing/unreadable/empty audio) are skipped,
logged one line each, and listed with their reason in ``<output-dir>/rejected_<part>.txt``.
Parts whose manifests exist are skipped (delete them to redo).

Usage:
    python -m espnet_distill.bin.prepare_manifests --corpus-dir corpus/demo/LibriSpeech \\
        --parts train-clean-100 dev-clean test-clean --output-dir data/manifests
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_distill.data.librispeech import CorpusError, check_corpus_dir, prepare_part
from espnet_distill.utils import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus-dir", type=Path, required=True)
    parser.add_argument("--parts", nargs="+", required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--prefix", default="librispeech")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        check_corpus_dir(args.corpus_dir, args.parts)
        for part in args.parts:
            done = args.output_dir / f"{args.prefix}_recordings_{part}.jsonl.gz"
            if done.is_file():
                logging.info("%s: manifests exist, skipping", part)
                continue
            prepare_part(args.corpus_dir, part, args.output_dir, args.prefix)
    except CorpusError as err:
        print(f"prepare_manifests: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
