"""Stage 8: WFST decoding over HCLG with a senone model: the stage-4 triphone GMM-HMM, or with
``--model`` a hybrid neural network (stage 6, ``model.senone_head``) whose log posteriors minus log
priors are the pseudo log-likelihoods. Both use the stage-4 transition model (``tri/``).

The acoustic scale (1 / LM weight, Kaldi's LMWT sweep) is chosen on ``--tune-ref`` from
``--acoustic-scales``; test sets reuse it with ``--best-from``. ``--graph-backend k2`` searches with
k2, and ``--rescore-lm`` rescores its lattices with a larger word n-gram (``--lm-scales``). Writes the decode dir files of
:mod:`espnet_distill.decode.tuning`.

Usage:
    python -m espnet_distill.bin.decode_hclg --align-dir exp/align --lang-dir data/lang_phone \\
        --graph-dir data/graph_hclg_3gram --cuts data/fbank/cuts_dev-clean.jsonl.gz \\
        --tune-ref data/dev_clean/text --acoustic-scales 0.07 0.1 0.13 \\
        --out-dir exp/align/tri/decode_dev-clean_hclg
    python -m espnet_distill.bin.decode_hclg ... --model exp/am/model.pt \\
        --out-dir exp/am/decode_dev-clean_hclg
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lhotse import CutSet
from tqdm import tqdm

from espnet_distill.align.features import load_align_features
from espnet_distill.align.trainer import GmmSystem, Lang
from espnet_distill.bin import (
    add_graph_backend,
    add_paths,
    device_of,
    make_parser,
    one_line_errors,
    require,
)
from espnet_distill.config import DECODE_DEFAULTS
from espnet_distill.decode.network import hybrid_scores
from espnet_distill.decode.searches import Hclg, decode_set
from espnet_distill.decode.tuning import write_command, write_hypotheses
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--align-dir", type=Path, required=True, help="stage 4 dir (tri/)")
    add_paths(parser, "--lang-dir", "--graph-dir", "--cuts", "--out-dir")
    parser.add_argument("--model", type=Path, help="hybrid network (default: the GMM of tri/)")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: the first GPU")
    parser.add_argument("--max-duration", type=float, default=60.0, help="network batch (s)")
    parser.add_argument("--acoustic-scales", type=float, nargs="+", default=[0.1])
    parser.add_argument(
        "--beam", type=float, default=DECODE_DEFAULTS["hclg_beam"], help="search beam"
    )
    parser.add_argument("--max-active", type=int, default=DECODE_DEFAULTS["max_active"])
    add_graph_backend(parser)
    add_paths(parser, "--tune-ref", "--best-from", required=False)
    args = parser.parse_args(argv)
    setup_logging()
    inputs = [args.graph_dir / "HCLG.fst", args.align_dir / "tri" / "final.npz", args.cuts]
    require(*inputs, args.model, args.rescore_lm, files=True)
    write_command(args.out_dir, "espnet_distill.bin.decode_hclg", argv)
    start = time.perf_counter()
    lang = Lang.load(args.lang_dir)
    tri = GmmSystem.load(args.align_dir / "tri", lang)
    cuts = CutSet.from_file(args.cuts).to_eager()
    if args.model:
        try:
            scores = hybrid_scores(
                args.model, args.cuts, tri.tree.num_pdfs, device_of(args.ngpu), args.max_duration
            )
        except ValueError as err:
            print(f"decode_hclg: {args.model}: {err}", file=sys.stderr)
            return 1
    else:
        feats = load_align_features(cuts)
        scores = {
            c.id: tri.gmm.loglikes(feats[c.id]) for c in tqdm(cuts, desc="GMM log-likelihoods")
        }
    seconds = sum(c.duration for c in cuts)
    model = f"hybrid {args.model}" if args.model else "tri GMM-HMM"
    search = Hclg(
        args.graph_dir,
        tri.tm,
        args.beam,
        args.max_active,
        model,
        args.graph_backend,
        args.rescore_lm,
        args.lang_dir,
    )
    values = [args.acoustic_scales] + ([args.lm_scales] if args.rescore_lm else [])
    hyps, chosen = decode_set(scores, search, values, args.best_from, args.tune_ref, args.out_dir)
    rtf = write_hypotheses(args.out_dir, hyps, time.perf_counter() - start, seconds)
    print(f"decoded {len(hyps)} utterances over HCLG {chosen} RTF {rtf:.4f} (all settings tried)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
