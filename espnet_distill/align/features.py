"""Features of the GMM-HMM aligner: MFCC + deltas computed from the stored fbank.

Kaldi's MFCC is the DCT-II of the log mel energies; we take it of stage 2's 80-d log-mel fbank
(same 25 ms / 10 ms frames, so alignments index the fbank frames the networks see), keep 13
cepstra, append deltas and delta-deltas (Kaldi's ``add-deltas``, window 2) and subtract each
speaker's mean (``apply-cmvn --norm-vars=false`` with per-speaker stats, as ``train_mono.sh``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from lhotse import CutSet


def dct_matrix(num_ceps: int, num_bins: int) -> np.ndarray:
    """Orthonormal DCT-II (``num_bins`` -> ``num_ceps``), Kaldi's ``ComputeDctMatrix``."""
    n = np.arange(num_bins)
    k = np.arange(num_ceps)[:, None]
    mat = np.sqrt(2.0 / num_bins) * np.cos(np.pi / num_bins * (n + 0.5) * k)
    mat[0] = np.sqrt(1.0 / num_bins)
    return mat.astype(np.float32)


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """Kaldi's ``add-deltas``: regression over +-window frames, edges replicated."""
    outs = [feats]
    prev = feats
    denom = 2 * sum(i * i for i in range(1, window + 1))
    for _ in range(order):
        padded = np.pad(prev, ((window, window), (0, 0)), mode="edge")
        t = len(prev)
        delta = (
            sum(
                i * (padded[window + i : window + i + t] - padded[window - i : window - i + t])
                for i in range(1, window + 1)
            )
            / denom
        )
        outs.append(delta)
        prev = delta
    return np.concatenate(outs, axis=1).astype(np.float32)


def mfcc_from_fbank(fbank: np.ndarray, num_ceps: int = 13) -> np.ndarray:
    """(T, bins) log-mel -> (T, 3 * num_ceps) MFCC with deltas and delta-deltas."""
    ceps = fbank.astype(np.float32) @ dct_matrix(num_ceps, fbank.shape[1]).T
    return add_deltas(ceps)


def load_align_features(cuts: CutSet, num_ceps: int = 13) -> dict[str, np.ndarray]:
    """Cut id -> MFCC+deltas, mean-normalised per speaker (speaker of the first supervision)."""
    feats: dict[str, np.ndarray] = {}
    speaker_of: dict[str, str] = {}
    for cut in cuts:
        feats[cut.id] = mfcc_from_fbank(cut.load_features(), num_ceps)
        speaker = cut.supervisions[0].speaker if cut.supervisions else cut.id
        # speed-perturbed copies (ids ending _sp<f>) are other speakers, as in Kaldi's sp dirs
        speaker_of[cut.id] = speaker + (cut.id[cut.id.rfind("_sp") :] if "_sp" in cut.id else "")
    sums: dict[str, np.ndarray] = defaultdict(lambda: 0.0)
    counts: dict[str, int] = defaultdict(int)
    for cid, x in feats.items():
        sums[speaker_of[cid]] = sums[speaker_of[cid]] + x.sum(axis=0)
        counts[speaker_of[cid]] += len(x)
    for cid, x in feats.items():
        spk = speaker_of[cid]
        feats[cid] = x - (sums[spk] / counts[spk]).astype(np.float32)
    return feats
