"""Stage 7: the TLG decoding graph of a BPE lang dir and a word n-gram (ARPA).

Usage:
    python -m espnet_distill.bin.compile_graph --lang-dir data/lang_bpe_100 \\
        --arpa data/lm/word_3gram.arpa --out-dir data/graph_tlg_3gram
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_distill.graph.tlg import compile_tlg
from espnet_distill.utils import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--arpa", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging()
    for path in (args.lang_dir / "tokens.txt", args.lang_dir / "words.txt", args.arpa):
        if not path.is_file():
            print(f"compile_graph: {path} does not exist", file=sys.stderr)
            return 1
    compile_tlg(args.lang_dir, args.arpa, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
