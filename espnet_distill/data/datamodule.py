"""lhotse-based data loading for acoustic-model training and decoding.

A batch is a dict::

    feats      (B, T, 80) float   fbank, padded with zeros (CMVN is applied inside the model)
    feat_lens  (B,)       long
    ys         (B, U)     long    label ids, padded with -1
    ys_lens    (B,)       long
    ids        list[str]          supervision ids
    durations  (B,)       float64 the cuts' durations (s)
    frame_lens (B,)       long    the cuts' 10 ms feature frames (= feat_lens for fbank input)
    texts      list[str]          reference transcripts
    <unit>_targets (B, T) long    frame targets of stage 4 (``targets={unit: scp}``), padded
                                  with -1; one per 10 ms fbank frame
    codebook_indexes (B, Tt, C) long  an SSL teacher's codebook indexes (``codebooks``: stage 5's
                                  manifest), one row per 20 ms teacher frame, padded with -100
    teacher_audio (B, S) float, teacher_audio_lens (B,)  16 kHz samples for an SSL teacher run
                                  during training (``teacher_audio``: hint KD)
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

from espnet_distill.data.teacher_frames import IGNORE, check_teacher_frames, codebook_table
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.utils import load_kaldi_matrix

log = logging.getLogger(__name__)


class AsrDataset(Dataset):
    """Maps a CutSet (one batch chosen by a lhotse sampler) to padded tensors."""

    def __init__(
        self,
        tokenizer: BpeTokenizer | None,
        targets: dict[str, Path] | None = None,
        audio: bool = False,
        codebooks: Path | None = None,
        teacher_audio: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.audio = audio  # "feats" are 16 kHz samples (an SSL front-end), lengths in samples
        self.target_files = dict(targets or {})
        self._tables: dict | None = None  # opened lazily: one reader per DataLoader worker
        self.codebooks, self.teacher_audio = codebooks, teacher_audio
        self._codebook_table: dict | None = None

    def _codebook_indexes(self, cuts: CutSet, frame_lens: torch.Tensor) -> torch.Tensor:
        if self._codebook_table is None:
            self._codebook_table = codebook_table(self.codebooks)
        rows = []
        for cut, n in zip(cuts, frame_lens.tolist(), strict=True):
            indexes = self._codebook_table[cut.id].load()
            check_teacher_frames(cut.id, len(indexes), n, str(self.codebooks))
            rows.append(torch.from_numpy(indexes.astype("int64")))
        return pad_sequence(rows, batch_first=True, padding_value=IGNORE)

    def _frame_targets(self, cuts: CutSet, feat_lens: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._tables is None:
            self._tables = {u: read_scp(p) for u, p in self.target_files.items()}
        out = {}
        for unit, table in self._tables.items():
            rows = []
            for cut, n in zip(cuts, feat_lens.tolist(), strict=True):
                try:
                    ids = torch.from_numpy(load_kaldi_matrix(table[cut.id]).astype("int64"))
                except ValueError as err:
                    raise ValueError(f"{self.target_files[unit]}: {cut.id}: {err}") from None
                if len(ids) != n:
                    raise ValueError(
                        f"{self.target_files[unit]}: {cut.id} has {len(ids)} "
                        f"{unit} targets for {n} feature frames"
                    )
                rows.append(ids)
            out[f"{unit}_targets"] = pad_sequence(rows, batch_first=True, padding_value=-1)
        return out

    def __getitem__(self, cuts: CutSet) -> dict:
        cuts = cuts.sort_by_duration(ascending=False)
        if self.audio or self.teacher_audio:
            waves = [torch.from_numpy(c.load_audio()[0]) for c in cuts]
        if self.audio:
            feats = pad_sequence(waves, batch_first=True)
            feat_lens = torch.tensor([len(w) for w in waves])
            # frame targets are at the fbank frame rate (stage 4 aligned the fbank features)
            frame_lens = torch.tensor([c.num_frames for c in cuts])
        else:
            feats, feat_lens = collate_features(cuts)
            frame_lens = feat_lens
        texts = [" ".join(s.text for s in c.supervisions) for c in cuts]
        batch = {
            "feats": feats,
            "feat_lens": feat_lens,
            "ids": [c.id for c in cuts],
            "durations": torch.tensor([c.duration for c in cuts], dtype=torch.float64),
            "frame_lens": frame_lens,
            "texts": texts,
        }
        if self.tokenizer is not None:
            labels = [torch.tensor(self.tokenizer.encode(t), dtype=torch.long) for t in texts]
            batch["ys"] = pad_sequence(labels, batch_first=True, padding_value=-1)
            batch["ys_lens"] = torch.tensor([len(x) for x in labels], dtype=torch.long)
        if self.target_files:
            batch.update(self._frame_targets(cuts, frame_lens))
        if self.codebooks is not None:
            batch["codebook_indexes"] = self._codebook_indexes(cuts, frame_lens)
        if self.teacher_audio:
            batch["teacher_audio"] = pad_sequence(waves, batch_first=True)
            batch["teacher_audio_lens"] = torch.tensor([len(w) for w in waves])
        return batch


class _MaxDuration:
    """Picklable cut filter (a lambda would break DataLoader workers that fork)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, cut: object) -> bool:
        return cut.duration <= self.seconds


