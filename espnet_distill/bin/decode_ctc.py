"""Stage 8: CTC decoding of a cut manifest with an averaged model.

Methods: ``greedy`` (best path), ``beam_lm`` (prefix beam search with word n-gram fusion) and
``tlg`` (WFST search over the TLG graph of stage 7; words only from its lexicon).
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
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import time
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from espnet_distill.data.datamodule import make_loader
from espnet_distill.decode.ctc_beam import CtcPrefixBeamSearch, WordLmScorer
from espnet_distill.graph.tlg import TlgDecoder
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.models.ctc_am import greedy_ctc
from espnet_distill.score.wer import read_text_file, score_corpus
from espnet_distill.train.ctc_trainer import load_model
from espnet_distill.utils import atomic_write_text, setup_logging


def network_outputs(
    model_file: Path, cuts: Path, device: str, max_duration: float
) -> tuple[dict, float]:
    """{utt id: (T', V) log-probs as numpy}, and the audio duration in seconds."""
    model, _ = load_model(model_file, device)
    loader = make_loader(cuts, None, max_duration, train=False, num_workers=0)
    outputs, seconds = {}, 0.0
    for batch in tqdm(loader, desc=f"network {cuts.name}", unit="batch"):
        feats, lens = batch["feats"].to(device), batch["feat_lens"].to(device)
        log_probs, out_lens = model.log_probs(feats, lens)
        for utt, lp, n in zip(batch["ids"], log_probs.cpu(), out_lens.tolist(), strict=True):
            outputs[utt] = lp[:n].numpy()
        seconds += float(lens.sum()) * 0.01
    return outputs, seconds


def search(
    outputs: dict, decoder: CtcPrefixBeamSearch | None, tokenizer: BpeTokenizer, desc: str
) -> dict[str, str]:
    """Hypothesis text per utterance: greedy when ``decoder`` is None."""
    hyps = {}
    for utt, lp in tqdm(sorted(outputs.items()), desc=desc, unit="utt", mininterval=2):
        ids = (
            decoder(lp)
            if decoder is not None
            else greedy_ctc(torch.from_numpy(lp)[None], torch.tensor([len(lp)]))[0]
        )
        hyps[utt] = tokenizer.decode(ids)
    return hyps


def search_tlg(
    outputs: dict, decoder: TlgDecoder, acoustic_scale: float, blank_penalty: float
) -> dict[str, str]:
    """Hypothesis text per utterance from the WFST search."""
    desc = f"tlg acoustic_scale={acoustic_scale} blank_penalty={blank_penalty}"
    return {
        utt: " ".join(decoder(lp, acoustic_scale, blank_penalty))
        for utt, lp in tqdm(sorted(outputs.items()), desc=desc, unit="utt", mininterval=2)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--method", choices=["greedy", "beam_lm", "tlg"], default="greedy")
    parser.add_argument("--lm", type=Path, help="KenLM word n-gram (binary or ARPA) for beam_lm")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--graph-dir", type=Path, help="TLG graph dir (stage 7) for tlg")
    parser.add_argument("--graph-beam", type=float, default=16.0, help="WFST search beam")
    parser.add_argument("--max-active", type=int, default=7000, help="WFST search max. states")
    parser.add_argument("--acoustic-scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--blank-penalties", type=float, nargs="+", default=[0.0])
    parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.5])
    parser.add_argument("--word-bonuses", type=float, nargs="+", default=[1.0])
    parser.add_argument(
        "--tune-ref", type=Path, help="reference text: choose the best weights on it"
    )
    parser.add_argument("--best-from", type=Path, help="best.yaml of a tuning run: use its weights")
    parser.add_argument("--max-duration", type=float, default=300.0)
    parser.add_argument("--device", default="cpu")
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
        print(f"decode_ctc: --method tlg needs --graph-dir with TLG.fst, got {args.graph_dir}",
              file=sys.stderr)  # fmt: skip
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cmd = shlex.join(
        [sys.executable, "-m", "espnet_distill.bin.decode_ctc", *(argv or sys.argv[1:])]
    )
    atomic_write_text(args.out_dir / "decode.sh", f"#!/usr/bin/env bash\n{cmd}\n")
    tokenizer = BpeTokenizer(args.lang_dir / "bpe.model")
    start = time.perf_counter()
    outputs, seconds = network_outputs(args.model, args.cuts, args.device, args.max_duration)

    if args.method == "greedy":
        hyps = search(outputs, None, tokenizer, "greedy")
        chosen = {}
    else:
        if args.best_from:
            best = yaml.safe_load(args.best_from.read_text())
            keys = (
                ["acoustic_scale", "blank_penalty"]
                if args.method == "tlg"
                else ["lm_weight", "word_bonus"]
            )
            grid = [tuple(best[k] for k in keys)]
        elif args.method == "tlg":
            grid = list(itertools.product(args.acoustic_scales, args.blank_penalties))
        else:
            grid = list(itertools.product(args.lm_weights, args.word_bonuses))
        if len(grid) > 1 and args.tune_ref is None:
            print(
                "decode_ctc: several weight combinations need --tune-ref to choose one",
                file=sys.stderr,
            )
            return 1
        if args.method == "tlg":
            names = ("acoustic_scale", "blank_penalty")
            tlg = TlgDecoder(args.graph_dir, args.graph_beam, args.max_active)
            settings = {"graph": str(args.graph_dir), "graph_beam": args.graph_beam,
                        "max_active": args.max_active}  # fmt: skip
        else:
            names = ("lm_weight", "word_bonus")
            lm = WordLmScorer(str(args.lm))
            pieces = [tokenizer.sp.id_to_piece(i) for i in range(tokenizer.vocab_size)]
            settings = {"beam": args.beam, "lm": str(args.lm)}
        results = []
        for combo in grid:
            if args.method == "tlg":
                hyps = search_tlg(outputs, tlg, *combo)
            else:
                weight, bonus = combo
                decoder = CtcPrefixBeamSearch(
                    pieces, tokenizer.blank_id, args.beam, lm=lm, lm_weight=weight,
                    word_bonus=bonus,
                )  # fmt: skip
                desc = f"beam lm_weight={weight} word_bonus={bonus}"
                hyps = search(outputs, decoder, tokenizer, desc)
            wer = (
                score_corpus(read_text_file(args.tune_ref), hyps).totals()["err"]
                if args.tune_ref
                else float("nan")
            )
            results.append((wer, combo, hyps))
        if args.tune_ref:
            atomic_write_text(
                args.out_dir / "grid.tsv",
                "\t".join([*names, "wer"])
                + "\n"
                + "".join("\t".join([*map(str, c), f"{e:.2f}"]) + "\n" for e, c, _ in results),
            )
        wer, combo, hyps = min(results, key=lambda r: (r[0], r[1]))
        chosen = {**dict(zip(names, combo, strict=True)), **settings}
        if args.tune_ref:
            chosen["tuned_on"] = str(args.tune_ref)
            chosen["tuned_wer"] = round(wer, 2)
        atomic_write_text(args.out_dir / "best.yaml", yaml.safe_dump(chosen, sort_keys=False))
    elapsed = time.perf_counter() - start
    atomic_write_text(
        args.out_dir / "text", "".join(f"{u} {h}".rstrip() + "\n" for u, h in sorted(hyps.items()))
    )
    rtf = elapsed / max(seconds, 1e-9)
    atomic_write_text(args.out_dir / "rtf.txt", f"{rtf:.4f}\n")
    print(
        f"decoded {len(hyps)} utterances with {args.method} {chosen or ''} RTF {rtf:.4f} (all settings tried)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
