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

from espnet_distill.bin import add_paths, make_parser
from espnet_distill.kws_sv.report import (
    MODES,
    N_BOOT,
    SETUPS,
    collect,
    det_plot,
    markdown_table,
    paper_claims,
)
from espnet_distill.score.results import environment
from espnet_distill.utils import atomic_write_text, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    add_paths(parser, "--finetune-dir", "--out-dir")
    parser.add_argument("--upstreams", nargs="+", required=True, help="e.g. teacher distilhubert")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    add_paths(parser, "--results-file", required=False)
    parser.add_argument("--title", default="kws_sv1 results")
    parser.add_argument("--notes", default="", help="a paragraph under the table")
    args = parser.parse_args(argv)
    setup_logging()
    rows = collect(args.finetune_dir, args.upstreams, args.modes, args.setups)
    if not rows:
        print(f"kws_sv_results: no results.json under {args.finetune_dir}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    atomic_write_text(args.out_dir / "table.md", table)
    plot = args.out_dir / "det.png"
    if any("det" in r for r in rows):
        det_plot(rows, plot)
    print(table, end="")
    claims = paper_claims(rows)
    if args.results_file:
        body = [
            f"# {args.title}",
            "",
            "## Environment",
            *environment(),
            "",
            "## Keyword spotting and speaker verification",
            "",
            "KWS: accuracy on the 12-class test set (10 words, unknown, silence). SV: EER and "
            "minDCF (p_target 0.01) on the trial list, cosine scoring. Frozen: only the heads "
            "and the layer weights are trained; fine-tuned: the upstream too. Joint: one model "
            "for both tasks.",
            "",
            table,
            "",
            args.notes,
            "",
            *(
                [
                    "## The paper's findings in this run",
                    "",
                    "Differences with paired bootstrap tests where the systems' per-item scores "
                    "exist (KWS: test utterances resampled; SV: trials, stratified, resampled; "
                    f"{N_BOOT} resamples; p: the share where the claimed-better system is not "
                    "better). SV trials share speakers, so its intervals are a lower bound; one "
                    "training seed per system.",
                    "",
                    *claims,
                    "",
                ]
                if claims
                else []
            ),
            f"![DET curves]({plot})" if plot.is_file() else "",
            "",
        ]
        atomic_write_text(args.results_file, "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
