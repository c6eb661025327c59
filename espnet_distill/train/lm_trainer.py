"""Training of a unit LM (:class:`~espnet_distill.lm.unit_lm.UnitLM`) on unit sequences of text.

Lightning, like the acoustic model: ``exp_dir`` gets ``config.yaml``, ``checkpoints/`` (resumable
``last.ckpt``), ``tensorboard/``, and finally ``model.pt`` (average of the last epochs) and
``ppl.yaml`` (perplexity on the valid sequences, ``<eos>`` counted as a token, as ESPnet does).
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import torch
import yaml
from torch.nn.utils.rnn import pad_sequence

from espnet_distill.lm.hf_lm import HfUnitLM
from espnet_distill.lm.unit_lm import UnitLM
from espnet_distill.train.loop import begin_run, fit_averaged
from espnet_distill.train.module import TrainingModule
from espnet_distill.utils import atomic_write_text, save_torch

log = logging.getLogger(__name__)

DEFAULT_LM_CONFIG: dict = {
    "arch": "lstm",
    "lm_conf": {"unit": 256, "nlayers": 2, "dropout_rate": 0.1},
    "optim": {"lr": 2e-3, "weight_decay": 0.0, "warmup_steps": 100},
    "train": {
        "max_epochs": 5,
        "max_tokens": 20000,
        "grad_clip": 1.0,
        "average_last": 2,
        "seed": 1234,
    },
}


def token_batches(seqs: list[list[int]], max_tokens: int) -> list[list[int]]:
    """Indices of ``seqs`` grouped by length into batches of at most ``max_tokens`` padded tokens."""
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    batches, cur, longest = [], [], 0
    for i in order:
        n = len(seqs[i]) + 1
        if cur and max(longest, n) * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    return batches


def collate(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit sequences -> (B, L) padded with -1, and lengths."""
    rows = [torch.tensor(s, dtype=torch.long) for s in seqs]
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(rows, batch_first=True, padding_value=-1), lens


class _Batches(torch.utils.data.Dataset):
    """One item = one batch; reshuffled every epoch (``set_epoch``, which the module calls) with
    the seed."""

    def __init__(self, seqs: list[list[int]], max_tokens: int, shuffle: bool, seed: int) -> None:
        self.seqs, self.shuffle, self.seed = seqs, shuffle, seed
        self.fixed = token_batches(seqs, max_tokens)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.batches = list(self.fixed)
        if self.shuffle:
            random.Random(self.seed + epoch).shuffle(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return collate([self.seqs[j] for j in self.batches[i]])


class LmLitModule(TrainingModule):
    def __init__(self, config: dict, num_units: int, total_steps: int) -> None:
        super().__init__(config, total_steps)
        self.lm = UnitLM(num_units, config["arch"], config["lm_conf"])

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str) -> torch.Tensor:
        units, lens = batch
        nll, n = self.lm.nll(units, lens)
        loss = nll / n
        self.log(
            f"{prefix}_loss", loss, prog_bar=True, batch_size=int(n), sync_dist=prefix == "valid"
        )
        return loss

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor | None:
        return self.guard(self._step(batch, "train"))

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        self._step(batch, "valid")


@torch.no_grad()
def perplexity(lm: UnitLM | HfUnitLM, seqs: list[list[int]], max_tokens: int = 20000) -> float:
    """exp(mean negative log-likelihood per token), ``<eos>`` included."""
    lm.eval()
    total, count = 0.0, 0
    for batch in token_batches(seqs, max_tokens):
        nll, n = lm.nll(*collate([seqs[i] for i in batch]))
        total, count = total + float(nll), count + int(n)
    return math.exp(total / max(count, 1))


def write_perplexity(exp_dir: Path, ppl: float, valid_seqs: list[list[int]], **about) -> None:
    """``exp_dir/ppl.yaml``: the valid perplexity, what it was measured on, and ``about``."""
    summary = {
        "valid_perplexity": round(ppl, 3),
        "valid_sequences": len(valid_seqs),
        "valid_tokens": sum(len(s) + 1 for s in valid_seqs),  # + </s>
        **about,
    }
    atomic_write_text(exp_dir / "ppl.yaml", yaml.safe_dump(summary, sort_keys=False))


def register_hf_lm(
    hf_dir: Path, unit_names: list[str], valid_seqs: list[list[int]], exp_dir: Path
) -> Path:
    """Check a Hugging Face causal LM against the units, write its perplexity (``ppl.yaml``) and
    ``exp_dir/model.pt`` naming it (see :func:`~espnet_distill.lm.unit_lm.load_unit_lm`)."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    lm = HfUnitLM(hf_dir.resolve(), unit_names)  # refuses a vocabulary that does not match
    ppl = perplexity(lm, valid_seqs, max_tokens=4000)
    write_perplexity(exp_dir, ppl, valid_seqs, hf_model=str(lm.path))
    log.info("%s: valid perplexity %.3f over the %d subword units", lm.path, ppl, len(unit_names))
    final = exp_dir / "model.pt"
    save_torch(
        {
            "kind": "hf",
            "path": str(lm.path),
            "num_units": len(unit_names),
            "unit_names": unit_names,
        },
        final,
    )
    return final


def train_unit_lm(
    config: dict,
    num_units: int,
    train_seqs: list[list[int]],
    valid_seqs: list[list[int]],
    exp_dir: Path,
) -> Path:
    """Train (or resume) and write ``exp_dir/model.pt`` and ``ppl.yaml``; returns model.pt."""
    final = exp_dir / "model.pt"
    if begin_run(exp_dir, config):
        return final
    if not train_seqs or not valid_seqs:
        raise ValueError(
            f"{exp_dir}: no training ({len(train_seqs)}) or valid "
            f"({len(valid_seqs)}) unit sequences"
        )
    tc = config["train"]
    train_data = _Batches(train_seqs, tc["max_tokens"], True, tc["seed"])
    valid_data = _Batches(valid_seqs, tc["max_tokens"], False, 0)
    loader = {"batch_size": None, "num_workers": 0}
    train_dl = torch.utils.data.DataLoader(train_data, shuffle=False, **loader)
    valid_dl = torch.utils.data.DataLoader(valid_data, shuffle=False, **loader)
    steps = len(train_data) * tc["max_epochs"]
    module = LmLitModule(config, num_units, steps)
    n_params = sum(p.numel() for p in module.lm.parameters())
    log.info(
        "%s LM over %d units: %.2fM parameters; %d sequences (%d tokens), %d batches an epoch",
        config["arch"],
        num_units,
        n_params / 1e6,
        len(train_seqs),
        sum(len(s) for s in train_seqs),
        len(train_data),
    )
    state, kept = fit_averaged(
        module,
        exp_dir,
        tc,
        len(train_data),
        "lm.",
        train_dataloaders=train_dl,
        val_dataloaders=valid_dl,
    )
    lm = UnitLM(num_units, config["arch"], config["lm_conf"])
    lm.load_state_dict(state)
    ppl = perplexity(lm, valid_seqs, tc["max_tokens"])
    write_perplexity(exp_dir, ppl, valid_seqs, averaged=len(kept))
    log.info("valid perplexity %.3f (average of %d checkpoints)", ppl, len(kept))
    save_torch({"config": config, "num_units": num_units, "state_dict": lm.state_dict()}, final)
    return final
