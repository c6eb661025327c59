"""Stage-2 features vs kaldi-native-fbank: throughput ratios measured in one run on the same audio.

Three measurements, each over the same utterances, one thread, interleaved in rounds (best kept):
- ``knf``: kaldi-native-fbank called directly on audio already in memory (the reference); its
  Python API hands out one frame per call, so the time without reading the frames out is shown
  too;
- ``ours``: our extractor (lhotse's Kaldi-compatible torch fbank, the options of stage 2) on the
  same in-memory audio;
- ``ours, stage 2 job``: what a stage-2 job does per cut (decode the FLAC, compute, compress
  into the lilcom archive), against ``knf + decode`` (decoding with soundfile, then knf).

Prints real-time factors (seconds of audio per second of work) and the ratios ours / knf
(the performance issue's target: >= 1.0).

Usage:
    python bench/fbank_speed.py --recordings \\
        egs/synth/asr1/data/demo/manifests/librispeech_recordings_test-clean.jsonl.gz [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import kaldi_native_fbank as kaldi_native_fbank_module
import numpy as np
import soundfile as sf
import torch
from lhotse import CutSet, LilcomChunkyWriter, load_manifest

from espnet_distill.data.features import fbank_extractor, kaldi_native_fbank, knf_options


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recordings", type=Path, required=True, help="lhotse recordings manifest")
    parser.add_argument("--max-utts", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a stage-2 job is single-threaded (nj jobs run side by side)
    recordings = load_manifest(args.recordings).subset(first=args.max_utts)
    paths = [r.sources[0].source for r in recordings]
    audio = [sf.read(p, dtype="float32")[0] for p in paths]
    seconds = sum(len(a) for a in audio) / 16000
    extractor = fbank_extractor()
    cuts = CutSet.from_manifests(recordings=recordings)

    def knf() -> None:
        for a in audio:
            kaldi_native_fbank(a, 16000)

    def knf_no_copy() -> None:  # frames computed in accept_waveform, never read out
        opts = knf_options()
        for a in audio:
            fb = kaldi_native_fbank_module.OnlineFbank(opts)
            fb.accept_waveform(16000, a)
            fb.input_finished()

    def ours() -> None:
        for a in audio:
            extractor.extract(a, 16000)

    def knf_decode() -> None:
        for p in paths:
            kaldi_native_fbank(sf.read(p, dtype="float32")[0], 16000)

    def ours_job() -> None:
        with tempfile.TemporaryDirectory() as tmp, LilcomChunkyWriter(Path(tmp) / "f.lca") as w:
            for cut in cuts:
                cut.compute_and_store_features(extractor, w)

    # the same numbers first: a speed ratio of two different computations would mean nothing
    diff = np.abs(extractor.extract(audio[0], 16000) - kaldi_native_fbank(audio[0], 16000)).max()
    work = {
        "knf": knf,
        "knf, frames not read out": knf_no_copy,
        "ours": ours,
        "knf + decode": knf_decode,
        "ours, stage 2 job": ours_job,
    }
    best = dict.fromkeys(work, float("inf"))
    for _ in range(args.rounds):
        for name, fn in work.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    print(
        f"{len(audio)} utterances, {seconds:.1f} s of audio, 1 thread, best of {args.rounds} rounds; "
        f"max |ours - knf| = {diff:.2e}"
    )
    print("| computation | x real time | ours / knf |")
    print("|---|---|---|")
    for name, ref in (
        ("knf", None),
        ("knf, frames not read out", None),
        ("ours", "knf"),
        ("knf + decode", None),
        ("ours, stage 2 job", "knf + decode"),
    ):
        ratio = f"{best[ref] / best[name]:.2f}" if ref else ""
        print(f"| {name} | {seconds / best[name]:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
