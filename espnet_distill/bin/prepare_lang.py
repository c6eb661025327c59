"""Stage 3 (phone part): lexicon (CMUdict + espeak-ng G2P) and the Kaldi-style lang dir.

The vocabulary is every word of the given symbol tables or texts (the BPE lang dir's words.txt
holds the training and LM text vocabulary); words the G2P cannot spell are left out, listed in
``<lang-dir>/g2p_failed.txt`` and counted in the log.

Usage:
    python -m espnet_distill.bin.prepare_lang --words data/lang_bpe_100/words.txt \\
        --lang-dir data/lang_phone [--num-states 3] [--sil-prob 0.5] [--position-dependent true]
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import add_bool, add_paths, make_parser, one_line_errors, require
from espnet_distill.lang.lexicon import ARPABET, build_lexicon, load_cmudict
from espnet_distill.lang.phone_lang import SIL_WORD, UNK_WORD, prepare_phone_lang
from espnet_distill.utils import setup_logging

NOT_WORDS = {"<eps>", SIL_WORD, UNK_WORD, "<s>", "</s>", "#0"}


def read_words(path: Path) -> list[str]:
    """Words of a Kaldi symbol table (``word id``) or of a plain text (every token)."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            words.append(fields[0])
        else:
            words += fields
    return [w for w in dict.fromkeys(words) if w not in NOT_WORDS]


@one_line_errors()
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--words", type=Path, nargs="+", required=True)
    add_paths(parser, "--lang-dir")
    parser.add_argument("--num-states", type=int, default=3, help="HMM states per phone")
    parser.add_argument("--num-sil-states", type=int, default=3, help="HMM states of silence")
    parser.add_argument("--sil-prob", type=float, default=0.5, help="optional silence probability")
    parser.add_argument("--max-prons", type=int, default=3, help="CMUdict variants kept per word")
    add_bool(parser, "--position-dependent", "_B/_I/_E/_S word-position phones")
    args = parser.parse_args(argv)
    setup_logging()
    require(*args.words, files=True)
    words = [w for path in args.words for w in read_words(path)]
    lexicon, failed = build_lexicon(words, load_cmudict(), max_prons=args.max_prons)
    prepare_phone_lang(
        lexicon,
        args.lang_dir,
        ARPABET,
        sil_prob=args.sil_prob,
        position_dependent=args.position_dependent,
        num_states=args.num_states,
        num_sil_states=args.num_sil_states,
        failed=failed,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
