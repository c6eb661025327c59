"""The training loop every trainer of the project shares (AM, unit LM, SSL, KWS/SV fine-tuning).

One place for what a rerun must find the same in every trainer: checkpoints under
``<exp_dir>/checkpoints`` written atomically, resuming from ``last.ckpt``, progress sized to the
measured epoch, TensorBoard logs in ``<exp_dir>/tensorboard``, the LR schedule, and averaging the
kept checkpoints into the final model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import CombinedLoader

from espnet_distill.train.fault import AtomicCheckpointIO
from espnet_distill.train.progress import progress_callbacks

log = logging.getLogger(__name__)


def begin_run(exp_dir: Path, config: dict, output: str = "model.pt") -> bool:
    """The start every trainer shares. True when ``exp_dir/output`` exists: the run is finished
    and the caller returns it. Otherwise the resolved ``config.yaml`` is written, the seed
    (``train.seed``) and the thread count (``train.num_threads``, if set) are set, and False."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    if (exp_dir / output).is_file():
        log.info("%s exists: training is finished", exp_dir / output)
        return True
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    tc = config["train"]
    L.seed_everything(tc["seed"], workers=True)
    if tc.get("num_threads"):  # small LSTMs run faster on one thread (many tiny matmuls)
        torch.set_num_threads(tc["num_threads"])
    return False


class LinearWarmupDecay:
    """LR factor: linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = max(1, warmup), max(total, warmup + 1)

    def __call__(self, step: int) -> float:
        step += 1
        if step <= self.warmup:
            return step / self.warmup
        return max(0.0, (self.total - step) / (self.total - self.warmup))


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the model weights of several Lightning checkpoints."""
    avg: dict[str, torch.Tensor] = {}
    for p in paths:
        state = torch.load(p, map_location="cpu", weights_only=False)["state_dict"]
        for k, v in state.items():
            k = k.removeprefix("model.")
            avg[k] = avg[k] + v.double() if k in avg else v.double().clone()
    return {k: (v / len(paths)).to(torch.float32) for k, v in avg.items()}


def last_epochs_checkpoint(ckpt_dir: Path, keep: int) -> ModelCheckpoint:
    """Keeps the checkpoints of the last ``keep`` epochs, plus ``last.ckpt`` to resume from."""
    return ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="epoch{epoch:03d}",
        auto_insert_metric_name=False,
        monitor="epoch",
        mode="max",
        save_top_k=keep,
        save_last=True,
    )


def kept_checkpoints(checkpoint: ModelCheckpoint) -> list[Path]:
    """The checkpoints ``checkpoint`` kept, by their monitored value, lowest first (with
    :func:`last_epochs_checkpoint`: the oldest epoch first). RuntimeError when none was saved."""
    kept = sorted(checkpoint.best_k_models, key=lambda p: float(checkpoint.best_k_models[p]))
    if not kept:
        raise RuntimeError(f"no checkpoint was saved in {checkpoint.dirpath}")
    return [Path(p) for p in kept]


def fit_averaged(
    module: L.LightningModule,
    exp_dir: Path,
    tc: dict,
    steps_per_epoch: int,
    prefix: str,
    **fit: Any,
) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """:func:`fit_resuming` keeping the last ``tc["average_last"]`` epochs' checkpoints, then the
    mean of those: the weights of the module's submodule ``prefix`` (e.g. ``"net."``), named
    without it, and the checkpoints averaged (oldest epoch first)."""
    checkpoint = last_epochs_checkpoint(exp_dir / "checkpoints", tc["average_last"])
    fit_resuming(module, exp_dir, tc, steps_per_epoch, checkpoint, **fit)
    kept = kept_checkpoints(checkpoint)
    averaged = average_checkpoints(kept)
    state = {k.removeprefix(prefix): v for k, v in averaged.items() if k.startswith(prefix)}
    return state, kept


