"""Deployed upstreams: size, single-thread CPU latency, real-time factor and peak memory of each
artifact ssl1's stage 7 exports (``exp/<size>/export/<name>/``) beside the PyTorch fp32 model,
as ratios measured in one run on the same input: PyTorch fp32 (``model.pt``), onnxruntime fp32
(``model.onnx``) and int8 (``model.int8.onnx``), PyTorch int8 (``model.int8.pt``, LSTM students).

Latency: one utterance of 1 s and one of 10 s (batch 1, one thread, denormals flushed), the best
of ``--rounds`` after an untimed pass, the artifacts interleaved in each round. Speed-up: the
PyTorch fp32 teacher's 10 s latency over the artifact's. Memory: the peak resident memory of a
fresh process that loads the artifact and runs it on 1 s and 10 s, the runtime included (what a
device needs: an ONNX process imports onnxruntime and numpy only, no torch). The input is seeded
noise at speech level: the cost depends on the length, not on what is said.

With ``--systems``: the KWS/SV systems kws_sv1's stage 5 exported
(``<kws-sv-exp>/export/<upstream>/<mode>/<setup>/``), each form scored on the test sets the
recipe scores (KWS accuracy on every test clip, EER on every trial) beside ``system.pt`` in
PyTorch fp32, the difference with its paired 95% bootstrap interval over the same items, and
the 1 s latency (a KWS clip's length), the size and the speed-up vs the teacher's fp32 system.

Issue 30's targets: the int8 LSTM-DKD student + KWS head <= 1 MB, >= 10x faster than the fp32
PyTorch teacher, KWS accuracy within 1 point of the fp32 student's (paired interval).

With ``--streaming CONF_DIR``: a unidirectional LSTM student of the recipe's LSTM-DKD size
(``distill_lstm_kd.yaml`` with ``bidirectional: false``; random weights: the cost depends on the
architecture) on a 10 s stream in chunks of 0.1, 0.2 and 0.5 s (``deploy/streaming.py``): the
mean and worst per-chunk latency, the real-time factor, and the chunked output's agreement with
the whole-utterance pass (its group-norm CNN normalises over what it has seen).

With ``--probes REF=DIR NAME=DIR ...``: ssl1 probe dirs (``probe_ssl --upstream`` on a
``model.pt`` and on its exported forms: ``load_upstream`` reads ``.onnx``), each probe's test
score beside the first one's with the paired 95% bootstrap interval over the test utterances
(``test_scores.tsv``).

Usage:
    python bench/deploy.py --probes fp32=exp/probe/lstm_dkd/pr int8=exp/probe/lstm_dkd_int8/pr
    python bench/deploy.py --streaming egs/synth/ssl1/conf
    python bench/deploy.py --exp-dir egs/synth/ssl1/exp/full [--names teacher lstm_dkd] [--rounds 5]
    python bench/deploy.py --systems egs/synth/kws_sv1/exp/demo_ssl_full \
        --manifest-dir egs/synth/kws_sv1/data/demo/manifests [--setups kws] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from espnet_distill.ort import onnx_session  # torch-free: the ONNX child stays so

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
    import torch

    from espnet_distill.models.upstream import load_upstream

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = load_upstream(path).eval()

    def run(wave: np.ndarray) -> object:
        with torch.no_grad():
            return model.hidden_states(torch.from_numpy(wave)[None])

    return run


def waves() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"{s} s": (0.05 * rng.standard_normal(16000 * s)).astype(np.float32) for s in (1, 10)}


def peak_memory(path: Path) -> int:
    """Bytes of this process's peak RSS after loading ``path`` and running 1 s and 10 s: VmHWM,
    which starts afresh at exec (getrusage's ru_maxrss keeps the parent's peak across it)."""
    run, inputs = runner(path), waves()
    for wave in inputs.values():
        run(wave)
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
        * 1024
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, help="ssl1's exp dir: the upstreams")
    parser.add_argument("--systems", type=Path, help="kws_sv1's exp dir: the KWS/SV systems")
    parser.add_argument("--manifest-dir", type=Path, help="--systems: kws_sv1's manifests")
    parser.add_argument("--setups", nargs="+", default=["kws", "sv", "joint"])
    parser.add_argument("--streaming", type=Path, help="ssl1's conf dir: the streaming bench")
    parser.add_argument("--probes", nargs="+", metavar="NAME=DIR", help="ssl1 probe dirs")
    parser.add_argument(
        "--out-dir", type=Path, help="--systems: write deploy.md and size_vs_accuracy.png there"
    )
    parser.add_argument("--names", nargs="+", default=NAMES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-of", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.memory_of:
        print(peak_memory(args.memory_of))
        return
    if args.systems:
        systems_table(args)
        return
    if args.streaming:
        streaming_table(args)
        return
    if args.probes:
        probes_table(args.probes)
        return
    if args.exp_dir is None:
        sys.exit("deploy.py: give --exp-dir (upstreams) or --systems (KWS/SV systems)")
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
    teacher = ("teacher", "torch fp32")
    reference = best[teacher, "10 s"] if teacher in runners else None
    print(
        f"one thread, batch 1, best of {args.rounds} rounds; speed-up: vs the PyTorch fp32 teacher (10 s)"
    )
    print(
        "| upstream | form | params | MB | 1 s latency (ms) | 10 s latency (ms) | RTF | speed-up | peak memory (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    from espnet_distill.models.upstream import load_upstream, upstream_parameters

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


def probes_table(pairs: list[str]) -> None:
    """Each probe's test score and its paired difference from the first's (see the module doc)."""
    import yaml

    from espnet_distill.score.wer import paired_bootstrap_by_id
    from espnet_distill.ssl.report import read_test_scores

    dirs = dict(pair.split("=", 1) for pair in pairs)
    results = {n: yaml.safe_load((Path(d) / "result.yaml").read_text()) for n, d in dirs.items()}
    scores = {n: read_test_scores(Path(d) / "test_scores.tsv") for n, d in dirs.items()}
    ref = next(iter(dirs))
    metric = results[ref]["metric"]
    print(f"| upstream form | {metric} test (dev) | difference vs {ref} [95% paired interval] |")
    print("|---|---|---|")
    for name, result in results.items():
        d = paired_bootstrap_by_id(scores[ref], scores[name]) if name != ref else None
        diff = (
            f"{d['delta'] + 0.0:+.2f} [{d['delta_low'] + 0.0:+.2f}, {d['delta_high'] + 0.0:+.2f}]"
            if d
            else "-"
        )
        print(f"| {name} | {result['test']:.2f} ({result['dev']:.2f}) | {diff} |")


def streaming_table(args: argparse.Namespace) -> None:
    """Per-chunk latency and agreement of a streaming LSTM student (see the module doc)."""
    import torch

    from espnet_distill.config import load_config, merge_config
    from espnet_distill.deploy.streaming import StreamingLstm, chunked_agreement
    from espnet_distill.models.students import LstmStudent, narrow_cnn

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    teacher = load_config(args.streaming / "hubert_pretrain.yaml")["model"]["encoder"]
    model = merge_config(load_config(args.streaming / "distill_lstm_kd.yaml"), {})["model"]
    torch.manual_seed(0)
    cnn = narrow_cnn(teacher, model["cnn_channel_ratio"])
    student = LstmStudent(cnn, 100, model["hidden"], model["num_layers"], bidirectional=False)
    wave = torch.from_numpy(waves()["10 s"])
    print(
        f"unidirectional LSTM student, {model['num_layers']} layers of {model['hidden']}, "
        f"{sum(p.numel() for p in student.parameters()) / 1e6:.2f}M parameters; one thread, "
        f"a 10 s stream, best of {args.rounds}"
    )
    print("| chunk (s) | mean latency (ms) | worst (ms) | RTF | relative error vs whole | cosine |")
    print("|---|---|---|---|---|---|")
    for seconds in (0.1, 0.2, 0.5):
        n = int(seconds * 16000)
        best_mean, best_worst = float("inf"), float("inf")
        for _ in range(args.rounds):
            stream, times = StreamingLstm(student), []
            for i in range(0, len(wave), n):
                start = time.perf_counter()
                stream.push(wave[i : i + n])
                times.append(time.perf_counter() - start)
            best_mean, best_worst = min(best_mean, np.mean(times)), min(best_worst, max(times))
        agree = chunked_agreement(student, wave, n)
        print(
            f"| {seconds} | {1e3 * best_mean:.2f} | {1e3 * best_worst:.2f} | "
            f"{best_mean / seconds:.4f} | {agree['relative_error']:.4f} | {agree['cosine']:.5f} |"
        )


SYSTEM_FORMS = {
    "torch fp32": "system.pt",
    "onnx fp32": "system.onnx",
    "onnx int8": "system.int8.onnx",
}


def systems_table(args: argparse.Namespace) -> None:
    """KWS accuracy / EER, size and latency of every exported system form (see the module doc)."""
    import torch

    from espnet_distill.data.kws_sv import load_split_cuts, read_trials
    from espnet_distill.deploy.export import TorchSystem
    from espnet_distill.deploy.runtime import OnnxSystem
    from espnet_distill.kws_sv.report import kws_item, paired_difference
    from espnet_distill.kws_sv.trainer import keyword_cuts
    from espnet_distill.score.verification import equal_error_rate

    torch.set_num_threads(1)  # the PyTorch forms on one thread, as onnx_session's
    torch.set_flush_denormal(True)
    if args.manifest_dir is None:
        sys.exit("deploy.py: --systems needs --manifest-dir (kws_sv1's data/<size>/manifests)")
    # the manifests hold audio paths relative to the recipe (<recipe>/data/<size>/manifests)
    command = (
        f"python bench/deploy.py --systems {args.systems} --manifest-dir {args.manifest_dir} "
        f"--setups {' '.join(args.setups)} --out-dir {args.out_dir}"
    )
    args.systems, args.manifest_dir = args.systems.resolve(), args.manifest_dir.resolve()
    out_dir = args.out_dir.resolve() if args.out_dir else None
    os.chdir(args.manifest_dir.parents[2])
    exported = sorted(
        p.parent
        for p in (args.systems / "export").glob("*/*/*/system.onnx")
        if p.parent.name in args.setups
    )
    if not exported:
        sys.exit(
            f"deploy.py: no {args.systems}/export/*/*/<setup>/system.onnx: run kws_sv1's stage 5"
        )
    data: dict = {}

    def kws_data() -> tuple[list, dict]:
        if "kws" not in data:
            cuts, labels = keyword_cuts(
                load_split_cuts(args.manifest_dir, "speechcommands", "test"), "12class"
            )
            data["kws"] = ([(c.id, c.load_audio()[0].astype(np.float32)) for c in cuts], labels)
        return data["kws"]

    def sv_data() -> tuple[dict, list]:
        if "sv" not in data:
            cuts = load_split_cuts(args.manifest_dir, "voxceleb", "test")
            trials = read_trials(
                args.manifest_dir / "voxceleb_trials.txt", {c.recording_id for c in cuts}
            )
            needed = {u for _, a, b in trials for u in (a, b)}
            audio = {
                c.recording_id: c.load_audio()[0].astype(np.float32)
                for c in cuts
                if c.recording_id in needed
            }
            data["sv"] = (audio, trials)
        return data["sv"]

    rows = []
    for export_dir in exported:
        upstream, mode, setup = export_dir.parts[-3:]
        finetune_dir = args.systems / "finetune" / upstream / mode / setup
        forms = {"torch fp32": finetune_dir / "system.pt"}
        forms.update(
            {f: export_dir / name for f, name in SYSTEM_FORMS.items() if f != "torch fp32"}
        )
        scored = {}
        for form, path in forms.items():
            system = TorchSystem(path) if path.suffix == ".pt" else OnnxSystem(path)
            row: dict = {"upstream": upstream, "mode": mode, "setup": setup, "form": form}
            row["mb"] = path.stat().st_size / 2**20
            one_second = np.zeros(16000, dtype=np.float32) + 0.01
            task = "kws" if "kws" in system.meta["tasks"] else "sv"
            system.run(task, one_second)
            best = float("inf")
            for _ in range(args.rounds):
                start = time.perf_counter()
                system.run(task, one_second)
                best = min(best, time.perf_counter() - start)
            row["latency_ms"] = 1e3 * best
            if "kws" in system.meta["tasks"]:
                clips, labels = kws_data()
                keywords = system.meta["keywords"]
                errors = {
                    kws_item(i): int(keywords[int(np.argmax(system.run("kws", w)))] != labels[i])
                    for i, w in clips
                }
                row["kws_items"] = errors
                row["kws_accuracy"] = 100 * (1 - np.mean(list(errors.values())))
            if "sv" in system.meta["tasks"]:
                audio, trials = sv_data()
                emb = {u: system.run("sv", w) for u, w in audio.items()}
                row["sv_items"] = {(a, b): (float(emb[a] @ emb[b]), bool(t)) for t, a, b in trials}
                scores = np.array([v[0] for v in row["sv_items"].values()])
                target = np.array([v[1] for v in row["sv_items"].values()])
                row["eer"] = 100 * equal_error_rate(scores, target)
            scored[form] = row
            rows.append(row)
        for form, row in scored.items():
            for key in ("kws_accuracy", "eer"):
                if key in row and form != "torch fp32":
                    row[f"{key}_diff"] = paired_difference(scored["torch fp32"], row, key)
    reference = {
        (r["mode"], r["setup"]): r["latency_ms"]
        for r in rows
        if r["upstream"] == "teacher" and r["form"] == "torch fp32"
    }
    lines = [
        f"One thread, batch 1, 1 s input, best of {args.rounds}; differences: vs the same system in "
        "PyTorch fp32, paired 95% bootstrap interval over the same test items.",
        "",
        "| upstream | mode | setup | form | MB | 1 s latency (ms) | speed-up vs teacher fp32 | "
        "KWS accuracy | difference | EER | difference |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = reference.get((r["mode"], r["setup"]))
        speed = f"{ref / r['latency_ms']:.1f}x" if ref else "-"
        cells = []
        for key in ("kws_accuracy", "eer"):
            d = r.get(f"{key}_diff")
            cells.append(f"{r[key]:.2f}" if key in r else "-")
            # + 0.0: no "-0.00" where every resample agrees
            low, high = (d["low"] + 0.0, d["high"] + 0.0) if d else (0, 0)
            cells.append(f"{d['delta'] + 0.0:+.2f} [{low:+.2f}, {high:+.2f}]" if d else "-")
        lines.append(
            f"| {r['upstream']} | {r['mode']} | {r['setup']} | {r['form']} | {r['mb']:.2f} | "
            f"{r['latency_ms']:.1f} | {speed} | " + " | ".join(cells) + " |"
        )
    print("\n".join(lines))
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        plot = out_dir / "size_vs_accuracy.png"
        size_accuracy_plot(rows, plot)
        (out_dir / "deploy.md").write_text(
            f"# Deployed KWS/SV systems\n\n`{command}`\n\n"
            + "\n".join(lines)
            + f"\n\n![size vs accuracy]({plot.name})\n"
        )


def size_accuracy_plot(rows: list[dict], out: Path) -> None:
    """File size (log scale) against KWS accuracy (or EER), one point a system form."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "kws_accuracy" if any("kws_accuracy" in r for r in rows) else "eer"
    fig, ax = plt.subplots(figsize=(6, 4))
    markers = {"torch fp32": "o", "onnx fp32": "s", "onnx int8": "^"}
    systems = sorted({(r["upstream"], r["mode"], r["setup"]) for r in rows if key in r})
    colours = {s: f"C{i}" for i, s in enumerate(systems)}
    for r in rows:
        if key in r:
            system = (r["upstream"], r["mode"], r["setup"])
            ax.scatter(r["mb"], r[key], marker=markers[r["form"]], color=colours[system], s=60)
    handles = [
        plt.Line2D([], [], color=c, marker="o", ls="", label=" ".join(s))
        for s, c in colours.items()
    ]
    handles += [
        plt.Line2D([], [], color="grey", marker=m, ls="", label=f) for f, m in markers.items()
    ]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xscale("log")
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("KWS accuracy (%)" if key == "kws_accuracy" else "SV EER (%)")
    ax.set_title("size vs accuracy of the deployed systems")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
