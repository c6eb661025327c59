"""Running exported models with onnxruntime and numpy alone: nothing here imports torch (tested),
so a device needs neither PyTorch nor this package's training stack to run them.

The exported graphs' inputs are ``waveforms`` (B, S) float32 16 kHz audio, zero-padded, and
``lengths`` (B,) int64 samples of each row (:func:`padded_batch`). Metadata an ONNX file carries
(the KWS keywords, the SV threshold) is in its ``metadata_props`` (:func:`metadata`).
"""

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


def layer_norm(x: np.ndarray) -> np.ndarray:
    """Over the last axis, without affine weights (how the downstreams read each layer)."""
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def read_wav(path: Path, min_samples: int = 1) -> np.ndarray:
    """A mono 16 kHz file as float32 samples; a missing or unreadable file, another sample rate,
    more than one channel or fewer than ``min_samples`` samples is a one-line ValueError naming
    the file."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"{path}: not a readable audio file ({err})") from None
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: {rate} Hz audio, the model takes {SAMPLE_RATE} Hz (resample it)")
    if audio.shape[1] != 1:
        raise ValueError(f"{path}: {audio.shape[1]} channels, the model takes mono audio")
    if len(audio) < min_samples:
        raise ValueError(
            f"{path}: {len(audio)} samples, fewer than the {min_samples} the model needs "
            f"({min_samples / SAMPLE_RATE:.3f} s)"
        )
    return audio[:, 0]


TASK_OUTPUT = {"kws": "keyword_probs", "sv": "embedding"}  # a system's output of each task


class OnnxSystem:
    """An exported system: its metadata and one utterance at a time through onnxruntime."""

    def __init__(self, path: Path) -> None:
        self.session = onnx_session(path)
        self.meta = metadata(self.session)
        if self.meta.get("espnet_distill") != "kws_sv":
            raise ValueError(f"{path}: not an exported KWS/SV system (export_model --system)")
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, task: str, wave: np.ndarray) -> np.ndarray:
        batch, lengths = wave[None].astype(np.float32), np.array([len(wave)], dtype=np.int64)
        out = self.session.run([TASK_OUTPUT[task]], {"waveforms": batch, "lengths": lengths})
        return out[0][0]
