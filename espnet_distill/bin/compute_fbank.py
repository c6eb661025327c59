"""Stage 2 steps: fbank features (split -> extract jobs -> combine), global CMVN, Kaldi data dirs.

Usage (asr.sh runs these):
    python -m espnet_distill.bin.compute_fbank split --manifest-dir data/manifests \\
        --part dev-clean --nj 4 --out-dir data/fbank/dev-clean
    utils/run.pl JOB=1:4 data/fbank/dev-clean/log/fbank.JOB.log \\
        python -m espnet_distill.bin.compute_fbank extract --out-dir data/fbank/dev-clean --job JOB
    python -m espnet_distill.bin.compute_fbank combine --out-dir data/fbank/dev-clean --nj 4 \\
        --part dev-clean --kaldi-dir data/dev_clean [--cmvn data/fbank/cmvn.npz] \\
        [--rejected-list data/manifests/rejected_dev-clean.txt]
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser
from espnet_distill.data import features
from espnet_distill.utils import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("split", help="split a part's cuts into N lists")
    add_paths(p, "--manifest-dir", "--out-dir")
    p.add_argument("--part", required=True)
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--prefix", default="librispeech")
    p.add_argument(
        "--speed-perturb",
        type=float,
        nargs="*",
        default=[],
        help="add speed-perturbed copies, e.g. 0.9 1.1",
    )
    p = sub.add_parser("extract", help="one job: fbank for the cuts of split/cuts.JOB.jsonl.gz")
    add_paths(p, "--out-dir")
    p.add_argument("--job", type=int, required=True)
    p = sub.add_parser("combine", help="join the jobs, export the Kaldi data dir, optional CMVN")
    add_paths(p, "--out-dir", "--kaldi-dir")
    p.add_argument("--nj", type=int, required=True)
    p.add_argument("--part", required=True)
    p.add_argument("--cmvn", type=Path, help="compute global CMVN stats from this part into FILE")
    p.add_argument(
        "--rejected-list",
        type=Path,
        help="the part's rejected list to add the jobs' rejects to (default: "
        "<out-dir>/rejected.txt)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    if args.step == "split":
        nj = features.split_cuts(
            args.manifest_dir,
            args.part,
            args.nj,
            args.out_dir,
            args.prefix,
            tuple(args.speed_perturb),
        )
        print(nj)  # the number of jobs actually made (fewer when there are fewer cuts)
    elif args.step == "extract":
        features.extract(
            args.out_dir / "split" / f"cuts.{args.job}.jsonl.gz", args.out_dir, args.job
        )
    else:
        cuts = features.combine(args.out_dir, args.nj, args.part, args.rejected_list)
        features.export_kaldi_dir(cuts, args.kaldi_dir)
        if args.cmvn:
            features.compute_global_cmvn(cuts, args.cmvn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
