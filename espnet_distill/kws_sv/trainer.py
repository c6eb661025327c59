"""Keyword spotting and speaker verification on an upstream (a HuBERT teacher or a distilled
student), single-task or jointly (Kerpicci et al. 2022), with the upstream frozen or fine-tuned.

- Each task reads the upstream through its own softmax-weighted sum of layers (SUPERB's
  featurizer, :class:`~espnet_distill.ssl.probe.WeightedSum`).
- KWS: frame projection + ReLU, mean pooling over the valid frames, linear over the keyword
  classes (SUPERB's 12 classes: 10 words, ``_unknown_``, ``_silence_``; or the 35 words).
- SV: an x-vector-style head (two frame layers, mean + standard deviation pooling, a linear
  embedding) trained with additive angular margin softmax (ArcFace: the target logit
  s cos(theta + m)) over the training speakers; trials are scored by the cosine of embeddings.
- Joint: every training step takes one batch of each task; loss = w_kws CE + w_sv AAM. An epoch
  is the longer task's loader (the other one cycles).
- Fine-tuned: the upstream is trained too, at ``optim.upstream_lr`` (SUPERB's fine-tuning keeps
  it lower than the heads').

Training is Lightning, resumable from ``checkpoints/last.ckpt``; the final epoch's weights are
scored (no dev trials exist for SV).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet
from lightning.pytorch.utilities import CombinedLoader
from torch import nn

from espnet_distill.config import merge_config
from espnet_distill.data.audio import make_audio_loader
from espnet_distill.data.kws_sv import kws_label
from espnet_distill.models.hubert import count_parameters
from espnet_distill.models.upstream import (
    WeightedSum,
    upstream_blob,
    upstream_from_blob,
    upstream_parameters,
)
from espnet_distill.score.verification import eer_threshold, equal_error_rate, error_rates, min_dcf
from espnet_distill.train.loop import begin_run, fit_resuming, last_epochs_checkpoint
from espnet_distill.train.module import TrainingModule
from espnet_distill.utils import atomic_write_text, save_torch

log = logging.getLogger(__name__)

TASKS = ("kws", "sv")
KWS_PREDICTIONS = "kws_predictions.txt"  # per KWS test utterance: id, label, predicted class
SV_SCORES = "sv_scores.txt"  # per trial: enrolment, test, cosine score, target | nontarget
SYSTEM = "system.pt"  # the trained system, self-contained (save_system, load_system)
SYSTEM_FORMAT = "espnet_distill.kws_sv"
DEFAULT_CONFIG = {
    "tasks": ["kws", "sv"],
    "freeze_upstream": True,
    # a task's max_duration (seconds a batch) overrides train.max_duration for its loader
    "kws": {
        "task": "12class",
        "hidden": 256,
        "loss_weight": 1.0,
        "class_balance": True,
        "max_duration": None,
    },
    "sv": {
        "hidden": 256,
        "embedding": 128,
        "margin": 0.2,
        "scale": 30.0,
        "loss_weight": 1.0,
        "crop_seconds": 3.0,
        "max_duration": None,
    },
    "optim": {"lr": 1e-3, "upstream_lr": 5e-5, "weight_decay": 0.0, "warmup_steps": 100},
    "train": {
        "max_epochs": 5,
        "max_duration": 60,
        "seed": 1234,
        "grad_clip": 5.0,
        "num_workers": 0,
        "num_threads": 0,
    },
}


def valid_frames(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """(B, T, 1) mask of the frames within each utterance's length (all when lengths is None)."""
    if lengths is None:
        return torch.ones(*x.shape[:2], 1, dtype=x.dtype, device=x.device)
    steps = torch.arange(x.shape[1], device=x.device)
    return (steps[None] < lengths.to(x.device)[:, None]).unsqueeze(-1).to(x.dtype)


