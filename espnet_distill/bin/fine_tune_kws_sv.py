"""kws_sv1 stage 3: fine-tune an upstream on keyword spotting, speaker verification or both
(joint), frozen or fine-tuned; scores KWS accuracy and SV EER / minDCF into results.json.
Lightning; resumes from exp-dir/checkpoints/last.ckpt.

Usage:
    python -m espnet_distill.bin.fine_tune_kws_sv --upstream ../ssl1/exp/demo/teacher/model.pt \\
        --config conf/finetune.yaml --tasks kws sv --freeze true --manifest-dir data/manifests \\
        --exp-dir exp/finetune/teacher/frozen/joint [--override train.max_epochs=2]
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import (
    add_config_options,
    add_paths,
    make_parser,
    one_line_errors,
    read_config,
    str2bool,
)
from espnet_distill.data.kws_sv import load_split_cuts, read_trials
from espnet_distill.data.librispeech import CorpusError
from espnet_distill.kws_sv.trainer import fine_tune
from espnet_distill.models.hubert import CheckpointMismatch
from espnet_distill.models.upstream import FBANK, load_upstream
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError, FileNotFoundError, CorpusError, CheckpointMismatch)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--upstream",
        type=Path,
        required=True,
        help="a HuBERT, a ssl1 student, or fbank (SUPERB's FBANK baseline)",
    )
    add_config_options(parser)
    parser.add_argument("--tasks", nargs="+", required=True, choices=["kws", "sv"])
    parser.add_argument(
        "--freeze", type=str2bool, required=True, metavar="true|false", help="freeze the upstream"
    )
    add_paths(parser, "--manifest-dir", "--exp-dir")
    parser.add_argument(
        "--kws-task",
        choices=["12class", "35class"],
        default="12class",
        help="12class: SUPERB's (test: the 12-class test set); 35class: the words "
        "(test: testing_list.txt)",
    )
    parser.add_argument("--ngpu", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    if str(args.upstream) == FBANK and not args.freeze:
        raise ValueError("--upstream fbank (the features alone) has no weights: use --freeze true")
    config = read_config(args)
    config = {
        **config,
        "tasks": args.tasks,
        "freeze_upstream": args.freeze,
        "kws": {**config.get("kws", {}), "task": args.kws_task},
    }
    data = {}
    if "kws" in args.tasks:
        data["kws_train"] = load_split_cuts(args.manifest_dir, "speechcommands", "train")
        data["kws_test"] = load_split_cuts(
            args.manifest_dir, "speechcommands", "test" if args.kws_task == "12class" else "test35"
        )
    if "sv" in args.tasks:
        data["sv_train"] = load_split_cuts(args.manifest_dir, "voxceleb", "train")
        data["sv_test"] = load_split_cuts(args.manifest_dir, "voxceleb", "test")
        data["trials"] = read_trials(
            args.manifest_dir / "voxceleb_trials.txt", {c.recording_id for c in data["sv_test"]}
        )
    results = fine_tune(load_upstream(args.upstream), config, args.exp_dir, data, args.ngpu)
    print({k: v for k, v in results.items() if k != "det"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
