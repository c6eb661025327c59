"""Stage 8: CTC greedy (best-path) decoding of a cut manifest with an averaged model.

Writes ``<out-dir>/text`` (Kaldi format hypotheses) and ``decode.sh`` (the exact command).

Usage:
    python -m espnet_distill.bin.decode_ctc --model exp/am_ctc_conformer/model.pt \\
        --lang-dir data/lang_bpe_256 --cuts data/fbank/cuts_test-clean.jsonl.gz \\
        --out-dir exp/am_ctc_conformer/decode_test-clean_greedy
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from espnet_distill.data.datamodule import make_loader
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.models.ctc_am import greedy_ctc
from espnet_distill.train.ctc_trainer import load_model
from espnet_distill.utils import atomic_write_text, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--max-duration", type=float, default=300.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    setup_logging()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cmd = shlex.join(
        [sys.executable, "-m", "espnet_distill.bin.decode_ctc", *(argv or sys.argv[1:])]
    )
    atomic_write_text(args.out_dir / "decode.sh", f"#!/usr/bin/env bash\n{cmd}\n")
    model, _ = load_model(args.model, args.device)
    tokenizer = BpeTokenizer(args.lang_dir / "bpe.model")
    loader = make_loader(args.cuts, None, args.max_duration, train=False, num_workers=0)
    hyps: dict[str, str] = {}
    audio_seconds, start = 0.0, time.perf_counter()
    for batch in tqdm(loader, desc=f"decoding {args.cuts.name}", unit="batch"):
        feats, lens = batch["feats"].to(args.device), batch["feat_lens"].to(args.device)
        log_probs, out_lens = model.log_probs(feats, lens)
        for utt, ids in zip(
            batch["ids"], greedy_ctc(log_probs, out_lens, tokenizer.blank_id), strict=True
        ):
            hyps[utt] = tokenizer.decode(ids)
        audio_seconds += float(lens.sum()) * 0.01
    elapsed = time.perf_counter() - start
    atomic_write_text(
        args.out_dir / "text",
        "".join(f"{u} {h}\n".rstrip(" \n") + "\n" for u, h in sorted(hyps.items())),
    )
    atomic_write_text(args.out_dir / "rtf.txt", f"{elapsed / max(audio_seconds, 1e-9):.4f}\n")
    print(f"decoded {len(hyps)} utterances, RTF {elapsed / max(audio_seconds, 1e-9):.4f}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sys.exit(main())
