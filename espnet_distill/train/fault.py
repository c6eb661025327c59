"""What every trainer of this project shares so that training survives faults and reruns agree:

- a training batch whose loss is NaN or inf is skipped (no backward, no optimizer step), logged
  with its utterance ids and counted; past ``max_bad_batches`` training stops with an error (the
  data or the learning rate is broken, skipping would hide it). The count is kept in checkpoints.
- every training batch starts from random state seeded by (seed, epoch, batch), so a run resumed
  from its last checkpoint after ``kill -9`` draws the same dropout/SpecAugment/masking numbers as
  a run that was never interrupted (and, with ``loop.fit_resuming``'s data epochs, sees the same
  batches), and ends with the same weights;
- checkpoints are written to a temporary name and renamed, so a kill during the write never
  leaves a truncated ``last.ckpt`` that the rerun would try to resume from.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)


class TooManyBadBatches(RuntimeError):
    """More training batches had a NaN/inf loss than ``train.max_bad_batches`` allows."""


class FaultTolerantModule(L.LightningModule):
    """Base of the project's LightningModules; call :meth:`configure_faults` in ``__init__`` and
    return :meth:`guard` (loss) from ``training_step``."""

    def configure_faults(self, train_config: dict) -> None:
        """From a config's ``train`` section: ``seed`` and ``max_bad_batches`` (default 20)."""
        self.fault_seed = train_config["seed"]
        self.max_bad_batches = train_config.get("max_bad_batches", 20)
        self.bad_batches = 0

    def guard(self, loss: torch.Tensor, ids: list[str] | None = None) -> torch.Tensor | None:
        """``loss``, or None (Lightning then skips backward and the step) when it is not finite on
        this process or, in multi-process training, on any other."""
        bad = ~torch.isfinite(loss.detach())
        if self.trainer.world_size > 1:  # every rank must skip together, or DDP's all-reduce hangs
            bad = self.trainer.strategy.reduce(bad.float(), reduce_op="max") > 0
        if not bool(bad):
            return loss
        self.bad_batches += 1
        shown = ", ".join((ids or [])[:5]) + (" ..." if ids and len(ids) > 5 else "")
        log.warning(
            "epoch %d step %d: loss %s, batch skipped (%d of at most %d); utterances: %s",
            self.current_epoch,
            self.global_step,
            loss.item(),
            self.bad_batches,
            self.max_bad_batches,
            shown or "?",
        )
        self.log("bad_batches", float(self.bad_batches), batch_size=1)
        if self.bad_batches > self.max_bad_batches:
            raise TooManyBadBatches(
                f"{self.bad_batches} training batches had a NaN/inf loss (train.max_bad_batches="
                f"{self.max_bad_batches}); last one: {shown or '?'}. Check the data "
                "(validate_data) and the learning rate."
            )
        return None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Seeded per batch, not per epoch: Lightning draws from the global generator between the
        # epoch start and the first batch (the data loader's base seed) at different moments in a
        # fresh and in a resumed run.
        seed = int(
            np.random.SeedSequence(
                [self.fault_seed, self.current_epoch, batch_idx, self.global_rank]
            ).generate_state(1)[0]
        )
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["bad_batches"] = self.bad_batches

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.bad_batches = checkpoint.get("bad_batches", 0)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save checkpoints, written to a temporary name and renamed."""

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike,
        storage_options: Any | None = None,
    ) -> None:
        with atomic_output(Path(path)) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
