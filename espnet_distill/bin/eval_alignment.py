"""Stage 4 check: phone boundaries of the triphone forced alignment vs a TTS engine's own timings.

Synthesises ``--num-utts`` sentences of ``--text`` (the valid set's transcripts; further files,
e.g. the training transcripts, are read when the first has too few sentences inside the lexicon,
as on a corpus whose lexicon covers only its training words) with ``--engine``
festival (its voices are not among the corpus voices: an unseen speaker and synthesiser) or flite
(the corpus engine, a voice of the corpus at its default pitch and rate), computes the same
fbank -> MFCC features as stage 4, force-aligns them with ``tri/`` and compares the phone
boundaries (:mod:`espnet_distill.align.quality`). Writes to ``--out-dir``:

- ``summary.yaml``: boundaries scored, fraction within the tolerance (default 20 ms), median and
  mean absolute error, mean signed error (> 0: our boundaries are late), phones matched;
  ``boundaries.tsv``: every scored boundary's signed error;
- ``boundary_errors.png``: cumulative distribution of the errors.

Usage:
    python -m espnet_distill.bin.eval_alignment --align-dir exp/align --lang-dir data/lang_phone \\
        --text data/dev_clean/text --out-dir exp/align/quality_festival [--num-utts 50] \\
        [--engine flite --voice slt]
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_distill.align.quality import evaluate_alignment
from espnet_distill.bin import make_parser, one_line_errors, require
from espnet_distill.utils import setup_logging


@one_line_errors(RuntimeError, ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--align-dir", "--lang-dir", "--out-dir")
    parser.add_argument(
        "--text",
        type=Path,
        nargs="+",
        required=True,
        help="Kaldi text(s) of the sentences, read in order",
    )
    parser.add_argument("--num-utts", type=int, default=50)
    parser.add_argument("--engine", choices=["festival", "flite"], default="festival")
    parser.add_argument("--voice", help="TTS voice (default: festival kal_diphone, flite slt)")
    parser.add_argument("--tolerance-ms", type=float, default=20.0)
    parser.add_argument("--nj", type=int, default=2)
    args = parser.parse_args(argv)
    setup_logging()
    require(args.align_dir / "tri" / "final.npz", args.lang_dir / "L.fst", *args.text, files=True)
    summary = evaluate_alignment(
        args.align_dir,
        args.lang_dir,
        args.text,
        args.out_dir,
        args.num_utts,
        args.engine,
        args.voice,
        args.tolerance_ms,
        args.nj,
    )
    voice, tolerance = summary["voice"], args.tolerance_ms
    print(
        f"alignment vs {args.engine} {voice}: {summary['within_tolerance']:.1%} of "
        f"{summary['boundaries']} phone boundaries within {tolerance:g} ms "
        f"(median {summary['median_abs_error_ms']} ms; {summary['phones_matched']:.1%} of "
        f"{args.engine}'s phones matched; {summary['utterances']} utterances)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
