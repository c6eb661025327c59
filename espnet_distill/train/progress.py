"""Training progress that reads well both on a terminal and in a log file.

Lightning's bar cannot know an epoch's length when batches come from a lhotse sampler (it has no
``len``), so it shows "?" and no ETA; and in a log file (stage 6 writes ``train.log``) a tqdm bar is
thousands of carriage-return updates. On a terminal we keep the bar but give it the measured number
of batches per epoch; elsewhere we write one plain line every ``interval`` batches instead.
"""

from __future__ import annotations

import logging
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

log = logging.getLogger(__name__)


class SizedProgressBar(TQDMProgressBar):
    """tqdm bar whose epoch total is the batch count measured before training."""

    def __init__(self, batches_per_epoch: int) -> None:
        super().__init__()
        self.batches_per_epoch = batches_per_epoch

    @property
    def total_train_batches(self) -> int | float:  # noqa: D102
        return self.batches_per_epoch


class LogLineProgress(Callback):
    """One log line per ``interval`` training batches: epoch, batch/total, loss, lr, ETA."""

    def __init__(self, batches_per_epoch: int, interval: int = 50) -> None:
        self.batches_per_epoch = max(1, batches_per_epoch)
        self.interval = max(1, interval)
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        self._t0 = time.time()

    def on_train_batch_end(  # noqa: D102
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        done = batch_idx + 1
        if done % self.interval and done != self.batches_per_epoch:
            return
        elapsed = time.time() - self._t0
        eta = elapsed / done * max(0, self.batches_per_epoch - done)
        metrics = trainer.callback_metrics
        loss = metrics.get("train_loss")
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        log.info(
            "epoch %d/%d batch %d/%d loss %s lr %.2e elapsed %.0fs eta %.0fs",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            done,
            self.batches_per_epoch,
            f"{float(loss):.2f}" if loss is not None else "-",
            lr,
            elapsed,
            eta,
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        if trainer.sanity_checking:
            return
        valid = trainer.callback_metrics.get("valid_loss")
        if valid is not None:
            log.info("epoch %d valid_loss %.3f", trainer.current_epoch + 1, float(valid))


def progress_callbacks(batches_per_epoch: int) -> tuple[list[Callback], bool]:
    """Callbacks and Lightning's ``enable_progress_bar`` for the current output stream."""
    if sys.stderr.isatty():
        return [SizedProgressBar(batches_per_epoch)], True
    interval = max(10, batches_per_epoch // 10)
    return [LogLineProgress(batches_per_epoch, interval)], False
