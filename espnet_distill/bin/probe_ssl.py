"""ssl1: SUPERB-style probing of one frozen upstream on one task (asr, pr or sid); writes
``result.yaml`` (dev/test score, the layer weights) and ``test_scores.tsv`` (per test utterance:
id, errors, reference length; for the paired significance tests of stage 6). Rerunning skips a
finished probe.

ASR and PR train on --train-cuts, keep the epoch best on --valid-cuts and score --test-cuts. SID
splits the speakers' utterances of --train-cuts into train/dev/test (per speaker, seeded). A task's
``max_train_hours`` trains on a seeded subset of --train-cuts of that size (SID: before its split).

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
from lhotse import CutSet

from espnet_distill.bin import MissingInput, add_paths, make_parser, one_line_errors, require
from espnet_distill.models.hubert import CheckpointMismatch
from espnet_distill.models.upstream import load_upstream
from espnet_distill.ssl.probe import (
    TASKS,
    TEST_SCORES,
    complete_lexicon,
    run_probe,
    speaker_split,
    subset_hours,
)
from espnet_distill.utils import atomic_write_text, setup_logging

log = logging.getLogger(__name__)


@one_line_errors(CheckpointMismatch, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    add_paths(parser, "--upstream", "--train-cuts", "--valid-cuts", "--test-cuts", "--out-dir")
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--lexicon", type=Path, help="Kaldi lexicon.txt (pr)")
    parser.add_argument(
        "--config", type=Path, help="YAML: a section per task (epochs, lr, seed, ...)"
    )
    parser.add_argument("--seed", type=int, help="random seed (overrides the task section's seed)")
    args = parser.parse_args(argv)
    setup_logging()
    final = args.out_dir / "result.yaml"
    if final.is_file():
        log.info("%s exists: skipping", final)
        return 0
    if args.task == "pr" and args.lexicon is None:
        raise MissingInput("--task pr needs --lexicon (the phone targets)")
    require(args.upstream, args.train_cuts, args.valid_cuts, args.test_cuts, args.config)
    require(args.lexicon if args.task == "pr" else None)
    conf = (
        dict((yaml.safe_load(args.config.read_text()) or {}).get(args.task, {}))
        if args.config
        else {}
    )
    if args.seed is not None:
        conf["seed"] = args.seed
    lexicon = None
    if args.task == "pr":
        from espnet_distill.lang.phone_lang import read_lexicon

        lexicon = read_lexicon(args.lexicon)
    upstream = load_upstream(args.upstream)
    train = CutSet.from_file(args.train_cuts).to_eager()
    if conf.get("max_train_hours"):
        total = sum(c.duration for c in train) / 3600
        train = subset_hours(train, conf["max_train_hours"], seed=conf.get("seed", 0))
        log.info(
            "probe training cuts: %d (%.2f h) of %.2f h (max_train_hours %s)",
            len(train),
            sum(c.duration for c in train) / 3600,
            total,
            conf["max_train_hours"],
        )
    if args.task == "sid":
        split = speaker_split(
            {c.id: c.supervisions[0].speaker for c in train}, seed=conf.get("seed", 0)
        )
        splits = {
            k: train.filter(lambda c, ids=set(v): c.id in ids).to_eager() for k, v in split.items()
        }
    else:
        splits = {
            "train": train,
            "dev": CutSet.from_file(args.valid_cuts).to_eager(),
            "test": CutSet.from_file(args.test_cuts).to_eager(),
        }
    if lexicon is not None:
        texts = (s.text for cuts in splits.values() for c in cuts for s in c.supervisions)
        for word, why in complete_lexicon(lexicon, texts).items():
            log.warning("no pronunciation for %s (%s): its utterances are skipped", word, why)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    result = run_probe(
        upstream, args.task, splits, conf, lexicon, checkpoint=args.out_dir / "checkpoint.pt"
    )
    if result["skipped_cuts"]:
        log.warning(
            "%d cuts had no %s target (a word without pronunciation) and were skipped",
            result["skipped_cuts"],
            args.task,
        )
    utterances = result.pop("test_utterances")
    atomic_write_text(
        args.out_dir / TEST_SCORES, "".join(f"{u}\t{e}\t{n}\n" for u, e, n in utterances)
    )
    atomic_write_text(
        final, yaml.safe_dump({"upstream": str(args.upstream), **result}, sort_keys=False)
    )
    print(
        f"{args.upstream} {args.task}: {result['metric']} dev {result['dev']} test {result['test']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
