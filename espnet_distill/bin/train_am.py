"""Stage 6: train an acoustic model: CTC, hybrid senone (frame CE on the stage-4 alignment) or
both on one encoder (Lightning; resumes from exp-dir/checkpoints/last.ckpt).

Usage:
    python -m espnet_distill.bin.train_am --config conf/train_conformer_ctc_senone.yaml \\
        --train-cuts data/fbank/cuts_train-clean-100.jsonl.gz \\
        --valid-cuts data/fbank/cuts_dev-clean.jsonl.gz --lang-dir data/lang_bpe_256 \\
        --cmvn data/fbank/cmvn.npz --exp-dir exp/am_ctc_conformer [--override train.max_epochs=3] \\
        [--targets-dir exp/align/targets]   # a config with model.senone_head needs it
        [--unit-lm-dir exp/unit_lm --phone-lang-dir data/lang_phone]   # KD heads need them
        [--codebook-dir exp/kd_codebooks/layer4_cb8]   # model.mvq_kd needs it (stage 5)
        [--kd-teacher ../ssl1/exp/full/teacher/model.pt]   # model.hint_kd needs it
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.asr.trainer import DEFAULT_CONFIG, train
from espnet_distill.bin import make_parser, one_line_errors, read_config, record_command
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError, OSError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(
        __doc__, "--train-cuts", "--valid-cuts", "--lang-dir", "--cmvn", "--exp-dir", config=True
    )
    parser.add_argument(
        "--targets-dir", type=Path, help="stage-4 frame targets (for a model with a senone head)"
    )
    parser.add_argument(
        "--unit-lm-dir",
        type=Path,
        help="stage-5 unit LMs <dir>/<unit>/model.pt (KD heads' teachers)",
    )
    parser.add_argument("--phone-lang-dir", type=Path, help="phone lang dir (for KD heads)")
    parser.add_argument(
        "--codebook-dir", type=Path, help="stage-5 teacher codebooks (model.mvq_kd)"
    )
    parser.add_argument("--kd-teacher", type=Path, help="SSL teacher checkpoint (model.hint_kd)")
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument(
        "--cpu-procs",
        type=int,
        default=1,
        help="without GPUs: data-parallel CPU processes (DDP, gloo)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    config = read_config(args, DEFAULT_CONFIG)
    record_command(args.exp_dir, "espnet_distill.bin.train_am", argv, "train.sh")
    train(
        config,
        args.exp_dir,
        args.train_cuts,
        args.valid_cuts,
        args.lang_dir,
        args.cmvn,
        args.ngpu,
        args.num_nodes,
        args.targets_dir,
        args.unit_lm_dir,
        args.phone_lang_dir,
        args.cpu_procs,
        args.codebook_dir,
        args.kd_teacher,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
