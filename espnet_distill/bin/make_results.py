"""Stage 9 (last step): collect every scored decode dir into RESULTS.md and print it.

Usage:
    python -m espnet_distill.bin.make_results --exp-dir exp --results-file RESULTS.md --title "synth asr1" \\
        [--lm-overlap data/lm/overlap.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from espnet_distill.bin import make_parser
from espnet_distill.score.results import write_results


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--exp-dir", "--results-file")
    parser.add_argument("--title", default="RESULTS")
    parser.add_argument("--notes", default="", help="markdown text placed after the environment")
    parser.add_argument(
        "--lm-overlap",
        type=Path,
        help="lm_overlap's YAML: each set's overlap with the LM text, shown with its WERs",
    )
    args = parser.parse_args(argv)
    overlap = None
    if args.lm_overlap is not None and args.lm_overlap.is_file():
        overlap = yaml.safe_load(args.lm_overlap.read_text())
    print(write_results(args.exp_dir, args.results_file, args.title, args.notes, overlap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
