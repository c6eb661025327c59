"""Lightning training of the CTC acoustic model: checkpoints, resume, TensorBoard, progress bar.

The experiment dir holds ``config.yaml`` (resolved), ``checkpoints/`` (the best epochs by valid loss
and ``last.ckpt``), ``tensorboard/``, and finally ``model.pt``: the average of the best epochs'
weights with the config, the file decoding reads.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from espnet2.schedulers.warmup_lr import WarmupLR
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from espnet_distill.data.datamodule import make_loader
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.models.ctc_am import CtcAcousticModel
from espnet_distill.train.progress import progress_callbacks
from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)

DEFAULT_CONFIG: dict = {
    "model": {"encoder": "conformer", "encoder_conf": {}, "specaug_conf": None},
    # scheduler: "warmuplr" (ESPnet's Noam-style inverse square root decay) or "linear" (warm-up,
    # then linear decay to zero at the last step: better when the budget is a fixed few epochs)
    "optim": {"lr": 2e-3, "weight_decay": 1e-6, "warmup_steps": 500, "scheduler": "warmuplr"},
    "train": {
        "max_epochs": 20,
        "max_duration": 200.0,
        "max_cut_duration": 30.0,
        "grad_clip": 5.0,
        "num_workers": 1,
        "average_best": 5,
        # which epochs to average: "valid_loss" (the best by validation loss) or "last" (the last
        # ones, icefall's habit: with a schedule that decays to zero they are the best trained)
        "average_by": "valid_loss",
        "seed": 1234,
        "precision": "32-true",
    },
}


def merge_config(base: dict, override: dict) -> dict:
    """Recursive dict update (override wins)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """``train.max_epochs=3`` style overrides; values are parsed as YAML."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override '{item}' is not of the form section.key=value")
        dotted, value = item.split("=", 1)
        node = config
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return config


def build_model(config: dict, vocab_size: int) -> CtcAcousticModel:
    m = config["model"]
    return CtcAcousticModel(
        vocab_size=vocab_size,
        input_size=m.get("input_size", 80),
        encoder=m["encoder"],
        encoder_conf=m.get("encoder_conf"),
        specaug_conf=m.get("specaug_conf"),
        subsampling_conf=m.get("subsampling_conf"),
    )


class CtcLitModule(L.LightningModule):
    def __init__(self, config: dict, vocab_size: int, total_steps: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.model = build_model(config, vocab_size)
        self.total_steps = total_steps

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.model(batch["feats"], batch["feat_lens"], batch["ys"], batch["ys_lens"])
        bs = len(batch["ids"])
        self.log("train_loss", loss, prog_bar=True, batch_size=bs)
        self.log("lr", self.optimizers().param_groups[0]["lr"], prog_bar=False, batch_size=bs)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, _ = self.model(batch["feats"], batch["feat_lens"], batch["ys"], batch["ys_lens"])
        self.log("valid_loss", loss, prog_bar=True, batch_size=len(batch["ids"]), sync_dist=True)

    def configure_optimizers(self) -> dict:
        o = self.config["optim"]
        opt = torch.optim.AdamW(self.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
        kind = o.get("scheduler", "warmuplr")
        if kind == "warmuplr":
            sched = WarmupLR(opt, warmup_steps=o["warmup_steps"])
        elif kind == "linear":
            if not self.total_steps:
                raise ValueError("optim.scheduler=linear needs the number of training steps")
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, LinearWarmupDecay(o["warmup_steps"], self.total_steps)
            )
        else:
            raise ValueError(f"optim.scheduler: unknown '{kind}', expected warmuplr or linear")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


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


def train(
    config: dict,
    exp_dir: Path,
    train_cuts: Path,
    valid_cuts: Path,
    lang_dir: Path,
    cmvn_file: Path,
    ngpu: int = 0,
    num_nodes: int = 1,
) -> Path:
    """Train (or resume) and write ``exp_dir/model.pt``; returns its path."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    final = exp_dir / "model.pt"
    if final.is_file():
        log.info("%s exists: training is finished", final)
        return final
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    tc = config["train"]
    L.seed_everything(tc["seed"], workers=True)
    tokenizer = BpeTokenizer(lang_dir / "bpe.model")
    train_dl = make_loader(
        train_cuts, tokenizer, tc["max_duration"], train=True, seed=tc["seed"],
        num_workers=tc["num_workers"], max_cut_duration=tc["max_cut_duration"],
    )  # fmt: skip
    # Batches per epoch vary a little with the shuffle; epoch 0's count sets the LR schedule.
    train_dl.sampler.set_epoch(0)
    steps_per_epoch = sum(1 for _ in train_dl.sampler)
    module = CtcLitModule(config, tokenizer.vocab_size, steps_per_epoch * tc["max_epochs"])
    stats = np.load(cmvn_file)
    module.model.set_cmvn(torch.from_numpy(stats["mean"]), torch.from_numpy(stats["std"]))
    n_params = sum(p.numel() for p in module.model.parameters())
    log.info(
        "model: %s encoder, %.2fM parameters, vocab %d; %d batches per epoch",
        config["model"]["encoder"],
        n_params / 1e6,
        tokenizer.vocab_size,
        steps_per_epoch,
    )
    valid_dl = make_loader(valid_cuts, tokenizer, tc["max_duration"], train=False, num_workers=0)
    ckpt_dir = exp_dir / "checkpoints"
    average_by = tc.get("average_by", "valid_loss")
    if average_by not in ("valid_loss", "last"):
        raise ValueError(f"train.average_by: unknown '{average_by}', expected valid_loss or last")
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="epoch{epoch:03d}-valid_loss{valid_loss:.3f}",
        auto_insert_metric_name=False,
        monitor="valid_loss" if average_by == "valid_loss" else "epoch",
        mode="min" if average_by == "valid_loss" else "max",
        save_top_k=tc["average_best"],
        save_last=True,
    )
    progress, show_bar = progress_callbacks(steps_per_epoch)
    trainer = L.Trainer(
        default_root_dir=exp_dir,
        accelerator="gpu" if ngpu > 0 else "cpu",
        devices=ngpu if ngpu > 0 else 1,
        num_nodes=num_nodes,
        max_epochs=tc["max_epochs"],
        gradient_clip_val=tc["grad_clip"],
        precision=tc["precision"],
        callbacks=[checkpoint, *progress],
        enable_progress_bar=show_bar,
        logger=TensorBoardLogger(exp_dir, name="tensorboard", version=""),
        use_distributed_sampler=False,  # lhotse samplers shard by rank themselves
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        enable_model_summary=False,
    )
    last = ckpt_dir / "last.ckpt"
    if last.is_file():
        log.info("resuming from %s", last)
    trainer.fit(module, train_dl, valid_dl, ckpt_path=str(last) if last.is_file() else None)
    best = sorted(checkpoint.best_k_models, key=lambda p: float(checkpoint.best_k_models[p]))
    if average_by == "last":
        best = best[::-1]
    if not best:
        raise RuntimeError(f"no checkpoint was saved in {ckpt_dir}")
    log.info(
        "averaging %d checkpoints (by %s): %s",
        len(best),
        average_by,
        ", ".join(Path(b).name for b in best),
    )
    state = average_checkpoints([Path(b) for b in best])
    with atomic_output(final) as tmp:
        torch.save({"config": config, "vocab_size": tokenizer.vocab_size, "state_dict": state,
                "averaged": [Path(b).name for b in best]}, tmp)  # fmt: skip
    return final


def load_model(path: Path, device: str = "cpu") -> tuple[CtcAcousticModel, dict]:
    """The averaged model of :func:`train`, in eval mode, and its config."""
    blob = torch.load(path, map_location=device, weights_only=False)
    model = build_model(blob["config"], blob["vocab_size"])
    model.load_state_dict(blob["state_dict"])
    return model.eval().to(device), blob["config"]