def read_scp(scp: Path) -> dict[str, str]:
    """A Kaldi scp file: key -> rxfile (``ark:offset``)."""
    table = {}
    for line in Path(scp).read_text().splitlines():
        if line.strip():
            key, _, rxfile = line.strip().partition(" ")
            table[key] = rxfile.strip()
    return table


def scp_keys(scp: Path) -> set[str]:
    """The keys of a Kaldi scp file."""
    return set(read_scp(scp))


class _Keys:
    """Picklable filter: the cut's id is one of ``keys``."""

    def __init__(self, keys: object) -> None:
        self.keys = set(keys)

    def __call__(self, cut: object) -> bool:
        return cut.id in self.keys


class _ScpKeys(_Keys):
    """Picklable filter: the cut has an entry in a Kaldi scp file."""

    def __init__(self, scp: Path) -> None:
        super().__init__(scp_keys(scp))


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def cut_sampler(
    cuts: CutSet, max_duration: float, train: bool, seed: int = 0, sync_buckets: bool = True
) -> DynamicBucketingSampler | SimpleCutSampler:
    """Batches of at most ``max_duration`` seconds: for training, from 10 duration buckets,
    shuffled with ``seed`` (``sync_buckets``: see :func:`make_loader`); else in manifest order."""
    if not train:
        return SimpleCutSampler(cuts, max_duration=max_duration, shuffle=False)
    return DynamicBucketingSampler(
        cuts,
        max_duration=max_duration,
        shuffle=True,
        num_buckets=10,
        seed=seed,
        drop_last=False,
        sync_buckets=sync_buckets,
    )


def make_loader(
    cuts_file: Path,
    tokenizer: BpeTokenizer | None,
    max_duration: float,
    train: bool,
    seed: int = 0,
    num_workers: int = 1,
    max_cut_duration: float | None = None,
    targets: dict[str, Path] | None = None,
    audio: bool = False,
    sync_buckets: bool = True,
    codebooks: Path | None = None,
    teacher_audio: bool = False,
) -> DataLoader:
    """DataLoader over a cut manifest. Training: duration-bucketed, shuffled with ``seed``.

    ``targets`` (unit -> scp of stage 4) adds frame targets; cuts without them (not aligned)
    are left out and counted in the log. ``sync_buckets`` (multi-process training): the processes
    draw each step's batches from the same duration bucket (lhotse's default, less waiting for
    the slowest); False keeps the single-process batch sequence, dealt out in turn.
    ``codebooks`` (stage 5's codebook manifest) adds an SSL teacher's codebook indexes and
    ``teacher_audio`` the audio for a teacher run in training (see :class:`AsrDataset`); cuts
    without codebook indexes are left out and counted in the log, as those without targets.
    """
    cuts = CutSet.from_file(cuts_file)
    sources = {unit: (_ScpKeys(scp), scp) for unit, scp in (targets or {}).items()}
    if codebooks is not None:
        sources["codebook"] = (_Keys(codebook_table(codebooks)), codebooks)
    for unit, (have, scp) in sources.items():
        n_before = len(cuts)
        cuts = cuts.filter(have).to_eager()
        if len(cuts) < n_before:
            log.warning(
                "%s: %d of %d cuts have no %s targets in %s and are not used",
                cuts_file,
                n_before - len(cuts),
                n_before,
                unit,
                scp,
            )
    if max_cut_duration:
        n_before = len(cuts)
        cuts = cuts.filter(_MaxDuration(max_cut_duration)).to_eager()
        if len(cuts) < n_before:
            log.warning(
                "%s: %d of %d cuts are longer than %.1f s and are not used for training",
                cuts_file,
                n_before - len(cuts),
                n_before,
                max_cut_duration,
            )
    sampler = cut_sampler(cuts, max_duration, train, seed, sync_buckets)
    return DataLoader(
        AsrDataset(tokenizer, targets, audio, codebooks, teacher_audio),
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=num_workers > 0,
    )
