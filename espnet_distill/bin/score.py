"""Stage 9: score hypotheses against references (kaldialign), sclite-style report, 95% CI.

Usage:
    python -m espnet_distill.bin.score --ref data/test_clean/text \\
        --hyp exp/am/decode_test-clean_greedy/text --out-dir exp/am/decode_test-clean_greedy/score
"""

from __future__ import annotations

import sys

from espnet_distill.bin import make_parser
from espnet_distill.score.wer import read_text_file, score_corpus, write_report
from espnet_distill.utils import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--ref", "--hyp", "--out-dir")
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    setup_logging()
    tot = write_report(
        score_corpus(read_text_file(args.ref), read_text_file(args.hyp)), args.out_dir, args.name
    )
    print(
        f"%WER {tot['err']:.2f} [{tot['ci_low']:.2f}, {tot['ci_high']:.2f}] "
        f"(sub {tot['sub']:.2f} del {tot['del']:.2f} ins {tot['ins']:.2f}) on {tot['snt']} utts, {tot['wrd']} words"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
