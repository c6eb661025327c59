"""Stage 7: decoding graphs: TLG for CTC subword models, HCLG for senone models.

Usage:
    python -m espnet_distill.bin.compile_graph --lang-dir data/lang_bpe_100 \\
        --arpa data/lm/word_3gram.arpa --out-dir data/graph_tlg_3gram
    python -m espnet_distill.bin.compile_graph --kind hclg --lang-dir data/lang_phone \\
        --align-dir exp/align --arpa data/lm/word_3gram.arpa --out-dir data/graph_hclg_3gram
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser, one_line_errors, require
from espnet_distill.utils import setup_logging


@one_line_errors()
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--kind", choices=["tlg", "hclg"], default="tlg")
    add_paths(parser, "--lang-dir", "--arpa", "--out-dir")
    parser.add_argument("--align-dir", type=Path, help="stage 4 dir with tri/ (hclg)")
    args = parser.parse_args(argv)
    setup_logging()
    needed = [args.arpa, args.lang_dir / "words.txt"]
    if args.kind == "tlg":
        needed.append(args.lang_dir / "tokens.txt")
    else:
        if args.align_dir is None:
            print("compile_graph: --kind hclg needs --align-dir", file=sys.stderr)
            return 1
        needed += [args.lang_dir / "L_disambig.fst", args.align_dir / "tri" / "tree.json"]
    require(*needed, files=True)
    if args.kind == "tlg":
        from espnet_distill.graph.tlg import compile_tlg

        compile_tlg(args.lang_dir, args.arpa, args.out_dir)
    else:
        from espnet_distill.align.trainer import GmmSystem, Lang
        from espnet_distill.graph.hclg import compile_hclg

        tri = GmmSystem.load(args.align_dir / "tri", Lang.load(args.lang_dir))
        compile_hclg(args.lang_dir, tri.tree, tri.tm, args.arpa, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