def mean_std_pool(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over the masked frames of (B, T, D)."""
    n = mask.sum(1).clamp(min=1.0)
    mean = (x * mask).sum(1) / n
    var = (((x - mean[:, None]) ** 2) * mask).sum(1) / n
    return mean, var.clamp(min=1e-8).sqrt()


class KwsHead(nn.Module):
    def __init__(self, dim: int, num_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.frame = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        mean, _ = mean_std_pool(self.frame(x), valid_frames(x, lengths))
        return self.out(mean)


class SpeakerEmbedding(nn.Module):
    """Two frame layers, mean + std pooling, a linear embedding (a small x-vector)."""

    def __init__(self, dim: int, hidden: int = 256, embedding: int = 128) -> None:
        super().__init__()
        self.frame = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.out = nn.Linear(2 * hidden, embedding)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        mean, std = mean_std_pool(self.frame(x), valid_frames(x, lengths))
        return self.out(torch.cat([mean, std], -1))


class AamSoftmax(nn.Module):
    """Additive angular margin softmax (ArcFace): cross-entropy of s cos(theta_j) with the
    target's logit s cos(theta_y + m); past theta_y = pi - m, where cos(theta + m) would rise
    again, the target logit is s (cos theta_y - m sin m) (ArcFace's monotonic fallback)."""

    def __init__(
        self, embedding: int, num_classes: int, margin: float = 0.2, scale: float = 30.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding))
        nn.init.xavier_uniform_(self.weight)
        self.margin, self.scale = margin, scale

    def logits(self, emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = nn.functional.normalize(emb) @ nn.functional.normalize(self.weight).T
        cos_t = cos.gather(1, target[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
        sin_t = (1 - cos_t**2).sqrt()
        m = self.margin
        with_margin = cos_t * math.cos(m) - sin_t * math.sin(m)
        with_margin = torch.where(
            cos_t > math.cos(math.pi - m), with_margin, cos_t - m * math.sin(m)
        )
        return self.scale * cos.scatter(1, target[:, None], with_margin)

    def forward(self, emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.logits(emb, target), target)


def kws_class_weights(keywords: list[str], counts: dict[str, int] | None) -> torch.Tensor:
    """Cross-entropy weights of the keyword classes: total / (classes x count), so that every
    class weighs as much in the loss whatever its share of the training clips (Speech Commands'
    12-class training set is more than half ``_unknown_``; SUPERB balances it by sampling); all
    ones without ``counts``."""
    if counts is None:
        return torch.ones(len(keywords))
    missing = [k for k in keywords if not counts.get(k)]
    if missing:
        raise ValueError(f"no training clips of keyword class(es) {missing}")
    total = sum(counts[k] for k in keywords)
    return torch.tensor(
        [total / (len(keywords) * counts[k]) for k in keywords], dtype=torch.float32
    )


class KwsSvModule(TrainingModule):
    """An upstream with a KWS head, an SV head, or both (see the module docstring)."""

    def __init__(
        self,
        upstream: nn.Module,
        config: dict,
        keywords: list[str],
        speakers: list[str],
        total_steps: int = 1,
        keyword_counts: dict[str, int] | None = None,
    ) -> None:
        super().__init__(config, total_steps)
        self.tasks = list(config["tasks"])
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks {self.tasks}: expected one or both of {', '.join(TASKS)}")
        self.frozen = bool(config["freeze_upstream"])
        self.upstream = upstream
        if self.frozen:
            self.upstream.eval().requires_grad_(False)
        self.keywords, self.speakers = list(keywords), list(speakers)
        with torch.no_grad():
            states, _ = upstream.hidden_states(torch.zeros(1, 16000))
        layers, dim = len(states), states[0].shape[-1]
        self.featurizers = nn.ModuleDict({t: WeightedSum(layers) for t in self.tasks})
        if "kws" in self.tasks:
            self.kws_head = KwsHead(dim, len(keywords), config["kws"]["hidden"])
            self.register_buffer(
                "kws_class_weight",
                kws_class_weights(
                    keywords, keyword_counts if config["kws"].get("class_balance") else None
                ),
            )
        if "sv" in self.tasks:
            sv = config["sv"]
            self.sv_head = SpeakerEmbedding(dim, sv["hidden"], sv["embedding"])
            self.aam = AamSoftmax(sv["embedding"], len(speakers), sv["margin"], sv["scale"])

    def train(self, mode: bool = True) -> KwsSvModule:
        super().train(mode)
        if self.frozen:  # a frozen upstream stays in eval mode (no dropout, no layer drop)
            self.upstream.eval()
        return self

    def features(
        self, task: str, audio: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            states, frames = self.upstream.hidden_states(audio, lengths)
        return self.featurizers[task](states), frames

    def keyword_logits(self, audio: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return self.kws_head(*self.features("kws", audio, lengths))

    def embeddings(self, audio: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return self.sv_head(*self.features("sv", audio, lengths))

    def _losses(self, batch: dict) -> dict[str, torch.Tensor]:
        losses = {}
        if batch.get("kws") is not None:
            b = batch["kws"]
            target = torch.tensor(
                [self.keywords.index(lab) for lab in b["labels"]], device=self.device
            )
            losses["kws"] = nn.functional.cross_entropy(
                self.keyword_logits(b["audio"], b["lengths"]), target, weight=self.kws_class_weight
            )
        if batch.get("sv") is not None:
            b = batch["sv"]
            target = torch.tensor([self.speakers.index(s) for s in b["labels"]], device=self.device)
            losses["sv"] = self.aam(self.embeddings(b["audio"], b["lengths"]), target)
        return losses

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self._losses(batch)
        loss = sum(self.config[t]["loss_weight"] * v for t, v in losses.items())
        for t, v in losses.items():
            self.log(f"train_{t}_loss", v, batch_size=len(batch[t]["ids"]))
        self.log("train_loss", loss, prog_bar=True)
        return self.guard(loss)

    def param_groups(self) -> list[dict]:
        """The heads at ``optim.lr``; a fine-tuned upstream at ``optim.upstream_lr``."""
        o = self.config["optim"]
        heads = [p for n, p in self.named_parameters() if not n.startswith("upstream.")]
        groups = [{"params": heads, "lr": o["lr"]}]
        if not self.frozen:
            groups.append({"params": list(self.upstream.parameters()), "lr": o["upstream_lr"]})
        return groups


def save_system(module: KwsSvModule, path: Path, sv_threshold: float | None = None) -> None:
    """The trained system as one file: the upstream (as ``load_upstream`` would read it, so a
    fine-tuned upstream keeps its new weights), the featurizers and heads, the keywords and
    speakers, the config, and ``sv_threshold``, the cosine score a trial is accepted at."""
    heads = {k: v for k, v in module.state_dict().items() if not k.startswith("upstream.")}
    blob = {
        "format": SYSTEM_FORMAT,
        "config": module.config,
        "keywords": module.keywords,
        "speakers": module.speakers,
        "sv_threshold": sv_threshold,
        "upstream": upstream_blob(module.upstream),
        "heads": heads,
    }
    save_torch(blob, path)


def load_system(path: Path) -> tuple[KwsSvModule, float | None]:
    """(the system in eval mode, its SV threshold) from :func:`save_system`'s file."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("format") != SYSTEM_FORMAT:
        raise ValueError(f"{path}: not a KWS/SV system file (fine_tune_kws_sv writes {SYSTEM})")
    upstream = upstream_from_blob(blob["upstream"], path)
    module = KwsSvModule(upstream, blob["config"], blob["keywords"], blob["speakers"])
    own = {f"upstream.{k}": v for k, v in upstream.state_dict().items()}
    module.load_state_dict({**own, **blob["heads"]})
    return module.eval(), blob["sv_threshold"]


class LabelledLoader:
    """A :func:`make_audio_loader` whose batches carry ``labels`` (one per cut, by id)."""

    def __init__(self, loader: torch.utils.data.DataLoader, labels: dict[str, str]) -> None:
        self.loader, self.labels = loader, labels
        self.sampler = loader.sampler

    def __iter__(self):  # noqa: ANN204
        for batch in self.loader:
            yield {**batch, "labels": [self.labels[i] for i in batch["ids"]]}


def keyword_cuts(cuts: CutSet, task: str) -> tuple[CutSet, dict[str, str]]:
    """Speech Commands cuts with their class; no-word recordings (the background noises, for the
    12-class ``_silence_``) are cut into one-second windows; the 35-class task drops them."""
    words = cuts.filter(lambda c: bool(c.supervisions and c.supervisions[0].text))
    cuts_out = words.to_eager()
    if task == "12class":
        noise = cuts.filter(lambda c: not (c.supervisions and c.supervisions[0].text)).to_eager()
        windows = noise.cut_into_windows(1.0).filter(lambda c: c.duration >= 0.5).to_eager()
        cuts_out = (cuts_out + windows).to_eager()

    def text(c) -> str:  # noqa: ANN001
        return c.supervisions[0].text if c.supervisions else ""

    return cuts_out, {c.id: kws_label(text(c), task) for c in cuts_out}


def speaker_labels(cuts: CutSet) -> dict[str, str]:
    return {c.id: c.supervisions[0].speaker for c in cuts}


def _fit(
    module: KwsSvModule, loaders: dict, exp_dir: Path, tc: dict, steps: int, ngpu: int
) -> None:
    checkpoint = last_epochs_checkpoint(exp_dir / "checkpoints", keep=1)
    combined = CombinedLoader(loaders, mode="max_size_cycle")
    fit_resuming(
        module,
        exp_dir,
        tc,
        steps,
        checkpoint,
        train_dataloaders=combined,
        ngpu=ngpu,
        limit_val_batches=0,
    )


@torch.no_grad()
def keyword_predictions(
    module: KwsSvModule, cuts: CutSet, max_duration: float = 60
) -> dict[str, str]:
    """The argmax class of each of ``cuts``, by cut id."""
    module.eval()
    predicted = {}
    for batch in make_audio_loader(cuts, max_duration, False):
        pred = module.keyword_logits(batch["audio"], batch["lengths"]).argmax(-1).tolist()
        predicted.update(zip(batch["ids"], (module.keywords[p] for p in pred), strict=True))
    return predicted


@torch.no_grad()
def trial_scores(
    module: KwsSvModule, cuts: CutSet, trials: list[tuple[int, str, str]], max_duration: float = 60
) -> np.ndarray:
    """Cosine similarity of the two utterances' embeddings, per trial (trials name recording
    ids, as :func:`espnet_distill.data.kws_sv.read_trials` writes them)."""
    module.eval()
    needed = {u for _, a, b in trials for u in (a, b)}
    cuts = cuts.filter(lambda c: c.recording_id in needed).to_eager()
    recording_of = {c.id: c.recording_id for c in cuts}
    emb = {}
    for batch in make_audio_loader(cuts, max_duration, False):
        out = nn.functional.normalize(module.embeddings(batch["audio"], batch["lengths"]))
        emb.update(zip((recording_of[i] for i in batch["ids"]), out, strict=True))
    return np.array([float(emb[a] @ emb[b]) for _, a, b in trials])


def fine_tune(upstream: nn.Module, config: dict, exp_dir: Path, data: dict, ngpu: int = 0) -> dict:
    """Train (or resume) and score one system; ``data``: {"kws_train", "kws_test": CutSet,
    "sv_train", "sv_test": CutSet, "trials": [(label, enrol, test)]} (the tasks' entries only).
    Writes ``exp_dir/results.json`` (and the per-item scores: ``kws_predictions.txt``, ``id label
    predicted`` per test utterance; ``sv_scores.txt``, per trial), the system
    (:data:`SYSTEM`, :func:`save_system`; its SV threshold: the equal-error point of the test
    trials, as the protocol has no development trials) and returns the results."""
    config = merge_config(DEFAULT_CONFIG, config)
    results_file = exp_dir / "results.json"
    if begin_run(exp_dir, config, results_file.name):
        return json.loads(results_file.read_text())
    tc = config["train"]
    loaders, keywords, speakers = {}, [], []
    if "kws" in config["tasks"]:
        train_cuts, labels = keyword_cuts(data["kws_train"], config["kws"]["task"])
        keywords = sorted(set(labels.values()))
        batch = config["kws"].get("max_duration") or tc["max_duration"]
        loaders["kws"] = LabelledLoader(
            make_audio_loader(train_cuts, batch, True, tc["seed"], num_workers=tc["num_workers"]),
            labels,
        )
    if "sv" in config["tasks"]:
        labels = speaker_labels(data["sv_train"])
        speakers = sorted(set(labels.values()))
        batch = config["sv"].get("max_duration") or tc["max_duration"]
        loaders["sv"] = LabelledLoader(
            make_audio_loader(
                data["sv_train"],
                batch,
                True,
                tc["seed"],
                crop_seconds=config["sv"]["crop_seconds"],
                num_workers=tc["num_workers"],
            ),
            labels,
        )
    steps = 0
    for dl in loaders.values():
        dl.sampler.set_epoch(0)
        steps = max(steps, sum(1 for _ in dl.sampler))
    keyword_counts = Counter(loaders["kws"].labels.values()) if "kws" in loaders else None
    module = KwsSvModule(
        upstream, config, keywords, speakers, steps * tc["max_epochs"], keyword_counts
    )
    log.info(
        "tasks %s, upstream %s: %.2fM upstream parameters, %.2fM in the heads; %d steps an epoch",
        "+".join(config["tasks"]),
        "frozen" if module.frozen else "fine-tuned",
        upstream_parameters(upstream) / 1e6,
        (count_parameters(module) - count_parameters(upstream)) / 1e6,
        steps,
    )
    _fit(module, loaders, exp_dir, tc, steps, ngpu)
    module = module.cpu()
    results: dict = {
        "tasks": config["tasks"],
        "frozen": module.frozen,
        "upstream_parameters": upstream_parameters(upstream),
    }
    if "kws" in config["tasks"]:
        test_cuts, test_labels = keyword_cuts(data["kws_test"], config["kws"]["task"])
        unknown = {lab for lab in test_labels.values() if lab not in keywords}
        if unknown:
            raise ValueError(f"test keyword classes not in training: {sorted(unknown)}")
        predicted = keyword_predictions(module, test_cuts)
        correct = sum(predicted[i] == label for i, label in test_labels.items())
        results["kws_accuracy"] = round(100.0 * correct / max(len(test_labels), 1), 2)
        atomic_write_text(
            exp_dir / KWS_PREDICTIONS,
            "".join(f"{i}\t{label}\t{predicted[i]}\n" for i, label in sorted(test_labels.items())),
        )
    threshold = None
    if "sv" in config["tasks"]:
        scores = trial_scores(module, data["sv_test"], data["trials"])
        target = np.array([t for t, _, _ in data["trials"]])
        threshold = eer_threshold(scores, target)
        results["sv_threshold"] = round(threshold, 6)
        results["eer"] = round(100 * equal_error_rate(scores, target), 2)
        results["min_dcf"] = round(min_dcf(scores, target, p_target=0.01), 4)
        # VoxCeleb papers' second operating point: 0.01 needs far more non-target trials than a
        # small trial list has, where minDCF sits at its ceiling of 1
        results["min_dcf_p05"] = round(min_dcf(scores, target, p_target=0.05), 4)
        p_miss, p_fa = error_rates(scores, target)
        results["det"] = {"p_miss": p_miss.round(5).tolist(), "p_fa": p_fa.round(5).tolist()}
        atomic_write_text(
            exp_dir / SV_SCORES,
            "".join(
                f"{a} {b} {s:.6f} {'target' if t else 'nontarget'}\n"
                for (t, a, b), s in zip(data["trials"], scores, strict=True)
            ),
        )
    save_system(module, exp_dir / SYSTEM, threshold)
    atomic_write_text(results_file, json.dumps(results))  # last: it marks the run finished
    return results
