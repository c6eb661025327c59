"""Students distilled from a HuBERT teacher, all with the upstream interface of
:meth:`~espnet_distill.models.hubert.HubertModel.hidden_states` (a list of (B, T, D) layers):

- :class:`DistilHubert` (Chang et al. 2022): the teacher's CNN + a few Transformer layers, both
  initialised from the teacher where the shapes agree, and one linear prediction head per
  distilled teacher layer (dropped after training);
- :class:`LstmStudent` (de Oliveira & Gerkmann 2023): the teacher's CNN (or a narrower one of the
  same strides, :func:`narrow_cnn`) + LSTM layers and a linear output over the teacher's
  clusters, trained on the teacher's output distribution (KD or DKD).

:func:`width_for_budget` gives the width of a transformer student of a given depth whose
parameter count is closest to a budget (deep vs wide at equal size, Ashihara et al. 2022).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from espnet_distill.models.hubert import HubertModel, attention_heads, count_parameters
from espnet_distill.models.rnn import lstm_over_lengths

log = logging.getLogger(__name__)


def transformer_config(
    teacher_config: dict, num_layers: int, dim: int | None = None, ff_ratio: float | None = None
) -> dict:
    """A student encoder config: the teacher's CNN, ``num_layers`` layers of width ``dim``
    (default: the teacher's) and feed-forward ``ff_ratio`` x dim (default: the teacher's ratio);
    attention heads of 64 dimensions, as HuBERT's."""
    t = teacher_config
    dim = dim or t["encoder_embed_dim"]
    ratio = ff_ratio or t["encoder_ff_interm_features"] / t["encoder_embed_dim"]
    heads = attention_heads(dim)
    groups = t["encoder_pos_conv_groups"]
    while dim % groups:
        groups -= 1
    return dict(
        t,
        encoder_num_layers=num_layers,
        encoder_embed_dim=dim,
        encoder_num_heads=heads,
        encoder_ff_interm_features=int(round(ratio * dim)),
        encoder_pos_conv_groups=groups,
        encoder_layer_drop=0.0,
    )


def narrow_cnn(cnn_config: dict, channel_ratio: float) -> dict:
    """The CNN front-end of ``cnn_config`` with each layer's channels times ``channel_ratio``
    (rounded, at least 1): the same kernels and strides, so the same frames as the teacher's, at
    about ratio^2 of the cost. The CNN is about a third of HuBERT's CPU time (36% of HuBERT Base's,
    measured), which caps the speed-up of any student that keeps it near 3x."""
    if not 0 < channel_ratio <= 1:
        raise ValueError(f"cnn_channel_ratio must be in (0, 1], got {channel_ratio}")
    conv = [
        [max(1, round(channels * channel_ratio)), kernel, stride]
        for channels, kernel, stride in cnn_config["extractor_conv_layer_config"]
    ]
    return dict(cnn_config, extractor_conv_layer_config=conv)


