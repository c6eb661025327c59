"""kws_sv1 stage 1: Speech Commands and/or VoxCeleb1 -> lhotse manifests (lhotse's recipes, checked
first; the 35-word test split; VoxCeleb1's trials read offline). Errors name the file and item.

Usage:
    python -m espnet_distill.bin.prepare_kws_sv --speech-commands /data/SpeechCommands \\
        --voxceleb1 /data/VoxCeleb1 --out-dir data/manifests [--version 2] [--nj 4]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from espnet_distill.bin import add_paths, make_parser, one_line_errors
from espnet_distill.data.kws_sv import prepare_speech_commands, prepare_voxceleb1
from espnet_distill.data.librispeech import CorpusError
from espnet_distill.utils import atomic_write_text, setup_logging


@one_line_errors(CorpusError, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument(
        "--speech-commands",
        type=Path,
        help="holds speech_commands_v0.0N/ and speech_commands_test_set_v0.0N/",
    )
    parser.add_argument(
        "--voxceleb1", type=Path, help="holds wav/, vox1_meta.csv and veri_test.txt"
    )
    parser.add_argument("--version", default="2", help="Speech Commands version (1 or 2)")
    add_paths(parser, "--out-dir")
    parser.add_argument("--nj", type=int, default=1)
    args = parser.parse_args(argv)
    setup_logging()
    if not args.speech_commands and not args.voxceleb1:
        print("prepare_kws_sv: give --speech-commands, --voxceleb1 or both", file=sys.stderr)
        return 1
    counts = {}
    if args.speech_commands:
        counts["speech_commands"] = prepare_speech_commands(
            args.speech_commands, args.out_dir, args.version
        )
    if args.voxceleb1:
        counts["voxceleb1"] = prepare_voxceleb1(args.voxceleb1, args.out_dir, args.nj)
    atomic_write_text(args.out_dir / "counts.json", json.dumps(counts, indent=1) + "\n")
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
