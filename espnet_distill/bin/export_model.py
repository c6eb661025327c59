"""ssl1's export stage: one trained upstream (the teacher or a student) as deployable files in
--out-dir, each checked against the PyTorch model on real test utterances of several lengths
(the shortest, the median and the longest of --test-cuts, one padded batch):

- ``model.onnx``: fp32, dynamic batch and time (inputs ``waveforms`` (B, S) and ``lengths``
  (B,); outputs ``hidden_states`` (L+1, B, T, D) and ``frames`` (B,)); more than 1e-4 (max abs)
  from PyTorch is an error;
- ``model.int8.onnx``: onnxruntime dynamic int8 quantization;
- LSTM students: ``model.int8.pt``, PyTorch dynamic int8 (read by ``load_upstream``);
- transformers (teacher, DistilHuBERT, deep, wide): ``hf/``, a Hugging Face ``HubertModel``
  directory (``config.json`` + ``model.safetensors``), read back and compared;
- ``export.yaml``: each artifact's file, size (MB) and max abs difference from the float model.

Rerunning skips a finished export (export.yaml exists).

Usage:
    python -m espnet_distill.bin.export_model --upstream exp/ssl/lstm_dkd/model.pt \\
        --test-cuts exp/ssl/data/cuts_test-clean.jsonl.gz --out-dir exp/ssl/export/lstm_dkd
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import yaml
from lhotse import CutSet

from espnet_distill.bin import finished, make_parser, one_line_errors, require
from espnet_distill.deploy.export import SAMPLE_RATE, export_upstream
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
    parser = make_parser(__doc__, "--upstream", "--test-cuts", "--out-dir")
    args = parser.parse_args(argv)
    setup_logging()
    summary_file = args.out_dir / "export.yaml"
    if finished(summary_file):
        return 0
    if str(args.upstream) == FBANK:
        raise ValueError("the fbank baseline has no network to export")
    require(args.upstream, args.test_cuts)
    upstream = load_upstream(args.upstream)
    waveforms = test_waveforms(CutSet.from_file(args.test_cuts), str(args.test_cuts))
    kind = _kind(args.upstream)
    summary = {
        "upstream": str(args.upstream),
        **export_upstream(upstream, kind, args.out_dir, waveforms),
    }
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


def _kind(path) -> str:  # noqa: ANN001
    """The student kind save_student wrote (distilhubert, kd, dkd); a teacher file has none."""
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else {}
    return blob.get("kind", "teacher") if isinstance(blob, dict) else "teacher"


if __name__ == "__main__":
    sys.exit(main())
