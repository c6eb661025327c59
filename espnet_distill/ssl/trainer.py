"""Training of the ssl1 recipe: HuBERT pretraining (the offline teacher) and distillation of a
teacher into students (DistilHuBERT and deep/wide transformer students: layer-wise prediction;
LSTM students: output-level KD or DKD). Lightning, resumable from ``checkpoints/last.ckpt``.

``config["mode"]``:

- ``pretrain``: torchaudio's ``HuBERTPretrainModel`` on k-means labels (masked prediction; loss:
  cross-entropy of the masked frames + 10 x the CNN feature penalty, as HuBERT); ``model.pt`` is
  written by :meth:`~espnet_distill.models.hubert.HubertModel.save`;
- ``distilhubert``: a :class:`~espnet_distill.models.students.DistilHubert` regresses
  ``model.target_layers`` of the teacher (L1 - cos_weight x log sigmoid(cos) per head); its
  width is the teacher's, ``model.dim``, or (``model.budget_layers: N``) the width at which
  ``model.num_layers`` layers have the parameters of N teacher-width layers (deep vs wide);
- ``kd`` / ``dkd``: an :class:`~espnet_distill.models.students.LstmStudent` (the teacher's CNN, or
  with ``model.cnn_channel_ratio`` a narrower one of the same strides) matches the teacher's
  cluster distribution (temperature KL x T^2, or alpha TCKD + beta NCKD with the teacher's top
  cluster as target), the KD term warmed up linearly over ``model.kd_warmup_steps``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torchaudio

from espnet_distill.config import merge_config
from espnet_distill.data.audio import load_cuts, make_audio_loader
from espnet_distill.kd.losses import dkd_sum, kd_kl_sum, layer_distillation_loss
from espnet_distill.models import students
from espnet_distill.models.hubert import (
    HubertModel,
    assemble_hubert,
    count_parameters,
    load_hubert,
    receptive_field,
    split_pretrain_state,
)
from espnet_distill.models.upstream import save_student
from espnet_distill.nn import frame_mask
from espnet_distill.train.loop import begin_run, fit_averaged
from espnet_distill.train.module import TrainingModule
from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)

MODES = ("pretrain", "distilhubert", "kd", "dkd")
DEFAULT_CONFIG = {
    "mode": "distilhubert",
    "model": {},
    "optim": {"lr": 2e-4, "weight_decay": 0.0, "warmup_steps": 200},
    "train": {
        "max_epochs": 10,
        "max_duration": 60,
        "crop_seconds": 4.0,
        "seed": 1234,
        "grad_clip": 10.0,
        "num_workers": 1,
        "average_last": 1,
    },
}
MASKING = {
    "mask_prob": 0.8,
    "mask_selection": "static",
    "mask_other": 0.0,
    "mask_length": 10,
    "no_mask_overlap": False,
    "mask_min_space": 1,
    "mask_channel_prob": 0.0,
    "mask_channel_selection": "static",
    "mask_channel_other": 0.0,
    "mask_channel_length": 10,
    "no_mask_channel_overlap": False,
    "mask_channel_min_space": 1,
}


def resolve_target_layers(spec: list[int] | str, num_layers: int) -> list[int]:
    """``thirds``: the teacher layers at 1/3, 2/3 and 3/3 of its depth (DistilHuBERT's 4, 8, 12
    of 12), duplicates removed; a list is taken as it is."""
    if spec == "thirds":
        return sorted({max(1, round(num_layers * k / 3)) for k in (1, 2, 3)})
    if isinstance(spec, str):
        raise ValueError(f"model.target_layers: a list of layers or 'thirds', got '{spec}'")
    return list(spec)


class SslModule(TrainingModule):
    """What the ssl1 trainers share: a trained network ``self.net`` (the only parameters AdamW
    sees) and the train / valid steps around :meth:`step`."""

    net: torch.nn.Module

    def step(self, batch: dict, prefix: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        return self.guard(self.step(batch, "train"), batch.get("ids"))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.step(batch, "valid")

    def param_groups(self) -> Iterable:
        """The trained network only (a distillation teacher stays as it is)."""
        return self.net.parameters()


class HubertPretrainModule(SslModule):
    """HuBERT pretraining by masked prediction of k-means labels (the offline teacher)."""

    def __init__(self, config: dict, total_steps: int, num_classes: int) -> None:
        super().__init__(config, total_steps)
        m = config["model"]
        self.encoder_config = m["encoder"]
        # fairseq's pred_nomask_weight (HuBERT: 0, masked frames only); > 0 also scores the
        # unmasked frames, which teaches the CNN the frame clusters sooner on a small budget
        self.nomask_weight = float(m.get("pred_nomask_weight", 0.0))
        grad_mult = m.get("feature_grad_mult", 0.1)  # torchaudio takes None for "unscaled"
        self.net = torchaudio.models.hubert_pretrain_model(
            **m["encoder"],
            **{**MASKING, **m.get("masking", {})},
            skip_masked=False,
            skip_nomask=self.nomask_weight == 0.0,
            num_classes=num_classes,
            final_dim=m.get("final_dim", 256),
            feature_grad_mult=None if grad_mult >= 1.0 else grad_mult,
        )

    def step(self, batch: dict, prefix: str) -> torch.Tensor:
        audio, lengths, labels = batch["audio"], batch["lengths"], batch["labels"]
        feats, frames = self.net.wav2vec2.feature_extractor(audio, lengths)
        t = feats.shape[1]
        labels = torch.nn.functional.pad(labels, (0, max(0, t - labels.shape[1])), value=-1)[:, :t]
        valid = frame_mask(t, frames)
        # a labelled frame the crop or the frame count left without label takes class 0; the
        # padding frames are never scored (torchaudio's mask_m excludes them)
        labels = torch.where(valid & (labels < 0), torch.zeros_like(labels), labels).clamp(min=0)
        logit_m, logit_u, feature_pen = self.net(audio, labels, lengths)

        def ce_and_accuracy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # torchaudio puts the frame's own cluster first among the logits: the target is 0
            target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
            ce = torch.nn.functional.cross_entropy(logits.float(), target)
            return ce, (logits.argmax(-1) == 0).float().mean()

        ce, acc = ce_and_accuracy(logit_m)
        n = logit_m.shape[0]
        loss = ce + 10.0 * feature_pen
        # the logged loss is the masked one (comparable across pred_nomask_weight settings)
        self.log(f"{prefix}_loss", loss, prog_bar=True, batch_size=n)
        self.log(f"{prefix}_masked_acc", acc, prog_bar=prefix == "valid", batch_size=n)
        if self.nomask_weight and logit_u.shape[0]:
            ce_u, acc_u = ce_and_accuracy(logit_u)
            loss = loss + self.nomask_weight * ce_u
            self.log(f"{prefix}_unmasked_acc", acc_u, batch_size=logit_u.shape[0])
        return loss


class DistillModule(SslModule):
    """A student trained against a frozen teacher (kept out of the module's parameters and
    checkpoints); subclasses build ``self.net`` and score one batch in :meth:`distill`."""

    def __init__(self, config: dict, total_steps: int, teacher: HubertModel) -> None:
        super().__init__(config, total_steps)
        self.teacher = [teacher.eval().requires_grad_(False)]  # a list: not a submodule

    def on_fit_start(self) -> None:
        self.teacher[0].to(self.device)  # the frozen teacher is no submodule: move it here

    def distill(
        self, t_states: list, s_states: list, mask: torch.Tensor, n: int, prefix: str
    ) -> torch.Tensor:
        raise NotImplementedError

    def step(self, batch: dict, prefix: str) -> torch.Tensor:
        audio, lengths = batch["audio"], batch["lengths"]
        teacher = self.teacher[0]
        with torch.no_grad():
            t_states, frames = teacher.hidden_states(audio, lengths)
        s_states, _ = self.net.hidden_states(audio, lengths)
        mask = frame_mask(s_states[-1].shape[1], frames)
        n = int(mask.sum())
        loss = self.distill(t_states, s_states, mask, n, prefix)
        self.log(f"{prefix}_loss", loss, prog_bar=True, batch_size=n)
        return loss


class LayerDistillModule(DistillModule):
    """DistilHuBERT: prediction heads on the student regress the teacher's target layers."""

    def __init__(self, config: dict, total_steps: int, teacher: HubertModel) -> None:
        super().__init__(config, total_steps, teacher)
        m = config["model"]
        m["target_layers"] = resolve_target_layers(m["target_layers"], teacher.num_layers)
        dim = m.get("dim")
        if m.get("budget_layers"):  # deep vs wide: the parameters of budget_layers full layers
            budget = count_parameters(
                HubertModel(
                    students.transformer_config(
                        teacher.config, m["budget_layers"], None, m.get("ff_ratio")
                    )
                )
            )
            dim, params = students.width_for_budget(
                teacher.config, m["num_layers"], budget, ff_ratio=m.get("ff_ratio")
            )
            log.info(
                "%d layers of width %d: %d parameters for a budget of %d (%+.1f%%)",
                m["num_layers"],
                dim,
                params,
                budget,
                100 * (params - budget) / budget,
            )
        enc = students.transformer_config(teacher.config, m["num_layers"], dim, m.get("ff_ratio"))
        self.net = students.DistilHubert(
            enc, m["target_layers"], teacher.config["encoder_embed_dim"]
        )
        if m.get("init_from_teacher", True):
            copied = students.init_from_teacher(self.net.backbone, teacher)
            log.info("student: %d tensors initialised from the teacher", len(copied))

    def distill(
        self, t_states: list, s_states: list, mask: torch.Tensor, n: int, prefix: str
    ) -> torch.Tensor:
        m = self.config["model"]
        preds = self.net.predictions(s_states[-1])
        loss = 0.0
        for layer, pred, target in zip(
            m["target_layers"],
            preds,
            students.select_layers(t_states, m["target_layers"]),
            strict=True,
        ):
            head_loss, cos = layer_distillation_loss(pred, target, mask, m.get("cos_weight", 1.0))
            loss = loss + head_loss
            self.log(f"{prefix}_cos_layer{layer}", cos, batch_size=n)
        return loss


