"""Running exported models with onnxruntime and numpy alone: nothing here imports torch (tested),
so a device needs neither PyTorch nor this package's training stack to run them.

The exported graphs' inputs are ``waveforms`` (B, S) float32 16 kHz audio, zero-padded, and
``lengths`` (B,) int64 samples of each row (:func:`padded_batch`). Metadata an ONNX file carries
(the KWS keywords, the SV threshold) is in its ``metadata_props`` (:func:`metadata`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from espnet_distill.ort import SAMPLE_RATE, metadata, onnx_session


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
