"""The export stages (ssl1 stage 7, kws_sv1 stage 5): one trained upstream (the teacher or a
student, --upstream) or one fine-tuned KWS/SV system (--system, its ``system.pt``) as deployable
files in --out-dir, each checked against the PyTorch model on real test utterances of several
lengths (the shortest, the median and the longest of --test-cuts, a cut or recording manifest,
each alone).

An upstream gives

- ``model.onnx``: fp32, dynamic batch and time (inputs ``waveforms`` (B, S) and ``lengths``
  (B,); outputs ``hidden_states`` (L+1, B, T, D) and ``frames`` (B,)); more than 1e-4 (max abs)
  from PyTorch is an error;
- ``model.int8.onnx``: onnxruntime dynamic int8 quantization;
- LSTM students: ``model.int8.pt``, PyTorch dynamic int8 (read by ``load_upstream``);
- transformers (teacher, DistilHuBERT, deep, wide): ``hf/``, a Hugging Face ``HubertModel``
  directory (``config.json`` + ``model.safetensors``), read back and compared;
- ``export.yaml``: each artifact's file, size (MB) and max abs difference from the float model.

A system gives ``system.onnx`` (fp32; its keyword probabilities and normalised speaker
embedding more than 1e-4 from PyTorch's is an error) and ``system.int8.onnx``, both carrying the
keywords and the SV threshold in their metadata: what ``bin/infer.py`` runs on.

Rerunning skips a finished export (export.yaml exists).

Usage:
    python -m espnet_distill.bin.export_model --upstream exp/ssl/lstm_dkd/model.pt \\
        --test-cuts exp/ssl/data/cuts_test-clean.jsonl.gz --out-dir exp/ssl/export/lstm_dkd
    python -m espnet_distill.bin.export_model --system exp/finetune/lstm_dkd/frozen/kws/system.pt \
        --test-cuts data/manifests/... --out-dir exp/export/lstm_dkd/frozen/kws
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import yaml
from lhotse import CutSet, RecordingSet, load_manifest

from espnet_distill.bin import finished, make_parser, one_line_errors, require
from espnet_distill.deploy.export import SAMPLE_RATE, export_system, export_upstream
from espnet_distill.kws_sv.trainer import load_system
from espnet_distill.models.hubert import CheckpointMismatch
from espnet_distill.models.upstream import FBANK, load_upstream
from espnet_distill.utils import atomic_write_text, setup_logging


def test_waveforms(cuts: CutSet, source: str) -> list[np.ndarray]:
    """The shortest, the median and the longest of ``cuts`` (by duration) as 16 kHz audio."""
    ordered = sorted(cuts, key=lambda c: (c.duration, c.id))
    if not ordered:
        raise ValueError(f"{source}: no cuts to check the export on")
    picked = {c.id: c for c in (ordered[0], ordered[len(ordered) // 2], ordered[-1])}.values()
    waveforms = []
    for cut in picked:
        if cut.sampling_rate != SAMPLE_RATE:
            raise ValueError(f"{source}: cut {cut.id} is {cut.sampling_rate} Hz, not {SAMPLE_RATE}")
        waveforms.append(cut.load_audio()[0].astype(np.float32))
    return waveforms


@one_line_errors(ValueError, CheckpointMismatch)
def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__, "--test-cuts", "--out-dir")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--upstream", type=Path, help="an upstream (any form load_upstream reads)")
    what.add_argument("--system", type=Path, help="a KWS/SV system (fine_tune_kws_sv's system.pt)")
    args = parser.parse_args(argv)
    setup_logging()
    summary_file = args.out_dir / "export.yaml"
    if finished(summary_file):
        return 0
    if str(args.upstream) == FBANK:
        raise ValueError("the fbank baseline has no network to export")
    require(args.upstream or args.system, args.test_cuts)
    manifest = load_manifest(args.test_cuts)  # cuts, or recordings (kws_sv1's manifests)
    if isinstance(manifest, RecordingSet):
        manifest = CutSet.from_manifests(recordings=manifest)
    waveforms = test_waveforms(manifest, str(args.test_cuts))
    if args.system:
        system, threshold = load_system(args.system)
        summary = {
            "system": str(args.system),
            **export_system(system, threshold, args.out_dir, waveforms),
        }
    else:
        summary = export_one_upstream(args.upstream, args.out_dir, waveforms)
    for name, entry in summary["artifacts"].items():
        logging.info(
            "%s: %s, %.3f MB, max abs difference from the float model %.3g",
            name,
            args.out_dir / entry["file"],
            entry["mb"],
            entry["max_abs_diff"],
        )
    atomic_write_text(summary_file, yaml.safe_dump(summary, sort_keys=False))
    return 0


def export_one_upstream(path: Path, out_dir: Path, waveforms: list) -> dict:
    """export_upstream of the upstream at ``path``, keeping a student's training mode."""
    return {
        "upstream": str(path),
        **export_upstream(load_upstream(path), _kind(path), out_dir, waveforms),
    }


def _kind(path: Path) -> str:
    """The student kind save_student wrote (distilhubert, kd, dkd); a teacher file has none."""
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else {}
    return blob.get("kind", "teacher") if isinstance(blob, dict) else "teacher"


if __name__ == "__main__":
    sys.exit(main())
