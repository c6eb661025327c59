"""Student vs teacher: parameters, CPU inference time and memory, as ratios measured in one run on
the same audio (the upstream forward, ``hidden_states``, one utterance at a time; the models
interleaved in each round, the best of the rounds kept). Memory: the peak resident memory a
forward pass of the longest utterance adds, measured in a fresh process per model (the growth of
its maximum RSS over the model loaded and warmed up on a short input).

Denormal floats are flushed to zero for every model (``--keep-denormals`` to keep them): x86 CPUs
compute with denormals 10-100x slower, and a decaying recurrent state can reach that range.

Targets of the HuBERT distillation issue: the LSTM-DKD student at <= 20% of the teacher's
parameters and >= 4x faster on CPU.

Trained upstreams (the recipe's exp dir) or, with ``--configs``, upstreams built from the
recipe's configs with random weights: speed and size depend on the architecture only, so the
ratios hold before anything is trained.

Usage:
    python bench/ssl_speed.py --exp-dir egs/synth/ssl1/exp/demo \\
        --cuts egs/synth/ssl1/exp/demo/data/cuts_test-clean.jsonl.gz [--teacher PATH] [--threads 1]
    python bench/ssl_speed.py --configs egs/synth/ssl1/conf --cuts CUTS [--num-clusters 100]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet, RecordingSet, load_manifest

from espnet_distill.config import load_config, merge_config
from espnet_distill.models.hubert import HubertModel
from espnet_distill.models.upstream import load_upstream, upstream_parameters
from espnet_distill.ssl.report import inference_seconds
from espnet_distill.ssl.trainer import DEFAULT_CONFIG, make_ssl_module


def models_from_configs(conf_dir: Path, students: list[str], num_clusters: int) -> dict:
    """The teacher of ``hubert_pretrain.yaml`` and the students of ``distill_<name>.yaml``, built
    as the trainer builds them (same widths, same parameter matching), with random weights."""
    model = load_config(conf_dir / "hubert_pretrain.yaml")["model"]
    teacher = HubertModel(model["encoder"], num_clusters, model.get("final_dim", 256)).eval()
    models = {"teacher": teacher}
    for name in students:
        config = merge_config(DEFAULT_CONFIG, load_config(conf_dir / f"distill_{name}.yaml"))
        models[name] = make_ssl_module(config, 1, teacher).net.eval()
    return models


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exp-dir", type=Path, help="trained upstreams: <exp-dir>/<name>/model.pt")
    source.add_argument("--configs", type=Path, help="the recipe's conf dir: untrained upstreams")
    parser.add_argument(
        "--num-clusters",
        type=int,
        default=100,
        help="--configs: the teacher's k-means clusters (LSTM output size)",
    )
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, help="default: <exp-dir>/teacher/model.pt")
    parser.add_argument(
        "--students", nargs="+", default=["distilhubert", "lstm_kd", "lstm_dkd", "deep", "wide"]
    )
    parser.add_argument("--utts", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument(
        "--keep-denormals",
        action="store_true",
        help="do not flush denormal floats to zero (see the module doc)",
    )
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child process of a measurement
    args = parser.parse_args()
    if not args.keep_denormals:
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    if args.configs:
        models = models_from_configs(args.configs, args.students, args.num_clusters)
    else:
        paths = {"teacher": args.teacher or args.exp_dir / "teacher" / "model.pt"}
        paths.update(
            {
                s: args.exp_dir / s / "model.pt"
                for s in args.students
                if (args.exp_dir / s / "model.pt").is_file()
            }
        )
        models = {name: load_upstream(path) for name, path in paths.items()}
    manifest = load_manifest(args.cuts)  # a cut or a recording manifest
    if isinstance(manifest, RecordingSet):
        manifest = CutSet.from_manifests(recordings=manifest)
    cuts = list(manifest)[: args.utts]
    waves = [torch.from_numpy(c.load_audio()[0].astype(np.float32)) for c in cuts]
    if args.memory_of:
        print(forward_memory(models[args.memory_of], max(waves, key=len)))
        return
    memory = (
        {}
        if args.no_memory
        else {
            name: int(
                subprocess.run(
                    [sys.executable, *sys.argv, "--memory-of", name],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()[-1]
            )
            for name in models
        }
    )
    audio = sum(len(w) for w in waves) / 16000
    seconds = inference_seconds(models, waves, args.rounds, args.threads)
    params = {name: upstream_parameters(m) for name, m in models.items()}
    print(
        f"{len(waves)} utterances, {audio:.1f} s of audio, {args.threads} thread(s), "
        f"best of {args.rounds} rounds"
    )
    longest = max(len(w) for w in waves) / 16000
    print(
        f"| upstream | params | params / teacher | CPU s | RTF | speed-up vs teacher | forward "
        f"memory ({longest:.1f} s utterance) | memory / teacher |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in models:
        mem = (
            f"{memory[name] / 2**20:.0f} MB | {memory[name] / max(memory['teacher'], 1):.2f}"
            if memory
            else " | "
        )
        print(
            f"| {name} | {params[name] / 1e6:.2f}M | {params[name] / params['teacher']:.3f} | "
            f"{seconds[name]:.2f} | {seconds[name] / audio:.4f} | "
            f"{seconds['teacher'] / seconds[name]:.2f}x | {mem} |"
        )


@torch.no_grad()
def forward_memory(model: torch.nn.Module, wave: torch.Tensor) -> int:
    """Bytes the peak resident memory of this process grows by in a forward pass over ``wave``,
    after the model was loaded and run once on a short input (so that only activations count)."""
    torch.set_num_threads(1)
    model.eval().hidden_states(wave[None, :16000])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.hidden_states(wave[None])
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # ru_maxrss: KiB


if __name__ == "__main__":
    main()
