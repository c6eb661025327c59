"""ssl1: SUPERB-style probing of one frozen upstream on one task (asr, pr or sid); writes
``result.yaml`` (dev/test score, the layer weights) and ``test_scores.tsv`` (per test utterance:
id, errors, reference length; for the paired significance tests of stage 6). Rerunning skips a
finished probe.

ASR and PR train on --train-cuts, keep the epoch best on --valid-cuts and score --test-cuts, and
with --other-test-cuts NAME=CUTS further test sets (``other_tests`` in result.yaml,
``test_scores_<NAME>.tsv``; e.g. the synthetic corpus's held-out-engine test-other). SID
splits the speakers' utterances of --train-cuts into train/dev/test (per speaker, seeded). A task's
``max_train_hours`` trains on a seeded subset of --train-cuts of that size (SID: before its split).

--upstream fbank (no file) probes SUPERB's FBANK baseline: the probe's input features alone.

Usage:
    python -m espnet_distill.bin.probe_ssl --upstream exp/ssl/lstm_dkd/model.pt --task pr \\
        --train-cuts data/fbank/cuts_train-clean-100.jsonl.gz --valid-cuts .../cuts_dev-clean.jsonl.gz \\
        --test-cuts .../cuts_test-clean.jsonl.gz --lexicon data/lang_phone/lexicon.txt \\
        --config conf/probe.yaml --out-dir exp/ssl/probe/lstm_dkd/pr
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import yaml

from espnet_distill.bin import (
    MissingInput,
    finished,
    make_parser,
    named_files,
    one_line_errors,
    require,
)
from espnet_distill.models.hubert import CheckpointMismatch
from espnet_distill.models.upstream import FBANK
from espnet_distill.ssl.probe import TASKS, probe_upstream
from espnet_distill.utils import setup_logging

log = logging.getLogger(__name__)


@one_line_errors(CheckpointMismatch, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(
        __doc__, "--upstream", "--train-cuts", "--valid-cuts", "--test-cuts", "--out-dir"
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--lexicon", type=Path, help="Kaldi lexicon.txt (pr)")
    parser.add_argument(
        "--config", type=Path, help="YAML: a section per task (epochs, lr, seed, ...)"
    )
    parser.add_argument("--seed", type=int, help="random seed (overrides the task section's seed)")
    # further test sets (ASR, PR), scored by the epoch chosen on dev
    parser.add_argument("--other-test-cuts", nargs="*", default=[], metavar="NAME=CUTS")
    args = parser.parse_args(argv)
    setup_logging()
    if finished(args.out_dir / "result.yaml"):
        return 0
    if args.task == "pr" and args.lexicon is None:
        raise MissingInput("--task pr needs --lexicon (the phone targets)")
    upstream_file = None if str(args.upstream) == FBANK else args.upstream  # FBANK: a name
    other_tests = named_files(args.other_test_cuts, "--other-test-cuts", "CUTS")
    if args.task == "sid" and other_tests:
        raise ValueError("--other-test-cuts: the SID probe scores its own split of the speakers")
    require(upstream_file, args.train_cuts, args.valid_cuts, args.test_cuts, args.config)
    require(args.lexicon if args.task == "pr" else None)
    conf = (
        dict((yaml.safe_load(args.config.read_text()) or {}).get(args.task, {}))
        if args.config
        else {}
    )
    if args.seed is not None:
        conf["seed"] = args.seed
    cuts = {"train": args.train_cuts, "dev": args.valid_cuts, "test": args.test_cuts}
    cuts.update(other_tests)
    result = probe_upstream(args.upstream, args.task, cuts, conf, args.lexicon, args.out_dir)
    print(
        f"{args.upstream} {args.task}: {result['metric']} dev {result['dev']} test {result['test']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