def init_from_teacher(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Copy every teacher tensor whose name and shape the student shares; returns their names."""
    theirs = teacher.state_dict()
    own = student.state_dict()
    copied = [k for k, v in own.items() if k in theirs and theirs[k].shape == v.shape]
    student.load_state_dict({**own, **{k: theirs[k] for k in copied}})
    return copied


class DistilHubert(nn.Module):
    """``config``: the student encoder (see :func:`transformer_config`); ``target_layers``: the
    teacher layers the heads regress (1-based outputs; DistilHuBERT: 4, 8, 12 of 12)."""

    def __init__(self, config: dict, target_layers: list[int], teacher_dim: int) -> None:
        super().__init__()
        self.config, self.target_layers = dict(config), list(target_layers)
        self.backbone = HubertModel(config)
        dim = config["encoder_embed_dim"]
        self.heads = nn.ModuleList(nn.Linear(dim, teacher_dim) for _ in self.target_layers)

    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        return self.backbone.hidden_states(waveforms, lengths)

    def predictions(self, last_layer: torch.Tensor) -> list[torch.Tensor]:
        """One (B, T, teacher_dim) prediction per target layer, from the student's last layer."""
        return [head(last_layer) for head in self.heads]

    def upstream_parameters(self) -> int:
        """Parameters kept after training (the heads are dropped)."""
        return count_parameters(self.backbone)


class LstmStudent(nn.Module):
    """The teacher's CNN front-end (and feature projection to ``hidden``), ``num_layers`` LSTM
    layers of ``hidden`` units per direction, and a linear output over ``num_classes`` clusters."""

    def __init__(
        self,
        cnn_config: dict,
        num_classes: int,
        hidden: int = 256,
        num_layers: int = 2,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        self.config = {
            "cnn": dict(cnn_config),
            "num_classes": num_classes,
            "hidden": hidden,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
        }
        import torchaudio.models.wav2vec2.components as components

        conv = cnn_config["extractor_conv_layer_config"]
        self.feature_extractor = components._get_feature_extractor(
            cnn_config["extractor_mode"], conv, cnn_config["extractor_conv_bias"]
        )
        out_dim = hidden * (2 if bidirectional else 1)
        self.projection = nn.Sequential(nn.LayerNorm(conv[-1][0]), nn.Linear(conv[-1][0], out_dim))
        self.lstms = nn.ModuleList(
            nn.LSTM(out_dim, hidden, batch_first=True, bidirectional=bidirectional)
            for _ in range(num_layers)
        )
        self.output = nn.Linear(out_dim, num_classes)

    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        x, lengths = self.feature_extractor(waveforms, lengths)
        states = [self.projection(x)]
        for lstm in self.lstms:
            states.append(lstm_over_lengths(lstm, states[-1], lengths))
        return states, lengths

    def unit_logits(self, last_layer: torch.Tensor) -> torch.Tensor:
        return self.output(last_layer)

    def upstream_parameters(self) -> int:
        return count_parameters(self) - count_parameters(self.output)


def quantize_int8(student: LstmStudent) -> LstmStudent:
    """A copy of ``student`` with PyTorch dynamic int8 quantization of its LSTM and linear layers
    (int8 weights, activations quantized batch by batch at run time); the CNN stays float, as
    dynamic quantization has no convolution kernels. ``models.upstream.save_student`` marks it
    ``int8`` and ``load_upstream`` rebuilds it."""
    import copy
    import warnings

    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice (torchao has no
        warnings.simplefilter("ignore")  # dynamic LSTM): the API is in torch 2.11 as documented
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(student).eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8
        )


def width_for_budget(
    teacher_config: dict, num_layers: int, budget: int, step: int = 8, ff_ratio: float | None = None
) -> tuple[int, int]:
    """The width (a multiple of ``step``) of a ``num_layers``-layer transformer student whose
    parameter count (CNN included) is closest to ``budget``; returns (width, parameters)."""

    def params(dim: int) -> int:
        return count_parameters(
            HubertModel(transformer_config(teacher_config, num_layers, dim, ff_ratio))
        )

    lo, hi = step, step
    while params(hi) < budget:
        lo, hi = hi, hi * 2
    while hi - lo > step:  # parameters grow with the width: bisect
        mid = (lo + hi) // 2 // step * step
        lo, hi = (mid, hi) if params(mid) < budget else (lo, mid)
    best = min((lo, hi), key=lambda d: abs(params(d) - budget))
    return best, params(best)


def select_layers(states: list[torch.Tensor], layers: list[int]) -> list[torch.Tensor]:
    """The teacher layers a student regresses: ``states`` from ``hidden_states`` (index 0 is the
    Transformer input, so layer ``l`` is ``states[l]``); out-of-range layers are refused."""
    last = len(states) - 1
    bad = [layer for layer in layers if not 1 <= layer <= last]
    if bad:
        raise ValueError(f"teacher layers {bad} out of range: the teacher has layers 1..{last}")
    return [states[layer] for layer in layers]
