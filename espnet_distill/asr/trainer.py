"""Lightning training of the acoustic model (CTC, hybrid senone, or both): checkpoints, resume,
TensorBoard, progress bar.

The experiment dir holds ``config.yaml`` (resolved), ``checkpoints/`` (the best epochs by valid loss
and ``last.ckpt``), ``tensorboard/``, and finally ``model.pt``: the average of the best epochs'
weights with the config, the file decoding reads.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import kaldiio
import numpy as np
import torch
import yaml
from lhotse import CutSet
from lightning.pytorch.callbacks import ModelCheckpoint

from espnet_distill.align.targets import UNITS, unit_named
from espnet_distill.asr.ssl_teacher import SslTeacher
from espnet_distill.data.datamodule import make_loader, scp_keys
from espnet_distill.data.teacher_frames import check_teacher_frames
from espnet_distill.kd.teacher import LmTeacher
from espnet_distill.kd.units import TextToUnits, UnitTables, read_units
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.lm.unit_lm import load_unit_lm
from espnet_distill.models.acoustic_model import SSL_KD_HEADS, build_model, kd_heads_of
from espnet_distill.train.loop import average_checkpoints, begin_run, fit_resuming, kept_checkpoints
from espnet_distill.train.module import TrainingModule
from espnet_distill.utils import save_torch

log = logging.getLogger(__name__)

DEFAULT_CONFIG: dict = {
    # ctc_weight 0: no CTC output. senone_head (e.g. {upsample: 4, weight: 1.0}): the hybrid
    # senone output trained on the stage-4 alignment (needs the targets dir)
    "model": {
        "encoder": "conformer",
        "encoder_conf": {},
        "specaug_conf": None,
        "ctc_weight": 1.0,
        "senone_head": None,
    },
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


def senone_counts(scp: Path, cut_ids: set[str], num_senones: int) -> np.ndarray:
    """Frames of each senone in the stage-4 alignment of ``cut_ids`` (the prior's statistics)."""
    counts = np.zeros(num_senones, dtype=np.int64)
    for cut_id, ali in kaldiio.load_scp_sequential(str(scp)):
        if cut_id in cut_ids:
            if ali.size and (ali.min() < 0 or ali.max() >= num_senones):
                raise ValueError(f"{scp}: {cut_id} has senone ids outside [0, {num_senones})")
            counts += np.bincount(ali, minlength=num_senones)
    return counts


class AmLitModule(TrainingModule):
    """``teachers``: unit -> frozen :class:`LmTeacher` of the KD heads / label interpolation
    (kept in a plain dict: not parameters of this module, not in its checkpoints); ``hint_teacher``:
    the frozen SSL teacher layer of ``model.hint_kd``, run on each batch's audio (kept out the
    same way)."""

    def __init__(
        self,
        config: dict,
        vocab_size: int,
        total_steps: int | None = None,
        num_senones: int | None = None,
        unit_sizes: dict[str, int] | None = None,
        teachers: dict[str, LmTeacher] | None = None,
        hint_teacher: SslTeacher | None = None,
    ) -> None:
        super().__init__(config, total_steps)
        teacher_dim = hint_teacher.dim if hint_teacher is not None else None
        self.model = build_model(
            config, vocab_size, num_senones, unit_sizes, ssl_kd_heads=True, teacher_dim=teacher_dim
        )
        self.teachers = dict(teachers or {})
        self.hint_teacher = hint_teacher  # not a module: no state in checkpoints, no gradient

    def _teacher_layer(self, batch: dict) -> torch.Tensor | None:
        """The hint teacher's layer of the batch's audio; a cut whose teacher frame count does
        not fit its feature frames is refused by name."""
        if self.hint_teacher is None or "teacher_audio" not in batch:
            return None
        layer, frames = self.hint_teacher(batch["teacher_audio"], batch["teacher_audio_lens"])
        for cut_id, n, f in zip(
            batch["ids"], frames.tolist(), batch["frame_lens"].tolist(), strict=True
        ):
            check_teacher_frames(cut_id, n, f, str(self.hint_teacher.path))
        return layer

    def _step(self, batch: dict, prefix: str) -> torch.Tensor:
        soft = {}
        for unit, teacher in self.teachers.items():
            if f"{unit}_targets" in batch:
                soft[unit] = teacher(batch[f"{unit}_targets"])
        out = self.model(
            batch["feats"],
            batch["feat_lens"],
            batch.get("ys"),
            batch.get("ys_lens"),
            batch.get("senone_targets"),
            soft,
            batch.get("codebook_indexes"),
            self._teacher_layer(batch),
        )
        bs = len(batch["ids"])
        sync = prefix == "valid"
        self.log(f"{prefix}_loss", out["loss"], prog_bar=True, batch_size=bs, sync_dist=sync)
        several = (self.model.ctc is not None) + (self.model.senone_head is not None) + len(soft)
        several += ("mvq" in out) + ("hint" in out)
        for name in ("ctc", "senone", *(f"kd_{u}" for u in self.model.kd_heads), "mvq", "hint"):
            if name in out and several > 1:
                self.log(f"{prefix}_{name}_loss", out[name], batch_size=bs, sync_dist=sync)
        if "hint_cos" in out:
            self.log(f"{prefix}_hint_cos", out["hint_cos"], batch_size=bs, sync_dist=sync)
        if "senone_frames" in out and out["senone_frames"] > 0:
            acc = out["senone_correct"].float() / out["senone_frames"]
            self.log(
                f"{prefix}_senone_acc",
                acc,
                prog_bar=sync,
                batch_size=int(out["senone_frames"]),
                sync_dist=sync,
            )
        return out["loss"]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("lr", self.optimizers().param_groups[0]["lr"], batch_size=len(batch["ids"]))
        return self.guard(loss, batch["ids"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "valid")


def train(
    config: dict,
    exp_dir: Path,
    train_cuts: Path,
    valid_cuts: Path,
    lang_dir: Path,
    cmvn_file: Path,
    ngpu: int = 0,
    num_nodes: int = 1,
    targets_dir: Path | None = None,
    unit_lm_dir: Path | None = None,
    phone_lang_dir: Path | None = None,
    cpu_procs: int = 1,
    codebook_dir: Path | None = None,
    kd_teacher: Path | None = None,
) -> Path:
    """Train (or resume) and write ``exp_dir/model.pt``; returns its path.

    ``targets_dir``: stage 4's ``targets/`` (``<unit>.scp``, ``units/<unit>.txt``), needed by a
    model with a senone head or KD heads. Validation scores those outputs too when the valid cuts
    were aligned in stage 4. KD heads and label interpolation need ``unit_lm_dir`` (stage 5's
    ``<unit>/model.pt``) and ``phone_lang_dir`` (which frames are silence, per unit).
    ``cpu_procs`` > 1 (without GPUs): data-parallel CPU processes (DDP over gloo).
    ``model.mvq_kd`` needs ``codebook_dir`` (stage 5's teacher codebooks: ``cuts_<part>.jsonl.gz``
    beside ``quantizer.yaml``), ``model.hint_kd`` the teacher checkpoint ``kd_teacher``.
    """
    final = exp_dir / "model.pt"
    if begin_run(exp_dir, config):
        return final
    tc = config["train"]
    tokenizer = BpeTokenizer(lang_dir / "bpe.model")
    m = config["model"]
    kd_units = list(kd_heads_of(m))
    teacher_units = sorted(set(kd_units) | ({"senone"} if m.get("label_interpolation") else set()))
    units = sorted(set(teacher_units) | ({"senone"} if m.get("senone_head") else set()))
    targets, valid_targets, unit_sizes = _frame_targets(targets_dir, units, valid_cuts)
    num_senones = unit_sizes.get("senone") if m.get("senone_head") else None
    teachers = _teachers(
        teacher_units, unit_lm_dir, phone_lang_dir, targets_dir, lang_dir, unit_sizes
    )
    audio = bool(m.get("ssl_frontend"))  # an SSL front-end reads audio, not fbank
    codebooks, valid_codebooks = _codebook_manifests(m, codebook_dir, train_cuts, valid_cuts)
    hint_teacher = None
    if m.get("hint_kd"):
        if kd_teacher is None:
            raise ValueError("model.hint_kd needs the SSL teacher's checkpoint (--kd-teacher)")
        hint_teacher = SslTeacher(kd_teacher, m["hint_kd"]["teacher_layer"])

    loader = functools.partial(
        make_loader,
        tokenizer=tokenizer,
        max_duration=tc["max_duration"],
        audio=audio,
        teacher_audio=hint_teacher is not None,
    )

    def train_loader() -> torch.utils.data.DataLoader:
        return loader(
            train_cuts,
            train=True,
            seed=tc["seed"],
            num_workers=tc["num_workers"],
            max_cut_duration=tc["max_cut_duration"],
            targets=targets,
            sync_buckets=tc.get("sync_buckets", True),
            codebooks=codebooks,
        )

    # Batches per epoch vary a little with the shuffle; epoch 0's count sets the LR schedule.
    # With several processes each takes every world_size-th batch of the same sequence (lhotse's
    # samplers), dropping the last ones that would leave a process without a batch.
    world_size = (ngpu if ngpu > 0 else cpu_procs) * num_nodes
    counted = train_loader()
    sampler = counted.sampler
    sampler.set_epoch(0)
    batches_per_epoch = sum(1 for _ in sampler) // world_size
    if tc.get("limit_train_batches"):
        batches_per_epoch = min(batches_per_epoch, int(tc["limit_train_batches"]))
    steps_per_epoch = -(-batches_per_epoch // tc.get("accumulate_grad_batches", 1))  # optimizer
    module = AmLitModule(
        config,
        tokenizer.vocab_size,
        steps_per_epoch * tc["max_epochs"],
        num_senones,
        unit_sizes,
        teachers,
        hint_teacher,
    )
    stats = np.load(cmvn_file)
    module.model.set_cmvn(torch.from_numpy(stats["mean"]), torch.from_numpy(stats["std"]))
    if num_senones is not None:
        used = {c.id for c in CutSet.from_file(train_cuts)}
        counts = senone_counts(targets["senone"], used, num_senones)
        module.model.senone_head.set_prior(torch.from_numpy(counts))
        log.info(
            "senone prior from %d frames of %d cuts; %d of %d senones unseen",
            counts.sum(),
            len(used),
            int((counts == 0).sum()),
            num_senones,
        )
    n_params = sum(p.numel() for p in module.model.parameters())
    outputs = [f"CTC over {tokenizer.vocab_size} subwords"] if module.model.ctc is not None else []
    if num_senones is not None:
        li = m.get("label_interpolation")
        outputs.append(
            f"{num_senones} senones (frame CE"
            + (f", label interpolation {li['weight']} with the senone LM)" if li else ")")
        )
    for unit, conf in kd_heads_of(m).items():
        outputs.append(f"KD head of the {unit} LM at block {conf['layer']}")
    if codebooks is not None:
        c = m["mvq_kd"]
        outputs.append(f"MVQ KD head at block {c['layer']} ({c['num_codebooks']} codebooks)")
    if hint_teacher is not None:
        c = m["hint_kd"]
        outputs.append(
            f"hint KD head at block {c['layer']} (layer {c['teacher_layer']} of {kd_teacher})"
        )
    log.info(
        "model: %s encoder, %.2fM parameters, outputs: %s; %d batches per epoch",
        config["model"]["encoder"],
        n_params / 1e6,
        " + ".join(outputs),
        batches_per_epoch,
    )
    if module.model.ctc is None and not valid_targets:
        raise ValueError(
            f"a senone-only model validates on aligned valid cuts; stage 4 has no "
            f"alignment of {valid_cuts} (align.py --extra-cuts)"
        )

    # With several processes the training loader is made again inside fit, after they have joined
    # their group: lhotse's samplers read rank and world size when they are created.
    def valid_loader() -> torch.utils.data.DataLoader:
        return loader(
            valid_cuts,
            train=False,
            num_workers=0,
            targets=valid_targets,
            codebooks=valid_codebooks,
        )

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
    trainer = fit_resuming(
        module,
        exp_dir,
        tc,
        batches_per_epoch,
        checkpoint,
        train_dataloaders=train_loader if world_size > 1 else counted,
        val_dataloaders=valid_loader,
        ngpu=ngpu,
        devices=ngpu if ngpu > 0 else cpu_procs,
        num_nodes=num_nodes,
        strategy="ddp" if world_size > 1 else "auto",  # gloo on CPU, NCCL on GPU
        accumulate_grad_batches=tc.get("accumulate_grad_batches", 1),
        limit_train_batches=tc.get("limit_train_batches"),
        precision=tc["precision"],
    )
    if trainer.global_rank != 0:  # the other processes of a multi-process run are done
        return final
    best = kept_checkpoints(checkpoint)
    if average_by == "last":
        best = best[::-1]
    log.info(
        "averaging %d checkpoints (by %s): %s",
        len(best),
        average_by,
        ", ".join(Path(b).name for b in best),
    )
    # the SSL-teacher heads serve training only: the model that decodes is built without them
    state = {k: v for k, v in average_checkpoints(best).items() if not k.startswith(SSL_KD_HEADS)}
    save_torch(
        {
            "config": config,
            "vocab_size": tokenizer.vocab_size,
            "state_dict": state,
            "num_senones": num_senones,
            "unit_sizes": unit_sizes,
            "averaged": [Path(b).name for b in best],
        },
        final,
    )
    return final


def _frame_targets(
    targets_dir: Path | None, units: list[str], valid_cuts: Path
) -> tuple[dict[str, Path], dict[str, Path], dict[str, int]]:
    """Train and valid target scps of ``units``, and each unit inventory's size."""
    if not units:
        return {}, {}, {}
    if targets_dir is None:
        raise ValueError(f"{', '.join(units)} outputs need the stage-4 targets dir (--targets-dir)")
    targets, sizes = {}, {}
    for unit in units:
        spec = unit_named(unit, "model.kd_heads")
        scp, names = spec.frames(targets_dir), spec.vocabulary(targets_dir)
        for path in (scp, names):
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist (stage 4 writes it)")
        targets[unit] = scp
        sizes[unit] = len(read_units(names))
    scp = targets[units[0]]
    aligned = scp_keys(scp)
    valid_ids = {c.id for c in CutSet.from_file(valid_cuts)}
    if valid_ids & aligned:
        return targets, dict(targets), sizes
    log.warning(
        "%s has no alignment of the valid cuts %s: validation scores CTC only", scp, valid_cuts
    )
    return targets, {}, sizes


def _codebook_manifests(
    model_config: dict, codebook_dir: Path | None, train_cuts: Path, valid_cuts: Path
) -> tuple[Path | None, Path | None]:
    """Stage 5's codebook manifests of the train and valid cuts for ``model.mvq_kd`` (the same
    names as the cut manifests); validation leaves the MVQ loss out when the valid cuts have none.
    """
    conf = model_config.get("mvq_kd")
    if not conf:
        return None, None
    if codebook_dir is None:
        raise ValueError("model.mvq_kd needs stage 5's teacher codebooks (--codebook-dir)")
    summary_file = codebook_dir / "quantizer.yaml"
    if not summary_file.is_file():
        raise FileNotFoundError(f"{summary_file} does not exist (stage 5 writes it)")
    stored = yaml.safe_load(summary_file.read_text())["num_codebooks"]
    if stored != conf["num_codebooks"]:
        raise ValueError(
            f"model.mvq_kd.num_codebooks is {conf['num_codebooks']} but {summary_file} has "
            f"{stored} (stage 5's --kd_num_codebooks)"
        )
    train_manifest = codebook_dir / Path(train_cuts).name
    if not train_manifest.is_file():
        raise FileNotFoundError(f"{train_manifest} does not exist (stage 5 writes it)")
    valid_manifest = codebook_dir / Path(valid_cuts).name
    if not valid_manifest.is_file():
        log.warning("%s does not exist: validation scores no MVQ loss", valid_manifest)
        return train_manifest, None
    return train_manifest, valid_manifest


def _teachers(
    units: list[str],
    unit_lm_dir: Path | None,
    phone_lang_dir: Path | None,
    targets_dir: Path | None,
    lang_dir: Path,
    unit_sizes: dict[str, int],
) -> dict[str, LmTeacher]:
    """The frozen unit-LM teachers of ``units`` (stage 5's ``<unit_lm_dir>/<unit>/model.pt``)."""
    if not units:
        return {}
    if unit_lm_dir is None or phone_lang_dir is None:
        raise ValueError(
            f"KD from the {', '.join(units)} LM(s) needs --unit-lm-dir and --phone-lang-dir"
        )
    converter = TextToUnits(UnitTables(phone_lang_dir, targets_dir.parent, lang_dir / "bpe.model"))
    teachers = {}
    for unit in units:
        path = UNITS[unit].lm(unit_lm_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (stage 5 trains the {unit} LM)")
        teachers[unit] = LmTeacher(load_unit_lm(path, unit_sizes[unit]), converter.silence[unit])
        log.info("teacher of the %s outputs: %s", unit, path)
    return teachers
