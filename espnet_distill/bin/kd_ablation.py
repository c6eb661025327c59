"""The cross-modal KD ablation table: WER of every KD configuration against the no-KD baseline.

Reads the scored decode dirs of each experiment (``<exp-dir>/am_<tag>/decode_<set>_<method>/
score/{wer.json,per_utt.tsv}``, stage 9) and writes to ``--out-dir``:

- ``table.md``: per decoding method and set, WER with its 95% bootstrap interval, the difference
  to the baseline with its paired-bootstrap interval and the probability that the configuration is
  not better (Bisani and Ney 2004) and the smallest difference the design detects (80% power);
  with several seeds, the mean over seeds, their spread and each seed's WER;
- ``ablation.png``: a bar plot of WER per configuration (interval as error bar), a panel per
  method and set after the first of ``--sets`` (the dev set, where settings were tuned).

make_results puts ``table.md`` into RESULTS.md (section "Cross-modal KD ablation").

Usage:
    python -m espnet_distill.bin.kd_ablation --exp-dir exp/full --baseline kd_none \\
        --tags kd_none kd_label_interp kd_hier ... [--seeds 1234 1235] \\
        [--methods hclg tlg] [--sets dev-clean test-clean test-other] --out-dir exp/full/kd_ablation
"""

from __future__ import annotations

import sys

from espnet_distill.bin import make_parser, one_line_errors
from espnet_distill.score.kd_ablation import ablation_rows, plot, table_markdown
from espnet_distill.utils import atomic_write_text


@one_line_errors(FileNotFoundError, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--exp-dir", "--out-dir")
    parser.add_argument("--baseline", required=True, help="tag of the no-KD experiment")
    parser.add_argument("--tags", nargs="+", required=True)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[],
        help="experiment dirs am_<tag>_seed<S> (default: am_<tag>)",
    )
    parser.add_argument("--methods", nargs="+", default=["hclg", "tlg"])
    parser.add_argument("--sets", nargs="+", default=["dev-clean", "test-clean"])
    args = parser.parse_args(argv)
    seeds: list[int | None] = list(args.seeds) or [None]
    tags = [args.baseline] + [t for t in args.tags if t != args.baseline]
    tables = {}
    for method in args.methods:
        for part in args.sets:
            tables[(method, part)] = ablation_rows(
                args.exp_dir, tags, args.baseline, method, part, seeds
            )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    text = table_markdown(tables, args.baseline, seeds)
    atomic_write_text(args.out_dir / "table.md", text + "\n")
    shown = args.sets[1:] or args.sets
    plot({k: v for k, v in tables.items() if k[1] in shown}, args.out_dir / "ablation.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
