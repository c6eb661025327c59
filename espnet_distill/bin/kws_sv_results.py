"""kws_sv1 stage 4: the results table ({teacher, student} x {frozen, fine-tuned} x {single-task,
joint}: upstream parameters, KWS accuracy, SV EER and minDCF), the DET curves (PNG) and
RESULTS.md, from ``<finetune-dir>/<upstream>/<frozen|finetuned>/<kws|sv|joint>/results.json``.
Where a system dir has its per-item scores (``kws_predictions.txt``, ``sv_scores.txt``), the
table gets 95% bootstrap intervals and the findings paired bootstrap tests of each difference.

Usage:
    python -m espnet_distill.bin.kws_sv_results --finetune-dir exp/demo/finetune \\
        --upstreams teacher distilhubert --out-dir exp/demo/results --results-file RESULTS.md
"""

from __future__ import annotations

import sys

from espnet_distill.bin import add_paths, make_parser, one_line_errors
from espnet_distill.kws_sv.report import MODES, SETUPS, write_results
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--finetune-dir", "--out-dir")
    parser.add_argument("--upstreams", nargs="+", required=True, help="e.g. teacher distilhubert")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    add_paths(parser, "--results-file", required=False)
    parser.add_argument("--title", default="kws_sv1 results")
    parser.add_argument("--notes", default="", help="a paragraph under the table")
    args = parser.parse_args(argv)
    setup_logging()
    table = write_results(**vars(args))  # the flags are its parameters
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
