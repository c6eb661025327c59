"""The LightningModule every trainer subclasses (AM, unit LM, SSL, KWS/SV fine-tuning, probes):
the config, fault handling and per-batch seeding (:class:`FaultTolerantModule`), and AdamW with
the warm-up schedule of the config's ``optim`` section. A subclass writes its steps and, where not
every parameter trains at ``optim.lr``, :meth:`TrainingModule.param_groups`."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from espnet2.schedulers.warmup_lr import WarmupLR

from espnet_distill.train.fault import FaultTolerantModule
from espnet_distill.train.loop import LinearWarmupDecay

SCHEDULERS = ("linear", "warmuplr")


class TrainingModule(FaultTolerantModule):
    """``config``: the trainer's resolved config (``optim`` and ``train`` sections); ``total_steps``:
    optimizer steps of the whole run, which the ``linear`` schedule decays to zero at."""

    def __init__(self, config: dict, total_steps: int | None) -> None:
        super().__init__()
        self.configure_faults(config["train"])
        self.config, self.total_steps = config, total_steps

    def param_groups(self) -> Iterable:
        """What AdamW trains: every parameter at ``optim.lr`` unless a subclass says otherwise."""
        return self.parameters()

    def configure_optimizers(self) -> dict:
        """AdamW and ``optim.scheduler``: ``linear`` (warm-up, then linear decay to zero at the
        last step) or ``warmuplr`` (ESPnet's Noam-style inverse square root decay)."""
        o = self.config["optim"]
        opt = torch.optim.AdamW(
            self.param_groups(), lr=o["lr"], weight_decay=o["weight_decay"], eps=o.get("eps", 1e-8)
        )
        kind = o.get("scheduler", "linear")
        if kind == "warmuplr":
            sched = WarmupLR(opt, warmup_steps=o["warmup_steps"])
        elif kind == "linear":
            if not self.total_steps:
                raise ValueError("optim.scheduler=linear needs the number of training steps")
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, LinearWarmupDecay(o["warmup_steps"], self.total_steps)
            )
        else:
            raise ValueError(f"optim.scheduler: unknown '{kind}', expected one of {SCHEDULERS}")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
