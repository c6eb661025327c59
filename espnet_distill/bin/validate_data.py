"""Validate lhotse manifests or a Kaldi data dir; with --fix true, keep only the clean items.

Checks each item for missing/unreadable/corrupt audio, zero or too-short duration, a wrong sample
rate or channel count, NaN/inf samples (or feature values), empty or non-UTF-8 transcripts,
characters outside the unit inventory (--charset), duplicated or mismatched ids, supervisions
outside their recording, unsorted Kaldi files; and reports the OOV rate of each part against the
words of --vocab-part (the training transcripts) or of --lexicon.

Without --fix true, problems are printed one a line (``<item>: <reason>``) and the exit status is 1.
With --fix true, manifests (or Kaldi files) are rewritten without the bad items; the dropped ones are
added, with their reasons, to the part's one rejected list ``rejected_<part>.txt`` (where corpus
preparation listed its own, and stage 2 adds its), the counts go to ``validation_<part>.json``
(Kaldi dirs: ``validation.rejected.txt``/``.json`` in the dir, originals in ``.backup/``).

Usage:
    python -m espnet_distill.bin.validate_data --manifest-dir data/manifests \\
        --parts train-clean-100 dev-clean test-clean --vocab-part train-clean-100 [--fix true]
    python -m espnet_distill.bin.validate_data --kaldi-dir data/dev_clean [--fix true]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from espnet_distill.bin import add_bool, add_paths, make_parser, one_line_errors
from espnet_distill.data.librispeech import write_manifests
from espnet_distill.data.validate import (
    DEFAULT_CHARSET,
    Expect,
    ValidationError,
    ValidationReport,
    validate_kaldi_dir,
    validate_manifests,
    write_summary,
)
from espnet_distill.utils import add_rejected, setup_logging

SHOW = 20  # problems printed before "... N more"


def _print_problems(report: ValidationReport) -> None:
    lines = report.lines()
    for line in lines[:SHOW]:
        print(line, file=sys.stderr)
    if len(lines) > SHOW:
        print(f"... and {len(lines) - SHOW} more", file=sys.stderr)


def _log_report(report: ValidationReport, where: str) -> None:
    oov = f", OOV rate {100 * report.oov_rate:.2f}%" if report.oov_rate is not None else ""
    kept = f", kept {report.kept}" if report.kept is not None else ""
    logging.info(
        "%s: %d utterances, %d problems%s%s%s",
        report.name,
        report.total,
        len(report.problems),
        kept,
        oov,
        f" (listed in {where})" if where else "",
    )
    for kind, n in report.kinds().most_common():
        logging.info("  %5d  %s", n, kind)


def _lexicon_words(path: Path) -> set[str]:
    return {line.split(maxsplit=1)[0] for line in path.read_text().splitlines() if line.strip()}


@one_line_errors(ValidationError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    src = parser.add_mutually_exclusive_group(required=True)
    add_paths(src, "--manifest-dir", "--kaldi-dir", required=False)
    parser.add_argument("--parts", nargs="+", default=[])
    parser.add_argument("--prefix", default="librispeech")
    add_bool(parser, "--fix", "drop bad items, list them with reasons")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--min-duration", type=float, default=0.1)
    parser.add_argument(
        "--charset",
        default=DEFAULT_CHARSET,
        help="allowed transcript characters, a regex class body; '' for no check",
    )
    add_bool(
        parser,
        "--read-samples",
        "decode the audio (false: headers only, faster, misses NaN/corrupt)",
        default=True,
    )
    vocab = parser.add_mutually_exclusive_group()
    vocab.add_argument("--vocab-part", help="OOV rate against this part's transcript words")
    vocab.add_argument("--lexicon", type=Path, help="OOV rate against this lexicon's words")
    parser.add_argument(
        "--max-oov-rate",
        type=float,
        default=None,
        help="an error when a part's OOV rate is higher (a fraction)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    expect = Expect(
        args.sample_rate, args.channels, args.min_duration, args.charset or None, args.read_samples
    )
    words = _lexicon_words(args.lexicon) if args.lexicon else None
    if args.kaldi_dir:
        reports = [validate_kaldi_dir(args.kaldi_dir, expect, words, fix=args.fix)]
        _log_report(reports[0], str(args.kaldi_dir / "validation.rejected.txt") if args.fix else "")
    else:
        if not args.parts:
            parser.error("--manifest-dir needs --parts")
        parts = list(args.parts)
        if args.vocab_part:  # the vocabulary's part first, so the others are measured on it
            parts = [args.vocab_part] + [p for p in parts if p != args.vocab_part]
        reports = []
        for part in parts:
            files = [
                args.manifest_dir / f"{args.prefix}_{kind}_{part}.jsonl.gz"
                for kind in ("recordings", "supervisions")
            ]
            absent = [str(f) for f in files if not f.is_file()]
            if absent:
                raise ValidationError(f"part {part}: missing {', '.join(absent)}")
            report, recs, sups = validate_manifests(
                files[0], files[1], expect, None if part == args.vocab_part else words, part
            )
            if part == args.vocab_part:
                words = {w for s in sups for w in s.text.split()}
            where = ""
            if args.fix:
                report.kept = len(sups)
                if report.problems:
                    if not len(sups):
                        raise ValidationError(
                            f"part {part}: every item has a problem, e.g. {report.lines()[0]}"
                        )
                    write_manifests(recs, sups, args.manifest_dir, args.prefix, part)
                rejected = args.manifest_dir / f"rejected_{part}.txt"
                before = len(rejected.read_text().splitlines()) if rejected.is_file() else 0
                total = add_rejected(rejected, report.lines())
                write_summary(report, args.manifest_dir / f"validation_{part}.json")
                where = (
                    f"{rejected}: {total} in all, {before} from corpus preparation"
                    if before
                    else str(rejected)
                )
            _log_report(report, where)
            reports.append(report)
    status = 0
    if not args.fix and any(r.problems for r in reports):
        for r in reports:
            _print_problems(r)
        n = sum(len(r.problems) for r in reports)
        print(
            f"validate_data: {n} problems (rerun with --fix true to drop the bad items)",
            file=sys.stderr,
        )
        status = 1
    if args.max_oov_rate is not None:
        for r in reports:
            if r.oov_rate is not None and r.oov_rate > args.max_oov_rate:
                print(
                    f"validate_data: {r.name}: OOV rate {r.oov_rate:.4f} > --max-oov-rate "
                    f"{args.max_oov_rate} (most frequent: {', '.join(r.oov_words)})"[:400],
                    file=sys.stderr,
                )
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
