"""ssl1 stage 6: the results table (parameters, CPU speed-up vs the teacher measured in this run
on the same audio, probing scores), the deep-vs-wide plot and RESULTS.md.

Usage:
    python -m espnet_distill.bin.ssl_results --upstream teacher=exp/ssl/teacher/model.pt \\
        distilhubert=exp/ssl/distilhubert/model.pt lstm_dkd=exp/ssl/lstm_dkd/model.pt ... \\
        --probe-dir exp/ssl/probe --tasks asr pr sid --timing-cuts data/fbank/cuts_dev-clean.jsonl.gz \\
        --out-dir exp/ssl/results --results-file RESULTS.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser, named_values, one_line_errors
from espnet_distill.ssl.report import write_results
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--upstream", nargs="+", required=True, help="name=path; one is 'teacher'")
    add_paths(parser, "--probe-dir", "--timing-cuts", "--out-dir")
    parser.add_argument("--tasks", nargs="+", default=["asr", "pr", "sid"])
    parser.add_argument("--timing-utts", type=int, default=20)
    add_paths(parser, "--results-file", required=False)
    parser.add_argument("--title", default="ssl1 results")
    args = parser.parse_args(argv)
    setup_logging()
    specs = named_values(args.upstream, "--upstream", "PATH")  # a file or a Hugging Face dir
    upstreams = {name: Path(path) for name, path in specs.items()}
    table = write_results(
        upstreams,
        args.probe_dir,
        args.timing_cuts,
        args.out_dir,
        args.tasks,
        args.timing_utts,
        args.results_file,
        args.title,
    )
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
