"""ssl1: pretrain a HuBERT teacher on k-means labels, or distil a teacher into a student
(DistilHuBERT / deep / wide: layer-wise prediction; LSTM: KD or DKD on the teacher's clusters).
Lightning; resumes from exp-dir/checkpoints/last.ckpt.

Usage:
    python -m espnet_distill.bin.train_ssl --config conf/hubert_pretrain.yaml \\
        --train-cuts data/fbank/cuts_train-clean-100.jsonl.gz --valid-cuts data/fbank/cuts_dev-clean.jsonl.gz \\
        --labels exp/ssl/labels_mfcc/labels.npz --exp-dir exp/ssl/hubert
    python -m espnet_distill.bin.train_ssl --config conf/distill_lstm_dkd.yaml --teacher exp/ssl/hubert/model.pt \\
        --train-cuts ... --valid-cuts ... --exp-dir exp/ssl/lstm_dkd [--override train.max_epochs=3]
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import make_parser, one_line_errors, read_config, require
from espnet_distill.models.hubert import CheckpointMismatch
from espnet_distill.ssl.trainer import train_ssl
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError, CheckpointMismatch)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--train-cuts", "--valid-cuts", "--exp-dir", config=True)
    parser.add_argument("--labels", type=Path, help="labels.npz of ssl_labels (pretraining)")
    parser.add_argument("--teacher", type=Path, help="HuBERT checkpoint (distillation)")
    parser.add_argument("--ngpu", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    require(args.config, args.train_cuts, args.valid_cuts, args.labels, args.teacher)
    config = read_config(args)
    train_ssl(
        config, args.exp_dir, args.train_cuts, args.valid_cuts, args.teacher, args.labels, args.ngpu
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
