"""Stage 9 (last step): collect every scored decode dir into RESULTS.md and print it.

Usage:
    python -m espnet_distill.bin.make_results --exp-dir exp --out RESULTS.md --title "synth asr1"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_distill.score.results import write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="RESULTS")
    parser.add_argument("--notes", default="", help="markdown text placed after the environment")
    args = parser.parse_args(argv)
    print(write_results(args.exp_dir, args.out, args.title, args.notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
