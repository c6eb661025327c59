"""Stage 5 (MVQ KD): an SSL teacher layer's codebook indexes for the training (and valid) cuts.

A ``multi_quantization`` quantizer is trained on the layer's frames of ``--quantizer-cuts``
training cuts, then every cut of each ``--cuts`` manifest gets its indexes, stored with lhotse's
array storage (``<out-dir>/indexes_<part>.h5``, manifest ``<out-dir>/cuts_<part>.jsonl.gz``; see
:mod:`espnet_distill.asr.ssl_teacher`). ``quantizer.yaml`` records the teacher, the layer and the
quantizer's relative reconstruction error. Finished parts are skipped on a rerun.

Usage:
    python -m espnet_distill.bin.teacher_codebooks --teacher ../ssl1/exp/full/teacher/model.pt \\
        --layer 4 --num-codebooks 8 --train-cuts data/fbank/cuts_train-clean-100.jsonl.gz \\
        --cuts data/fbank/cuts_train-clean-100.jsonl.gz data/fbank/cuts_dev-clean.jsonl.gz \\
        --out-dir exp/kd_codebooks/layer4_cb8 [--quantizer-cuts 1000] [--quantizer-iters 1000]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from espnet_distill.asr.ssl_teacher import SslTeacher, extract_codebooks
from espnet_distill.bin import make_parser, one_line_errors, require
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError, OSError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--teacher", "--train-cuts", "--out-dir")
    parser.add_argument("--cuts", type=Path, nargs="+", required=True, help="manifests to index")
    parser.add_argument("--layer", type=int, required=True, help="teacher layer (0: CNN output)")
    parser.add_argument("--num-codebooks", type=int, default=8, help="bytes per teacher frame")
    parser.add_argument(
        "--quantizer-cuts", type=int, default=1000, help="training cuts the quantizer learns on"
    )
    parser.add_argument(
        "--quantizer-iters",
        type=int,
        default=1000,
        help="steps of each of the quantizer trainer's two phases (icefall on GPUs: 10000)",
    )
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    setup_logging()
    require(args.teacher, args.train_cuts, *args.cuts)
    summary = extract_codebooks(
        SslTeacher(args.teacher, args.layer),
        args.train_cuts,
        args.cuts,
        args.out_dir,
        args.num_codebooks,
        args.quantizer_cuts,
        args.quantizer_iters,
        args.seed,
    )
    print(yaml.safe_dump(summary, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