class OutputDistillModule(DistillModule):
    """An LSTM student trained on the teacher's cluster distribution: KD or DKD (``mode``)."""

    def __init__(self, config: dict, total_steps: int, teacher: HubertModel) -> None:
        super().__init__(config, total_steps, teacher)
        self.mode = config["mode"]
        m = config["model"]
        if not teacher.num_classes:
            raise ValueError(NO_HEAD)
        cnn = teacher.config
        if m.get("cnn_channel_ratio", 1.0) != 1.0:
            cnn = students.narrow_cnn(cnn, m["cnn_channel_ratio"])
        self.net = students.LstmStudent(
            cnn,
            teacher.num_classes,
            m.get("hidden", 256),
            m.get("num_layers", 2),
            m.get("bidirectional", True),
        )
        copied = students.init_from_teacher(
            self.net.feature_extractor, teacher.wav2vec2.feature_extractor
        )
        log.info("student: %d CNN tensors initialised from the teacher", len(copied))

    def distill(
        self, t_states: list, s_states: list, mask: torch.Tensor, n: int, prefix: str
    ) -> torch.Tensor:
        m = self.config["model"]
        teacher = self.teacher[0]
        with torch.no_grad():
            t_logits = teacher.unit_logits(t_states[-1])
        s_logits = self.net.unit_logits(s_states[-1])
        temp = m.get("temperature", 4.0 if self.mode == "dkd" else 1.0)
        if self.mode == "kd":
            kd = kd_kl_sum(s_logits, t_logits, mask, temp)
        else:
            kd = dkd_sum(
                s_logits,
                t_logits,
                t_logits.argmax(-1),
                mask,
                m.get("alpha", 1.0),
                m.get("beta", 8.0),
                temp,
            )
        kd = kd / max(n, 1)
        warm = min(1.0, (self.global_step + 1) / max(m.get("kd_warmup_steps", 1), 1))
        loss = warm * kd if prefix == "train" else kd
        agree = (s_logits.argmax(-1) == t_logits.argmax(-1))[mask].float().mean()
        self.log(f"{prefix}_top1_agreement", agree, prog_bar=prefix == "valid", batch_size=n)
        return loss