def set_data_epoch(loaders: Any, epoch: int) -> None:
    """``set_epoch(epoch)`` on every sampler, batch sampler and dataset that has one, in a
    DataLoader, a CombinedLoader or a list/tuple/dict of them: each epoch's order comes from
    (seed, epoch)."""
    if isinstance(loaders, CombinedLoader):
        loaders = loaders.flattened
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    for loader in loaders if isinstance(loaders, list | tuple) else [loaders]:
        batch_sampler = getattr(loader, "batch_sampler", None)
        parts = (
            getattr(loader, "sampler", None),
            batch_sampler,
            getattr(batch_sampler, "sampler", None),
            getattr(loader, "dataset", None),
        )
        for part in {id(p): p for p in parts if p is not None}.values():
            if callable(getattr(part, "set_epoch", None)):
                part.set_epoch(epoch)


class _DataEpochs(L.LightningDataModule):
    """The training data of ``fit_resuming``, its epoch set before each epoch's iterator exists.

    Lightning makes the first epoch's iterator when it sets up the data, before it sets the
    samplers' epoch, and in a run resumed from an end-of-epoch checkpoint it never calls
    ``on_train_epoch_start`` for that epoch: left to it, the resumed epoch would repeat the
    previous epoch's order. So the loader gets its epoch here, when Lightning asks for it (after
    the checkpoint's loop state is restored), and again at each later epoch's start.
    """

    def __init__(self, train: Any, valid: Any = None) -> None:
        super().__init__()
        self._train, self._valid = train, valid
        self._loader: Any = None
        self.callback = _EpochStart(self)

    def train_dataloader(self) -> Any:
        self._loader = self._train() if callable(self._train) else self._train
        # the epoch the fit loop is about to run (its restored count of processed epochs)
        set_data_epoch(self._loader, self.trainer.fit_loop.epoch_progress.current.processed)
        return self._loader


class _EpochStart(Callback):
    def __init__(self, data: _DataEpochs) -> None:
        self.data = data

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # noqa: D102
        set_data_epoch(self.data._loader, trainer.current_epoch)


class _DataEpochsWithValidation(_DataEpochs):
    def val_dataloader(self) -> Any:
        return self._valid() if callable(self._valid) else self._valid


def fit_resuming(
    module: L.LightningModule,
    exp_dir: Path,
    train_config: dict,
    batches_per_epoch: int,
    checkpoint: ModelCheckpoint,
    *,
    train_dataloaders: Any,
    val_dataloaders: Any = None,
    ngpu: int = 0,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
    **trainer_options: Any,
) -> L.Trainer:
    """Fit ``module``, resuming from ``<checkpoint.dirpath>/last.ckpt`` when a killed run left one.

    ``train_dataloaders`` / ``val_dataloaders``: loaders (a DataLoader, a CombinedLoader) or
    functions making them inside the fit (multi-process training: after the processes have joined
    their group). Each epoch's data order is set from the epoch (``set_data_epoch``), so a resumed
    run sees the batches an uninterrupted one does. ``train_config`` gives ``max_epochs`` and
    ``grad_clip``; ``trainer_options`` override or add ``lightning.Trainer`` arguments (devices,
    strategy, precision, ...). Returns the trainer, whose ``checkpoint`` callback lists the kept
    checkpoints.
    """
    progress, show_bar = progress_callbacks(batches_per_epoch)
    data = (
        _DataEpochs(train_dataloaders)
        if val_dataloaders is None
        else _DataEpochsWithValidation(train_dataloaders, val_dataloaders)
    )
    options: dict[str, Any] = {
        "default_root_dir": exp_dir,
        "accelerator": "gpu" if ngpu else "cpu",
        "devices": ngpu or 1,
        "max_epochs": train_config["max_epochs"],
        "gradient_clip_val": train_config["grad_clip"],
        "callbacks": [checkpoint, data.callback, *callbacks, *progress],
        "plugins": [AtomicCheckpointIO()],
        "enable_progress_bar": show_bar,
        "logger": TensorBoardLogger(exp_dir, name="tensorboard", version=""),
        "use_distributed_sampler": False,  # lhotse samplers and ours shard by rank themselves
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 10,
        "enable_model_summary": False,
    }
    options.update(trainer_options)
    trainer = L.Trainer(**options)
    last = Path(checkpoint.dirpath) / "last.ckpt"
    if last.is_file():
        log.info("resuming from %s", last)
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    return trainer
