"""HuBERT's masked-prediction targets: k-means clusters of MFCCs (iteration 1) or of a HuBERT
layer (iteration 2), one label per model frame (Hsu et al. 2021; fairseq's simple_kmeans recipe).

MFCCs: 13 Kaldi MFCCs with deltas and delta-deltas (39 dims) at 100 frames a second, every second
frame taken for the model's 50 frames a second (20 ms: the CNN's total stride of 320 samples at
16 kHz). Clusters: scikit-learn's MiniBatchKMeans on a random subset of frames, seeded.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torchaudio
from lhotse import CutSet
from sklearn.cluster import MiniBatchKMeans
from tqdm import tqdm

from espnet_distill.data.audio import STRIDE
from espnet_distill.models.hubert import HubertModel

log = logging.getLogger(__name__)


SAMPLE_RATE = 16000


def mfcc_features(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(S,) audio -> (T, 39): 13 MFCCs + deltas + delta-deltas every 10 ms."""
    mfcc = torchaudio.compliance.kaldi.mfcc(
        waveform.reshape(1, -1) * 32768,
        sample_frequency=sample_rate,
        use_energy=False,
        dither=0.0,
        num_ceps=13,
    )
    d1 = torchaudio.functional.compute_deltas(mfcc.T)
    d2 = torchaudio.functional.compute_deltas(d1)
    return torch.cat([mfcc.T, d1, d2]).T.contiguous()


def to_model_frames(labels: np.ndarray, num_frames: int, step: int) -> np.ndarray:
    """Labels of 10 ms frames -> one per model frame (every ``step``-th), padded with the last
    label or cut to ``num_frames`` (the feature and CNN frame counts differ by a frame or two)."""
    out = labels[::step][:num_frames]
    if len(out) < num_frames:
        pad = out[-1] if len(out) else 0
        out = np.concatenate([out, np.full(num_frames - len(out), pad, dtype=out.dtype)])
    return out


def fit_kmeans(
    features: list[np.ndarray], num_clusters: int, seed: int = 0, max_frames: int = 200_000
) -> MiniBatchKMeans:
    """MiniBatchKMeans on at most ``max_frames`` frames drawn (seeded) from ``features``."""
    frames = np.concatenate(features)
    if len(frames) < num_clusters:
        raise ValueError(f"{len(frames)} frames are too few for {num_clusters} clusters")
    rng = np.random.default_rng(seed)
    if len(frames) > max_frames:
        frames = frames[rng.choice(len(frames), max_frames, replace=False)]
    km = MiniBatchKMeans(
        n_clusters=num_clusters,
        init="k-means++",
        max_iter=100,
        batch_size=10000,
        n_init=3,
        max_no_improvement=100,
        random_state=seed,
        reassignment_ratio=0.0,
        compute_labels=False,
    )
    km.fit(frames)
    log.info(
        "k-means: %d clusters on %d frames, inertia per frame %.3f",
        num_clusters,
        len(frames),
        km.score(frames) / -len(frames),
    )
    return km


def model_frames(num_samples: int, field: int = 400) -> int:
    """Frames of the HuBERT CNN (receptive field 400, stride 320 samples)."""
    return 0 if num_samples < field else (num_samples - field) // STRIDE + 1


def cut_features(
    cuts: CutSet, teacher: HubertModel | None = None, layer: int = 0, desc: str = ""
) -> dict[str, np.ndarray]:
    """Per cut: MFCCs (10 ms) or the teacher's ``layer`` (20 ms), float32 (T, D)."""
    out = {}
    for cut in tqdm(cuts, desc=desc, mininterval=5, disable=None):
        wave = torch.from_numpy(cut.load_audio()[0].astype(np.float32))
        if teacher is None:
            out[cut.id] = mfcc_features(wave).numpy()
        else:
            with torch.no_grad():
                states, _ = teacher.hidden_states(wave[None])
            out[cut.id] = states[layer][0].numpy()
    return out
