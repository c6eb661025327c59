"""Acoustic-model training efficiency: model FLOPs utilisation (MFU) of one training step, and how
much of a step the data pipeline costs, measured in one run.

- FLOPs of a step (forward + backward) are counted by ``torch.utils.flop_counter`` on real batches
  of the recipe's loader (the same cuts, targets and config as stage 6);
- the ceiling is the best fp32 matrix-multiply rate of this CPU at the same thread count, measured
  in the same run (square matmuls of several sizes);
- MFU = (step FLOPs / step time) / ceiling, the step being forward, backward, gradient clipping
  and the AdamW update on batches already in memory;
- the data pipeline: the loader's time per batch alone (decompressing features, targets, padding),
  and a step fed by the loader (num_workers as configured) against one fed from memory.

The performance issue's target: MFU >= 40% for the default AM on this CPU.

Usage (from egs/synth/asr1, after stage 4 of the corpus):
    python ../../../bench/train_mfu.py --config conf/train_conformer_ctc_senone.yaml \\
        --data-dir data/full --targets-dir exp/full/align/targets [--threads 2] [--steps 8]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from espnet_distill.align.targets import UNITS
from espnet_distill.asr.trainer import DEFAULT_CONFIG
from espnet_distill.config import load_config, merge_config
from espnet_distill.data.datamodule import make_loader
from espnet_distill.kd.units import read_units
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.models.acoustic_model import build_model


def matmul_ceiling(seconds: float = 2.0) -> tuple[float, int]:
    """Best fp32 GEMM FLOP/s over a few square sizes, and the size that reached it."""
    best, best_n = 0.0, 0
    for n in (256, 512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 4:
            torch.mm(a, b)
            reps += 1
        rate = 2 * n**3 * reps / (time.perf_counter() - t0)
        if rate > best:
            best, best_n = rate, n
    return best, best_n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="fbank/, lang_bpe_<N>/")
    parser.add_argument(
        "--targets-dir", type=Path, help="stage 4's targets (a senone head needs them)"
    )
    parser.add_argument("--train-set", default="train-clean-100")
    parser.add_argument("--bpe-vocab-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=8, help="timed steps (after 2 warm-up steps)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = merge_config(DEFAULT_CONFIG, load_config(args.config))
    tc, m = config["train"], config["model"]
    tokenizer = BpeTokenizer(args.data_dir / f"lang_bpe_{args.bpe_vocab_size}" / "bpe.model")
    targets, num_senones = {}, None
    if m.get("senone_head"):
        targets = {"senone": args.targets_dir / "senone.scp"}
        num_senones = len(read_units(UNITS["senone"].vocabulary(args.targets_dir)))
    loader = make_loader(
        args.data_dir / "fbank" / f"cuts_{args.train_set}.jsonl.gz",
        tokenizer,
        tc["max_duration"],
        train=True,
        seed=0,
        num_workers=tc["num_workers"],
        max_cut_duration=tc["max_cut_duration"],
        targets=targets,
    )
    n = args.steps + 2
    batches = list(itertools.islice(iter(loader), n))
    model = build_model(config, tokenizer.vocab_size, num_senones).train()
    stats = np.load(args.data_dir / "fbank" / "cmvn.npz")
    model.set_cmvn(torch.from_numpy(stats["mean"]), torch.from_numpy(stats["std"]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch: dict) -> None:
        out = model(
            batch["feats"],
            batch["feat_lens"],
            batch.get("ys"),
            batch.get("ys_lens"),
            batch.get("senone_targets"),
            {},
        )
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc["grad_clip"])
        opt.step()

    flops = []
    for batch in batches[:2]:  # warm-up, and the FLOP count of real batches
        with FlopCounterMode(display=False) as counter:
            step(batch)
        flops.append(counter.get_total_flops())
    flops_per_second_of_audio = sum(flops) / sum(float(b["durations"].sum()) for b in batches[:2])
    t0 = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    step_time = (time.perf_counter() - t0) / args.steps
    audio = sum(float(b["durations"].sum()) for b in batches[2:]) / args.steps
    step_flops = flops_per_second_of_audio * audio
    # the loader alone, and steps fed by it (a fresh iterator each: the timing includes start-up)
    t0 = time.perf_counter()
    for _ in itertools.islice(iter(loader), args.steps):
        pass
    load_time = (time.perf_counter() - t0) / args.steps
    t0 = time.perf_counter()
    for batch in itertools.islice(iter(loader), args.steps):
        step(batch)
    fed_time = (time.perf_counter() - t0) / args.steps
    ceiling, size = matmul_ceiling()
    achieved = step_flops / step_time
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {args.config.name}, {params / 1e6:.2f}M parameters; {args.threads} threads; "
        f"batches of ~{audio:.0f} s of audio (max_duration {tc['max_duration']})"
    )
    print("| measure | value |")
    print("|---|---|")
    print(f"| FLOPs per training step (forward + backward) | {step_flops / 1e9:.1f} G |")
    print(f"| step time, batches in memory | {step_time:.3f} s |")
    print(f"| achieved | {achieved / 1e9:.1f} GFLOP/s |")
    print(f"| fp32 matmul ceiling ({size}x{size}) | {ceiling / 1e9:.1f} GFLOP/s |")
    print(f"| **MFU** | **{100 * achieved / ceiling:.1f}%** |")
    print(f"| loader alone, per batch (num_workers {tc['num_workers']}) | {load_time:.3f} s |")
    print(f"| step fed by the loader / step from memory | {fed_time / step_time:.2f} |")


if __name__ == "__main__":
    main()
