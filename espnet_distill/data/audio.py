"""Raw-audio batches for HuBERT pretraining and distillation (lhotse cuts, 16 kHz).

Training crops each utterance to at most ``crop_seconds`` (HuBERT's ``max_sample_size``) at a
multiple of the CNN's stride, so frame labels (one per 20 ms model frame) are cropped with it.
Audio shorter than the CNN's receptive field has no output frame: such cuts are left out and
counted in the log.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet
from torch.utils.data import DataLoader, Dataset

from espnet_distill.data.datamodule import cut_sampler

log = logging.getLogger(__name__)

STRIDE = 320  # samples per model frame (CNN strides 5 x 2^6)


class AudioDataset(Dataset):
    """cuts -> {"audio" (B, S), "lengths" (B,), "ids", "labels" (B, T) padded with -1 or absent}."""

    def __init__(
        self,
        labels: dict[str, np.ndarray] | None = None,
        crop_seconds: float | None = None,
        seed: int = 0,
    ) -> None:
        self.labels = labels
        self.crop = int(crop_seconds * 16000) // STRIDE * STRIDE if crop_seconds else None
        self.rng = random.Random(seed)

    def __getitem__(self, cuts: CutSet) -> dict:
        waves, labels, ids = [], [], []
        for cut in cuts:
            wave = torch.from_numpy(cut.load_audio()[0].astype(np.float32))
            lab = self.labels[cut.id] if self.labels is not None else None
            if self.crop and len(wave) > self.crop:
                frame = self.rng.randrange((len(wave) - self.crop) // STRIDE + 1)
                wave = wave[frame * STRIDE : frame * STRIDE + self.crop]
                if lab is not None:
                    lab = lab[frame : frame + self.crop // STRIDE]
            waves.append(wave)
            ids.append(cut.id)
            if lab is not None:
                labels.append(torch.from_numpy(np.asarray(lab, dtype=np.int64)))
        batch = {
            "audio": torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
            "lengths": torch.tensor([len(w) for w in waves]),
            "ids": ids,
        }
        if labels:
            batch["labels"] = torch.nn.utils.rnn.pad_sequence(
                labels, batch_first=True, padding_value=-1
            )
        return batch


def load_cuts(cuts_file: Path, min_samples: int, labels: dict | None = None) -> CutSet:
    """The cuts long enough for one model frame (and with labels, when given); the others are
    counted in the log."""
    cuts = CutSet.from_file(cuts_file).to_eager()
    short = [c.id for c in cuts if c.num_samples < min_samples]
    unlabelled = [c.id for c in cuts if labels is not None and c.id not in labels]
    drop = set(short) | set(unlabelled)
    if short:
        log.warning(
            "%s: %d cuts shorter than the CNN's receptive field (%d samples) skipped, e.g. %s",
            cuts_file,
            len(short),
            min_samples,
            short[0],
        )
    if unlabelled:
        log.warning(
            "%s: %d cuts without labels skipped, e.g. %s", cuts_file, len(unlabelled), unlabelled[0]
        )
    return cuts.filter(lambda c: c.id not in drop).to_eager() if drop else cuts


def make_audio_loader(
    cuts: CutSet,
    max_duration: float,
    train: bool,
    seed: int = 0,
    labels: dict | None = None,
    crop_seconds: float | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """Duration-bucketed, shuffled (seeded) batches for training; in order for evaluation."""
    sampler = cut_sampler(cuts, max_duration, train, seed)
    dataset = AudioDataset(labels, crop_seconds if train else None, seed)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers)
