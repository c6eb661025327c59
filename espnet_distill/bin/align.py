"""Stage 4: GMM-HMM alignment (monophone -> triphone tree) and frame targets in three units.

Trains on the original-speed training cuts (speed-perturbed copies ``*_sp<f>`` are aligned, not
trained on, as Kaldi aligns ``train_sp`` with a GMM trained on ``train``), then aligns every cut
of ``--cuts`` and ``--extra-cuts`` (the valid set) with the triphone system and writes, under
``--exp-dir``:

- ``mono/``, ``tri/``: ``tree.json`` + readable ``tree.txt``, ``final.npz``, ``train_log.tsv``,
  ``ali.npz`` (transition ids per utterance; a rerun resumes after the last finished system)
- ``targets/{senone,monophone,subword}.{ark,scp}`` (kaldiio int32 vectors, one per cut) and
  ``targets/units/{senone,monophone,subword}.txt``
- ``failed.txt``: cuts not aligned, with the reason (also counted in the log)

Usage:
    python -m espnet_distill.bin.align --lang-dir data/lang_phone \\
        --cuts data/fbank/cuts_train-clean-100.jsonl.gz --bpe-model data/lang_bpe_100/bpe.model \\
        --exp-dir exp/align [--nj 2] [--num-leaves 500] [--mono-iters 10] [--tri-iters 10]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lhotse import CutSet

from espnet_distill.align.features import load_align_features
from espnet_distill.align.targets import is_original_speed, write_targets
from espnet_distill.align.trainer import (
    Aligner,
    GmmSystem,
    Lang,
    load_alignments,
    save_alignments,
    train_mono,
    train_tri,
)
from espnet_distill.bin import add_bool, make_parser, one_line_errors, require
from espnet_distill.utils import atomic_write_text, setup_logging

log = logging.getLogger(__name__)


@one_line_errors()
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--lang-dir", "--bpe-model", "--exp-dir")
    parser.add_argument("--cuts", type=Path, required=True, help="training cuts with fbank")
    parser.add_argument(
        "--extra-cuts",
        type=Path,
        nargs="*",
        default=[],
        help="also aligned by the final triphone system, never trained on "
        "(the valid set: validation loss of hybrid models)",
    )
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument(
        "--mono-subset",
        type=int,
        default=0,
        help="train monophones on the N shortest utterances (Kaldi's habit); 0: all",
    )
    parser.add_argument("--mono-iters", type=int, default=10)
    parser.add_argument("--mono-totgauss", type=int, default=1000)
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (the equal alignments EM starts from)"
    )
    parser.add_argument("--tri-iters", type=int, default=10)
    parser.add_argument("--num-leaves", type=int, default=500)
    parser.add_argument("--tri-totgauss", type=int, default=3000)
    add_bool(
        parser,
        "--phone-classes",
        "tree questions from the ARPAbet class table too (false: phone clustering only)",
        default=True,
    )
    args = parser.parse_args(argv)
    setup_logging()
    require(args.lang_dir / "L.fst", args.cuts, args.bpe_model, *args.extra_cuts)
    lang = Lang.load(args.lang_dir)
    names = {i: p for p, i in lang.phones.items()}
    cuts = CutSet.from_file(args.cuts)
    train_cuts = cuts.filter(is_original_speed).to_eager()
    log.info("computing MFCC+deltas of %d training cuts", len(train_cuts))
    feats = load_align_features(train_cuts)
    utts, n_oov = {}, 0
    for cut in train_cuts:
        ids, oov = lang.word_ids(" ".join(s.text for s in cut.supervisions).split())
        n_oov += oov
        utts[cut.id] = (ids, feats[cut.id])
    log.info("%d training utterances, %d OOV words mapped to <unk>", len(utts), n_oov)
    aligner = Aligner(lang, utts, nj=args.nj)

    mono_dir, tri_dir = args.exp_dir / "mono", args.exp_dir / "tri"
    if (mono_dir / "ali.npz").is_file():
        log.info("%s exists: monophone system is trained", mono_dir / "ali.npz")
        mono, mono_alis = GmmSystem.load(mono_dir, lang), load_alignments(mono_dir / "ali.npz")
    else:
        mono_aligner = aligner
        if 0 < args.mono_subset < len(utts):
            shortest = sorted(utts, key=lambda u: (len(utts[u][1]), u))[: args.mono_subset]
            mono_aligner = Aligner(lang, {u: utts[u] for u in shortest}, nj=args.nj)
            log.info("monophones on the %d shortest utterances", len(shortest))
        mono, mono_alis = train_mono(
            lang, mono_aligner, args.mono_iters, args.mono_totgauss, seed=args.seed
        )
        if mono_aligner is not aligner:
            # the triphone tree needs the monophone alignment of every training utterance
            mono_alis, *_ = aligner.iteration(
                mono, True, None, "mono alignment of all", accumulate=False
            )
        mono.save(mono_dir)
        atomic_write_text(mono_dir / "tree.txt", mono.tree.dump(names))
        save_alignments(mono_alis, mono_dir / "ali.npz")
    if (tri_dir / "ali.npz").is_file():
        log.info("%s exists: triphone system is trained", tri_dir / "ali.npz")
        tri = GmmSystem.load(tri_dir, lang)
    else:
        tri, tri_alis, totals = train_tri(
            lang,
            aligner,
            mono,
            mono_alis,
            args.num_leaves,
            args.tri_totgauss,
            args.tri_iters,
            use_phone_classes=args.phone_classes,
            phone_names=names,
        )
        tri.save(tri_dir)
        atomic_write_text(tri_dir / "tree.txt", tri.tree.dump(names))
        atomic_write_text(
            tri_dir / "tree_stats.tsv", "".join(f"{k}\t{v:.6g}\n" for k, v in totals.items())
        )
        save_alignments(tri_alis, tri_dir / "ali.npz")

    if aligner.failed:
        log.info(
            "%d training cuts could not be aligned at some iteration (see the log)",
            len(aligner.failed),
        )
    for extra in args.extra_cuts:
        cuts = cuts + CutSet.from_file(extra)
    write_targets(args.exp_dir, args.lang_dir, args.bpe_model, lang, tri, cuts, args.nj)
    return 0


if __name__ == "__main__":
    sys.exit(main())
