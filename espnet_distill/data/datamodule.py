"""lhotse-based data loading for acoustic-model training and decoding.

A batch is a dict::

    feats      (B, T, 80) float   fbank, padded with zeros (CMVN is applied inside the model)
    feat_lens  (B,)       long
    ys         (B, U)     long    label ids, padded with -1
    ys_lens    (B,)       long
    ids        list[str]          supervision ids
    texts      list[str]          reference transcripts
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler
from lhotse.dataset.collation import collate_features
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from espnet_distill.lang.bpe import BpeTokenizer

log = logging.getLogger(__name__)


class AsrDataset(Dataset):
    """Maps a CutSet (one batch chosen by a lhotse sampler) to padded tensors."""

    def __init__(self, tokenizer: BpeTokenizer | None) -> None:
        self.tokenizer = tokenizer

    def __getitem__(self, cuts: CutSet) -> dict:
        cuts = cuts.sort_by_duration(ascending=False)
        feats, feat_lens = collate_features(cuts)
        texts = [" ".join(s.text for s in c.supervisions) for c in cuts]
        batch = {
            "feats": feats,
            "feat_lens": feat_lens,
            "ids": [c.id for c in cuts],
            "texts": texts,
        }
        if self.tokenizer is not None:
            labels = [torch.tensor(self.tokenizer.encode(t), dtype=torch.long) for t in texts]
            batch["ys"] = pad_sequence(labels, batch_first=True, padding_value=-1)
            batch["ys_lens"] = torch.tensor([len(x) for x in labels], dtype=torch.long)
        return batch


class _MaxDuration:
    """Picklable cut filter (a lambda would break DataLoader workers that fork)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, cut: object) -> bool:
        return cut.duration <= self.seconds


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(
    cuts_file: Path,
    tokenizer: BpeTokenizer | None,
    max_duration: float,
    train: bool,
    seed: int = 0,
    num_workers: int = 1,
    max_cut_duration: float | None = None,
) -> DataLoader:
    """DataLoader over a cut manifest. Training: duration-bucketed, shuffled with ``seed``."""
    cuts = CutSet.from_file(cuts_file)
    if max_cut_duration:
        n_before = len(cuts)
        cuts = cuts.filter(_MaxDuration(max_cut_duration)).to_eager()
        if len(cuts) < n_before:
            log.warning("%s: %d of %d cuts are longer than %.1f s and are not used for training",
                        cuts_file, n_before - len(cuts), n_before, max_cut_duration)  # fmt: skip
    if train:
        sampler = DynamicBucketingSampler(
            cuts,
            max_duration=max_duration,
            shuffle=True,
            num_buckets=10,
            seed=seed,
            drop_last=False,
        )
    else:
        sampler = SimpleCutSampler(cuts, max_duration=max_duration, shuffle=False)
    return DataLoader(
        AsrDataset(tokenizer),
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=num_workers > 0,
    )
