"""Upstreams (a HuBERT teacher or a distilled student) as every stage loads and saves them, and
the learned layer weighting that downstream models put on their hidden states."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from espnet_distill.models.hubert import HubertModel, count_parameters, load_hubert
from espnet_distill.models.students import DistilHubert, LstmStudent
from espnet_distill.utils import save_torch


def save_student(net: DistilHubert | LstmStudent, kind: str, path: Path) -> None:
    """A student as :func:`load_upstream` reads it; ``kind``: distilhubert, kd or dkd."""
    blob = {"kind": kind, "student_config": net.config, "state_dict": net.state_dict()}
    if isinstance(net, DistilHubert):
        blob.update(target_layers=net.target_layers, teacher_dim=net.heads[0].out_features)
    save_torch(blob, path)


def load_upstream(path: Path) -> HubertModel | DistilHubert | LstmStudent:
    """A trained upstream in eval mode: a HuBERT (any format of :func:`load_hubert`: a Hugging
    Face dir, a fairseq, torchaudio or espnet_distill checkpoint) or a student written by
    :func:`train_ssl`. The one loader of every stage that takes an upstream."""
    path = Path(path)
    if path.is_dir():  # a Hugging Face model dir: only load_hubert reads those
        return load_hubert(path)
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("kind") not in ("distilhubert", "kd", "dkd"):
        return load_hubert(path)
    if blob["kind"] == "distilhubert":
        net = DistilHubert(blob["student_config"], blob["target_layers"], blob["teacher_dim"])
    else:
        c = blob["student_config"]
        net = LstmStudent(
            c["cnn"], c["num_classes"], c["hidden"], c["num_layers"], c["bidirectional"]
        )
    net.load_state_dict(blob["state_dict"])
    return net.eval()


class WeightedSum(nn.Module):
    """softmax(w)-weighted sum of layer-normed layers (B, T, D) each."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack([nn.functional.layer_norm(x, x.shape[-1:]) for x in layers])
        w = self.weights.softmax(0).view(-1, *([1] * (stacked.dim() - 1)))
        return (w * stacked).sum(0)


def upstream_parameters(model: nn.Module) -> int:
    """Parameters an upstream keeps after training (students drop their prediction heads)."""
    keep = getattr(model, "upstream_parameters", None)
    if keep is not None:
        return keep()
    head = sum(
        p.numel()
        for n, p in model.named_parameters()
        if n.startswith(("final_proj", "label_embeddings"))
    )
    return count_parameters(model) - head
