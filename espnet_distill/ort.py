"""onnxruntime sessions and inputs of the exported graphs, without torch: the one place both the
training side (``models.upstream.OnnxUpstream``) and the torch-free runtime
(``deploy/runtime.py``, ``bin/infer.py``) open an ONNX file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def onnx_session(path: Path):  # noqa: ANN201 (onnxruntime.InferenceSession, imported lazily)
    """A one-thread onnxruntime CPU session of ``path`` (the deployment setting measured)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def metadata(session) -> dict:  # noqa: ANN001
    """The JSON values of an exported file's metadata (``export`` writes them JSON-encoded)."""
    return {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}


def padded_batch(waveforms: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(B, S) float32 zero-padded audio and (B,) int64 lengths: the ONNX graphs' inputs."""
    lengths = np.array([len(w) for w in waveforms], dtype=np.int64)
    batch = np.zeros((len(waveforms), int(lengths.max())), dtype=np.float32)
    for row, wave in zip(batch, waveforms, strict=True):
        row[: len(wave)] = wave
    return batch, lengths
