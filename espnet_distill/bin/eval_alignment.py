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

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

from espnet_distill.align.features import load_align_features
from espnet_distill.align.hmm import phone_segments
from espnet_distill.align.quality import (
    FRAME_SHIFT,
    PhoneSegment,
    compare_boundaries,
    pick_sentences,
    plot_cdf,
    synthesize_festival,
    synthesize_flite,
    tts_cuts,
    tts_to_arpabet,
)
from espnet_distill.align.trainer import Aligner, GmmSystem, Lang
from espnet_distill.bin import add_paths, make_parser, one_line_errors, require
from espnet_distill.lang.phone_lang import SIL, SPN, base_phone
from espnet_distill.utils import atomic_write_text, setup_logging

log = logging.getLogger(__name__)


@one_line_errors()
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    add_paths(parser, "--align-dir", "--lang-dir", "--out-dir")
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
    voice = args.voice or {"festival": "kal_diphone", "flite": "slt"}[args.engine]
    if shutil.which(args.engine) is None:
        print(
            f"eval_alignment: {args.engine} is not installed (tools/install.sh installs it)",
            file=sys.stderr,
        )
        return 1
    require(args.align_dir / "tri" / "final.npz", args.lang_dir / "L.fst", *args.text, files=True)
    lang = Lang.load(args.lang_dir)
    tri = GmmSystem.load(args.align_dir / "tri", lang)
    texts, skipped = pick_sentences(args.text, set(lang.words), args.num_utts)
    if not texts:
        print(
            f"eval_alignment: {' '.join(map(str, args.text))}: no sentence has all its words "
            "in the lexicon",
            file=sys.stderr,
        )
        return 1
    log.info(
        "%s (%s): %d sentences of %s (%d skipped: words outside the lexicon)",
        args.engine,
        voice,
        len(texts),
        " ".join(map(str, args.text)),
        skipped,
    )
    audio_dir = args.out_dir / "audio"
    synthesize = synthesize_festival if args.engine == "festival" else synthesize_flite
    try:
        audio = synthesize(texts, audio_dir, voice)
    except (RuntimeError, ValueError) as err:  # the TTS engine failed
        print(f"eval_alignment: {err}", file=sys.stderr)
        return 1
    cuts = tts_cuts(audio, texts, audio_dir, f"{args.engine}-{voice}")
    feats = load_align_features(cuts)
    utts = {c.id: (lang.word_ids(texts[c.id].split())[0], feats[c.id]) for c in cuts}
    aligner = Aligner(lang, utts, nj=args.nj)
    alis, *_ = aligner.iteration(tri, True, None, "festival alignment", accumulate=False)

    names = {i: p for p, i in lang.phones.items()}
    rows, all_errors, ref_phones, matched = [], [], 0, 0
    for uid in sorted(alis):
        ref = tts_to_arpabet(audio[uid][1])
        hyp = [
            PhoneSegment(base_phone(names[p]), s * FRAME_SHIFT, e * FRAME_SHIFT)
            for p, s, e in phone_segments(alis[uid].tids, tri.tm)
            if base_phone(names[p]) not in (SIL, SPN)
        ]
        cmp = compare_boundaries(ref, hyp)
        ref_phones += cmp.ref_phones
        matched += cmp.matched_phones
        all_errors.append(cmp.errors)
        rows += [f"{uid}\t{e * 1000:.1f}\n" for e in cmp.errors]  # signed: > 0 is late
    errors_ms = np.concatenate(all_errors) * 1000 if all_errors else np.zeros(0)
    if not len(errors_ms):
        print("eval_alignment: no boundary could be scored (no utterance aligned)", file=sys.stderr)
        return 1
    abs_ms = np.abs(errors_ms)
    summary = {
        "engine": args.engine,
        "voice": voice,
        "utterances": len(alis),
        "not_aligned": len(texts) - len(alis),
        "boundaries": int(len(errors_ms)),
        "tolerance_ms": args.tolerance_ms,
        # times are multiples of 10 ms or 1 ms: a 1e-6 ms margin keeps 20.000000001 inside
        "within_tolerance": round(float((abs_ms <= args.tolerance_ms + 1e-6).mean()), 4),
        "median_abs_error_ms": round(float(np.median(abs_ms)), 1),
        "mean_abs_error_ms": round(float(abs_ms.mean()), 1),
        "mean_signed_error_ms": round(float(errors_ms.mean()), 1),
        "phones_matched": round(matched / max(ref_phones, 1), 4),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out_dir / "boundaries.tsv", "utt\terror_ms\n" + "".join(rows))
    atomic_write_text(args.out_dir / "summary.yaml", yaml.safe_dump(summary, sort_keys=False))
    plot_cdf(
        abs_ms,
        args.tolerance_ms,
        args.out_dir / "boundary_errors.png",
        f"tri alignment vs {args.engine} {voice}: {summary['within_tolerance']:.1%} "
        f"within {args.tolerance_ms:g} ms ({len(errors_ms)} boundaries)",
    )
    print(
        f"alignment vs {args.engine} {voice}: {summary['within_tolerance']:.1%} of "
        f"{summary['boundaries']} phone boundaries within {args.tolerance_ms:g} ms "
        f"(median {summary['median_abs_error_ms']} ms; {summary['phones_matched']:.1%} of "
        f"{args.engine}'s phones matched; {summary['utterances']} utterances)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