def make_ssl_module(
    config: dict, total_steps: int, teacher: HubertModel | None = None, num_classes: int = 0
) -> SslModule:
    """The module of ``config["mode"]`` (one of :data:`MODES`)."""
    mode = config["mode"]
    if mode == "pretrain":
        return HubertPretrainModule(config, total_steps, num_classes)
    if teacher is None:
        raise ValueError(f"mode {mode} distils a teacher: give one")
    if mode == "distilhubert":
        return LayerDistillModule(config, total_steps, teacher)
    return OutputDistillModule(config, total_steps, teacher)


def read_labels(path: Path) -> dict[str, np.ndarray]:
    """``labels.npz`` (cut id -> int array of frame labels) written by the label stage."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def train_ssl(
    config: dict,
    exp_dir: Path,
    train_cuts: Path,
    valid_cuts: Path,
    teacher_path: Path | None = None,
    labels_path: Path | None = None,
    ngpu: int = 0,
) -> Path:
    """Train (or resume) and write ``exp_dir/model.pt``; returns its path."""
    config = merge_config(DEFAULT_CONFIG, config)
    if config["mode"] not in MODES:
        raise ValueError(f"unknown mode '{config['mode']}', expected one of {', '.join(MODES)}")
    final = exp_dir / "model.pt"
    if begin_run(exp_dir, config):
        return final
    tc = config["train"]
    labels = num_classes = None
    teacher = None
    if config["mode"] == "pretrain":
        if labels_path is None:
            raise ValueError("pretraining needs frame labels (--labels)")
        labels = read_labels(labels_path)
        num_classes = int(max(int(v.max()) for v in labels.values()) + 1)
        field = receptive_field(config["model"]["encoder"])
    else:
        if teacher_path is None:
            raise ValueError(f"mode {config['mode']} distils a teacher: --teacher is needed")
        teacher = load_hubert(teacher_path)
        field = receptive_field(teacher.config)
    train_set = load_cuts(train_cuts, field, labels)
    valid_set = load_cuts(valid_cuts, field, labels)
    train_dl = make_audio_loader(
        train_set,
        tc["max_duration"],
        True,
        tc["seed"],
        labels,
        tc["crop_seconds"],
        tc["num_workers"],
    )
    valid_dl = make_audio_loader(valid_set, tc["max_duration"], False, labels=labels)
    train_dl.sampler.set_epoch(0)
    steps_per_epoch = sum(1 for _ in train_dl.sampler)
    module = make_ssl_module(config, steps_per_epoch * tc["max_epochs"], teacher, num_classes or 0)
    log.info(
        "%s: %.2fM trainable parameters%s; %d batches an epoch",
        config["mode"],
        count_parameters(module.net) / 1e6,
        f", teacher {count_parameters(teacher) / 1e6:.2f}M" if teacher else "",
        steps_per_epoch,
    )
    state, _ = fit_averaged(
        module,
        exp_dir,
        tc,
        steps_per_epoch,
        "net.",
        train_dataloaders=train_dl,
        val_dataloaders=valid_dl,
        ngpu=ngpu,
    )
    with atomic_output(final) as tmp:
        if config["mode"] == "pretrain":
            body, emb, proj = split_pretrain_state(state)
            model = assemble_hubert(config["model"]["encoder"], body, emb, proj, exp_dir)
            model.save(tmp)
        else:
            module.net.load_state_dict(state)
            save_student(module.net, config["mode"], tmp)
    return final


NO_HEAD = (
    "output-level KD (modes kd, dkd) needs a teacher with its masked-prediction head "
    "(cluster embeddings): a torchaudio HuBERTPretrainModel or fairseq checkpoint, or "
    "ssl1's own stage-3 teacher; Hugging Face HubertModel dirs and Wav2Vec2Model state "
    "dicts have none"
)


def students_needing_a_head(teacher: HubertModel, configs: dict[str, dict]) -> list[str]:
    """The students (name -> config) that ``teacher`` cannot train: output-level KD from a
    teacher without cluster embeddings. ssl1 checks this before stage 4 trains any of them."""
    if teacher.num_classes:
        return []
    return [name for name, config in configs.items() if config.get("mode") in ("kd", "dkd")]
