"""Deployed upstreams: size, single-thread CPU latency, real-time factor and peak memory of each
artifact ssl1's stage 7 exports (``exp/<size>/export/<name>/``) beside the PyTorch fp32 model,
as ratios measured in one run on the same input: PyTorch fp32 (``model.pt``), onnxruntime fp32
(``model.onnx``) and int8 (``model.int8.onnx``), PyTorch int8 (``model.int8.pt``, LSTM students).

Latency: one utterance of 1 s and one of 10 s (batch 1, one thread, denormals flushed), the best
of ``--rounds`` after an untimed pass, the artifacts interleaved in each round. Speed-up: the
PyTorch fp32 teacher's 10 s latency over the artifact's. Memory: the growth of a fresh process's
peak RSS over a 10 s forward pass after the artifact was loaded and run once on 1 s (activations
and the runtime's buffers, not the weights). The input is seeded noise at speech level: the cost
depends on the length, not on what is said.

Issue 30's target: the int8 LSTM-DKD student >= 10x faster than the fp32 PyTorch teacher.

Usage:
    python bench/deploy.py --exp-dir egs/synth/ssl1/exp/full [--names teacher lstm_dkd] [--rounds 5]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from espnet_distill.deploy.export import onnx_session
from espnet_distill.models.upstream import load_upstream, upstream_parameters

NAMES = ["teacher", "distilhubert", "deep", "wide", "lstm_kd", "lstm_dkd"]
FORMS = {  # form -> file (under exp/<name> for model.pt, else under export/<name>)
    "torch fp32": "model.pt",
    "onnx fp32": "model.onnx",
    "onnx int8": "model.int8.onnx",
    "torch int8": "model.int8.pt",
}


def artifact_file(exp_dir: Path, name: str, form: str) -> Path:
    if form == "torch fp32":
        return exp_dir / name / FORMS[form]
    return exp_dir / "export" / name / FORMS[form]


def runner(path: Path) -> Callable[[np.ndarray], object]:
    """A function running one (S,) float32 waveform through the artifact at ``path``."""
    if path.suffix == ".onnx":
        session = onnx_session(path)
        return lambda wave: session.run(
            None, {"waveforms": wave[None], "lengths": np.array([len(wave)], dtype=np.int64)}
        )
    model = load_upstream(path).eval()

    def run(wave: np.ndarray) -> object:
        with torch.no_grad():
            return model.hidden_states(torch.from_numpy(wave)[None])

    return run


def waves() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"{s} s": (0.05 * rng.standard_normal(16000 * s)).astype(np.float32) for s in (1, 10)}


def peak_memory(path: Path) -> int:
    """Bytes a 10 s forward pass adds to this process's peak RSS (see the module doc)."""
    run, inputs = runner(path), waves()
    run(inputs["1 s"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(inputs["10 s"])
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # KiB -> bytes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--names", nargs="+", default=NAMES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-of", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    if args.memory_of:
        print(peak_memory(args.memory_of))
        return
    artifacts = {
        (name, form): artifact_file(args.exp_dir, name, form)
        for name in args.names
        for form in FORMS
        if artifact_file(args.exp_dir, name, form).is_file()
    }
    missing = [n for n in args.names if (n, "onnx fp32") not in artifacts]
    if missing:
        sys.exit(f"deploy.py: no export of {', '.join(missing)}: run ssl1's stage 7 first")
    runners = {key: runner(path) for key, path in artifacts.items()}
    inputs = waves()
    best = {(key, length): float("inf") for key in runners for length in inputs}
    keys = list(runners)
    for r in range(args.rounds):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            for length, wave in inputs.items():
                runners[key](wave)  # untimed: the kernels of this shape are built on first use
                start = time.perf_counter()
                runners[key](wave)
                best[key, length] = min(best[key, length], time.perf_counter() - start)
    memory = {
        key: int(
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--exp-dir",
                    str(args.exp_dir),
                    "--memory-of",
                    str(path),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
        )
        for key, path in artifacts.items()
    }
    reference = (
        best[("teacher", "torch fp32"), "10 s"] if ("teacher", "torch fp32") in best else None
    )
    print(
        f"one thread, batch 1, best of {args.rounds} rounds; speed-up: vs the PyTorch fp32 teacher (10 s)"
    )
    print(
        "| upstream | form | params | MB | 1 s latency (ms) | 10 s latency (ms) | RTF | speed-up | peak memory (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    params = {
        name: upstream_parameters(load_upstream(artifact_file(args.exp_dir, name, "torch fp32")))
        for name in args.names
    }
    for (name, form), path in artifacts.items():
        size = path.stat().st_size / 2**20
        t1, t10 = best[(name, form), "1 s"], best[(name, form), "10 s"]
        speed = f"{reference / t10:.1f}x" if reference else "-"
        print(
            f"| {name} | {form} | {params[name] / 1e6:.2f}M | {size:.2f} | {1e3 * t1:.1f} | "
            f"{1e3 * t10:.1f} | {t10 / 10:.4f} | {speed} | {memory[name, form] / 2**20:.0f} |"
        )


if __name__ == "__main__":
    main()
