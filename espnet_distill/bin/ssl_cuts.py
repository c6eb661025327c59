"""ssl1 stage 1: audio cuts of the ASR recipe's lhotse manifests (the original recordings: no
speed-perturbed copies, whose speakers and words would leak between probe splits), with the
audio paths made absolute so that they read from the ssl1 recipe dir.

Usage:
    python -m espnet_distill.bin.ssl_cuts --manifest-dir ../asr1/data/demo/manifests \\
        --path-prefix ../asr1 --parts train-clean-100 dev-clean test-clean --out-dir exp/demo/data
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lhotse import CutSet, RecordingSet, SupervisionSet

from espnet_distill.bin import make_parser
from espnet_distill.utils import setup_logging

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--manifest-dir", "--out-dir")
    parser.add_argument(
        "--path-prefix",
        type=Path,
        required=True,
        help="dir the manifests' relative audio paths start from",
    )
    parser.add_argument("--parts", nargs="+", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        rec_file = next(iter(args.manifest_dir.glob(f"*_recordings_{part}.jsonl.gz")), None)
        sup_file = next(iter(args.manifest_dir.glob(f"*_supervisions_{part}.jsonl.gz")), None)
        if rec_file is None or sup_file is None:
            print(
                f"ssl_cuts: {args.manifest_dir}: no recordings/supervisions of {part}",
                file=sys.stderr,
            )
            return 1
        recordings = RecordingSet.from_file(rec_file)
        recordings = RecordingSet.from_recordings(
            r.with_path_prefix(str(args.path_prefix.resolve()))
            if not Path(r.sources[0].source).is_absolute()
            else r
            for r in recordings
        )
        cuts = CutSet.from_manifests(recordings, SupervisionSet.from_file(sup_file))
        out = args.out_dir / f"cuts_{part}.jsonl.gz"
        cuts.to_file(out)
        log.info(
            "%s: %d cuts (%.2f h) -> %s", part, len(cuts), sum(c.duration for c in cuts) / 3600, out
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
