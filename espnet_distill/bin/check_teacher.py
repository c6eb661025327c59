"""ssl1, before stage 4: can this teacher train every requested student? One line naming the
students it rules out (output-level KD from a teacher without its masked-prediction head), before
any of them trains, instead of a failure after the others ran.

Usage:
    python -m espnet_distill.bin.check_teacher --teacher /models/hubert_base_hf \\
        --students distilhubert=conf/distill_distilhubert.yaml lstm_kd=conf/distill_lstm_kd.yaml
"""

from __future__ import annotations

import logging
import sys

from espnet_distill.bin import make_parser, named_files, one_line_errors
from espnet_distill.config import load_config
from espnet_distill.models.hubert import (
    CheckpointMismatch,
    count_parameters,
    detect_format,
    load_hubert,
)
from espnet_distill.ssl.trainer import students_needing_a_head
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError, FileNotFoundError, CheckpointMismatch)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--teacher")
    parser.add_argument("--students", nargs="*", default=[], metavar="NAME=CONFIG")
    args = parser.parse_args(argv)
    setup_logging()
    files = named_files(args.students, "--students", "CONFIG")
    configs = {name: load_config(path) for name, path in files.items()}
    fmt = detect_format(args.teacher)
    teacher = load_hubert(args.teacher, fmt)
    head = f"{teacher.num_classes} clusters" if teacher.num_classes else "no masked-prediction head"
    logging.info(
        "teacher %s (%s format): %d layers, %.2fM parameters, %s",
        args.teacher,
        fmt,
        teacher.num_layers,
        count_parameters(teacher) / 1e6,
        head,
    )
    ruled_out = students_needing_a_head(teacher, configs)
    if ruled_out:
        others = [n for n in configs if n not in ruled_out]
        raise ValueError(
            f"the {fmt}-format teacher {args.teacher} has no masked-prediction "
            f"head (cluster embeddings), which output-level KD (modes kd, dkd) distils: "
            f"{', '.join(ruled_out)} cannot train from it. Leave them out (--students "
            f'"{" ".join(others)}") or give a teacher with the head (a torchaudio '
            "HuBERTPretrainModel or fairseq checkpoint, or ssl1's own stage-3 teacher)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
