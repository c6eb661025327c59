"""Stages 5 and 8: the overlap of test and dev sets with the word LM's text (verbatim sentences,
n-grams the LM holds) -> <lm-dir>/overlap.yaml, logged with a warning above 5% verbatim; stage 9
puts it beside each WER in RESULTS.md.

Usage:
    python -m espnet_distill.bin.lm_overlap --lm-text corpus/demo/librispeech-lm-norm.txt.gz \\
        --model data/lm/word_3gram.bin --order 3 --out-file data/lm/overlap.yaml \\
        --ref test-clean=data/test_clean/text dev-clean=data/dev_clean/text
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser, named_files, one_line_errors, require
from espnet_distill.lm.overlap import WARN_SHARE, lm_text_overlap
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--lm-text", type=Path, nargs="+", required=True)
    parser.add_argument("--model", type=Path, help="the n-gram LM (KenLM binary or ARPA)")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--ref", nargs="+", required=True, metavar="SET=KALDI_TEXT")
    add_paths(parser, "--out-file")
    args = parser.parse_args(argv)
    setup_logging()
    refs = named_files(args.ref, "--ref", "KALDI_TEXT")
    require(*args.lm_text, args.model, files=True)
    overlap = lm_text_overlap(args.lm_text, refs, args.model, args.order, args.out_file)
    for name in refs:
        o = overlap[name]
        ngrams = (
            f"; {o['ngrams_in_lm_share']:.1%} of its word {o['ngram_order']}-grams are in "
            "the n-gram LM"
            if "ngrams_in_lm_share" in o
            else ""
        )
        line = (
            f"{name}: {o['verbatim']} of {o['sentences']} sentences "
            f"({o['verbatim_share']:.1%}) occur verbatim in the LM text{ngrams}"
        )
        if o["verbatim_share"] > WARN_SHARE:
            logging.warning("%s: WERs with this LM are optimistic on %s", line, name)
        else:
            logging.info("%s", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
