"""Stage 8: CTC decoding of a cut manifest with an averaged model.

Methods: ``greedy`` (best path), ``beam_lm`` (prefix beam search with word n-gram fusion) and
``tlg`` (WFST search over the TLG graph of stage 7; words only from its lexicon), by kaldi-decoder
or with ``--graph-backend k2`` by k2, whose lattices ``--rescore-lm`` rescores with a larger word
n-gram (``--lm-scales`` tuned like the other weights).
With ``--tune-ref`` (the dev set's Kaldi text) and several ``--lm-weights``/``--word-bonuses`` (for
``tlg``: ``--acoustic-scales``), every combination is decoded and scored, ``grid.tsv`` lists them and ``best.yaml`` keeps the best one; the
test sets are then decoded with ``--best-from <dev decode dir>/best.yaml``. The network runs once per
utterance; the search reuses its outputs for every combination.

Writes ``<out-dir>/text`` (Kaldi format hypotheses), ``decode.sh`` (the exact command), ``rtf.txt``.

Usage:
    python -m espnet_distill.bin.decode_ctc --model exp/am/model.pt --lang-dir data/lang_bpe_100 \\
        --cuts data/fbank/cuts_test-clean.jsonl.gz --out-dir exp/am/decode_test-clean_greedy
    python -m espnet_distill.bin.decode_ctc ... --method beam_lm --lm data/lm/word_3gram.bin \\
        --cuts data/fbank/cuts_dev-clean.jsonl.gz --tune-ref data/dev_clean/text \\
        --lm-weights 0.3 0.6 0.9 --word-bonuses 0 1 2 --out-dir exp/am/decode_dev-clean_beam_lm
    python -m espnet_distill.bin.decode_ctc ... --method tlg --graph-dir data/graph_tlg_3gram \
        --acoustic-scales 0.8 1.0 1.2 --tune-ref data/dev_clean/text --out-dir ...
    python -m espnet_distill.bin.decode_ctc ... --method tlg --graph-backend k2 \
        --rescore-lm data/lm/word_4gram.arpa --lm-scales 0.6 0.8 1.0 1.2 ...
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from espnet_distill.bin import (
    add_graph_backend,
    device_of,
    make_parser,
    one_line_errors,
    require,
)
from espnet_distill.config import DECODE_DEFAULTS
from espnet_distill.decode.network import network_outputs
from espnet_distill.decode.searches import CtcBeamLm, GreedyCtc, Search, Tlg, decode_set
from espnet_distill.decode.tuning import write_command, write_hypotheses
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.utils import setup_logging


@one_line_errors(ValueError)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--model", "--lang-dir", "--cuts", "--out-dir")
    parser.add_argument("--method", choices=["greedy", "beam_lm", "tlg"], default="greedy")
    parser.add_argument("--lm", type=Path, help="KenLM word n-gram (binary or ARPA) for beam_lm")
    parser.add_argument("--beam", type=int, default=DECODE_DEFAULTS["beam"])
    parser.add_argument("--graph-dir", type=Path, help="TLG graph dir (stage 7) for tlg")
    parser.add_argument(
        "--graph-beam", type=float, default=DECODE_DEFAULTS["graph_beam"], help="WFST search beam"
    )
    parser.add_argument(
        "--max-active",
        type=int,
        default=DECODE_DEFAULTS["max_active"],
        help="WFST search max. states",
    )
    add_graph_backend(parser)
    parser.add_argument("--acoustic-scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--blank-penalties", type=float, nargs="+", default=[0.0])
    parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.5])
    parser.add_argument("--word-bonuses", type=float, nargs="+", default=[1.0])
    parser.add_argument(
        "--tune-ref", type=Path, help="reference text: choose the best weights on it"
    )
    parser.add_argument("--best-from", type=Path, help="best.yaml of a tuning run: use its weights")
    parser.add_argument("--max-duration", type=float, default=300.0)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU; 1: the first GPU")
    args = parser.parse_args(argv)
    setup_logging()
    if args.method == "beam_lm" and (args.lm is None or not args.lm.is_file()):
        print(
            f"decode_ctc: --method beam_lm needs an existing --lm file, got {args.lm}",
            file=sys.stderr,
        )
        return 1
    if args.method == "tlg" and (
        args.graph_dir is None or not (args.graph_dir / "TLG.fst").is_file()
    ):
        print(
            f"decode_ctc: --method tlg needs --graph-dir with TLG.fst, got {args.graph_dir}",
            file=sys.stderr,
        )
        return 1
    require(args.rescore_lm, files=True)
    write_command(args.out_dir, "espnet_distill.bin.decode_ctc", argv)
    tokenizer = BpeTokenizer(args.lang_dir / "bpe.model")
    start = time.perf_counter()
    outputs, seconds = network_outputs(
        args.model, args.cuts, device_of(args.ngpu), args.max_duration
    )

    if args.method == "tlg":
        search: Search = Tlg(
            args.graph_dir, args.graph_beam, args.max_active, args.graph_backend, args.rescore_lm
        )
        values = [args.acoustic_scales, args.blank_penalties]
        if args.rescore_lm:
            values.append(args.lm_scales)
    elif args.method == "beam_lm":
        search = CtcBeamLm(tokenizer, args.lm, args.beam)
        values = [args.lm_weights, args.word_bonuses]
    else:
        search, values = GreedyCtc(tokenizer), []
    hyps, chosen = decode_set(outputs, search, values, args.best_from, args.tune_ref, args.out_dir)
    rtf = write_hypotheses(args.out_dir, hyps, time.perf_counter() - start, seconds)
    print(
        f"decoded {len(hyps)} utterances with {args.method} {chosen or ''} RTF {rtf:.4f} (all settings tried)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
