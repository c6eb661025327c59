"""Stage 1: a LibriSpeech-layout corpus -> lhotse manifests (recordings, supervisions).

Bad items (undecodable or empty transcript lines, missing/unreadable/empty audio) are skipped,
logged one line each, and listed with their reason in ``<output-dir>/rejected_<part>.txt``.
Parts whose manifests exist are skipped (delete them to redo). ``--combine NAME=P1,P2,...``
then writes one set of manifests NAME joining parts (LibriSpeech's 960 h training set:
``train-960=train-clean-100,train-clean-360,train-other-500``); later stages read it as a part.

Usage:
    python -m espnet_distill.bin.prepare_manifests --corpus-dir corpus/demo/LibriSpeech \\
        --parts train-clean-100 dev-clean test-clean --out-dir data/manifests \\
        [--combine train-960=train-clean-100,train-clean-360,train-other-500]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lhotse import combine, load_manifest

from espnet_distill.bin import make_parser, named_values, one_line_errors
from espnet_distill.data.librispeech import (
    CorpusError,
    check_corpus_dir,
    prepare_part,
    write_manifests,
)
from espnet_distill.utils import setup_logging


def combine_parts(output_dir: Path, name: str, parts: list[str], prefix: str) -> int:
    """Manifests ``<prefix>_{recordings,supervisions}_<name>`` joining ``parts``'; returns the
    number of supervisions."""
    joined = {
        kind: combine(
            *[load_manifest(output_dir / f"{prefix}_{kind}_{part}.jsonl.gz") for part in parts]
        )
        for kind in ("recordings", "supervisions")
    }
    write_manifests(joined["recordings"], joined["supervisions"], output_dir, prefix, name)
    count = len(joined["supervisions"])
    logging.info("%s: %d utterances from %s", name, count, " + ".join(parts))
    return count


@one_line_errors(ValueError, CorpusError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--corpus-dir", "--out-dir")
    parser.add_argument("--parts", nargs="+", required=True)
    parser.add_argument("--prefix", default="librispeech")
    parser.add_argument(
        "--combine",
        nargs="*",
        default=[],
        metavar="NAME=P1,P2",
        help="a joined set of parts, e.g. train-960=train-clean-100,train-clean-360",
    )
    args = parser.parse_args(argv)
    combined = {
        name: parts.split(",")
        for name, parts in named_values(args.combine, "--combine", "P1,P2,...").items()
    }
    missing = sorted({p for parts in combined.values() for p in parts} - set(args.parts))
    if missing:
        print(
            f"prepare_manifests: --combine names parts not in --parts: {', '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    setup_logging()
    check_corpus_dir(args.corpus_dir, args.parts)
    for part in args.parts:
        done = args.out_dir / f"{args.prefix}_recordings_{part}.jsonl.gz"
        if done.is_file():
            logging.info("%s: manifests exist, skipping", part)
            continue
        prepare_part(args.corpus_dir, part, args.out_dir, args.prefix)
    for name, parts in combined.items():
        combine_parts(args.out_dir, name, parts, args.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
