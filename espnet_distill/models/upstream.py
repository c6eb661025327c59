"""Upstreams (a HuBERT teacher or a distilled student) as every stage loads and saves them, and
the learned layer weighting that downstream models put on their hidden states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import nn

from espnet_distill.data.features import fbank_extractor
from espnet_distill.models.hubert import HubertModel, count_parameters, load_hubert
from espnet_distill.models.students import DistilHubert, LstmStudent, quantize_int8
from espnet_distill.ort import onnx_session
from espnet_distill.utils import save_torch

FBANK = "fbank"  # the name of the baseline upstream: the input features alone (no file)


class FbankUpstream(nn.Module):
    """SUPERB's FBANK baseline: the probes' input features alone, no upstream network. The
    project's fbank (``data.features.fbank_extractor``: Kaldi's, 80 mel bins, 25 ms windows every
    10 ms), with deltas and delta-deltas and each utterance's mean and variance normalized, as
    s3prl's ``fbank`` upstream: one "layer" of 240 dimensions at 100 frames a second. No
    parameters: a probe on it measures what the task gets from the features alone."""

    num_layers = 0  # one state, the features: no layer above them

    def __init__(self) -> None:
        super().__init__()
        self.extractor = fbank_extractor()

    @torch.no_grad()
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(B, S) 16 kHz audio -> [(B, T, 240) features], frame counts; each utterance's frames
        are those of its own ``lengths`` samples, whatever the padding."""
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1])
        feats = []
        for wave, n in zip(waveforms, lengths.tolist(), strict=True):
            fbank = torch.from_numpy(self.extractor.extract(wave[:n].cpu().numpy(), 16000))
            d1 = torchaudio.functional.compute_deltas(fbank.T, win_length=5)
            d2 = torchaudio.functional.compute_deltas(d1, win_length=5)
            x = torch.cat([fbank, d1.T, d2.T], dim=1)
            feats.append((x - x.mean(0)) / x.std(0, unbiased=False).clamp(min=1e-5))
        frames = torch.tensor([len(f) for f in feats])
        padded = nn.utils.rnn.pad_sequence(feats, batch_first=True).to(waveforms.device)
        return [padded], frames


class OnnxUpstream(nn.Module):
    """An exported upstream (``deploy.export.export_onnx``'s file, fp32 or int8) behind the
    upstream interface: its layers come from onnxruntime (one thread) as torch tensors, so every
    stage that takes an upstream (the probes, frozen KWS/SV heads, the speed table) scores the
    deployed artifact itself. Frozen: onnxruntime gives no gradients."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.session = onnx_session(self.path)
        names = [o.name for o in self.session.get_outputs()]
        if names[:2] != ["hidden_states", "frames"]:
            raise ValueError(f"{self.path}: not an exported upstream (outputs {names})")

    @torch.no_grad()
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        if lengths is None:
            lengths = torch.full((waveforms.shape[0],), waveforms.shape[1])
        states, frames = self.session.run(
            None,
            {
                "waveforms": waveforms.detach().cpu().float().numpy(),
                "lengths": lengths.cpu().numpy().astype(np.int64),
            },
        )
        states = torch.from_numpy(states).to(waveforms.device)
        return list(states.unbind(0)), torch.from_numpy(frames)

    def upstream_parameters(self) -> int:
        """The weights stored in the graph (int8 ones count once, as their float originals)."""
        import onnx

        graph = onnx.load(str(self.path), load_external_data=False).graph
        weights = [
            t
            for t in graph.initializer
            if len(t.dims) >= 1 and not t.name.endswith(("_scale", "_zero_point"))
        ]
        return int(sum(np.prod(t.dims) for t in weights))


STUDENT_KINDS = ("distilhubert", "kd", "dkd")


def upstream_blob(upstream: nn.Module, kind: str | None = None) -> dict:
    """``upstream`` as the dict :func:`upstream_from_blob` rebuilds (what a student's or the
    teacher's ``model.pt`` holds, and what a KWS/SV system file embeds). ``kind``: a student's
    training mode (distilhubert, kd or dkd; default: distilhubert or kd by the class). An LSTM
    student after :func:`~espnet_distill.models.students.quantize_int8` is marked ``int8``."""
    if isinstance(upstream, FbankUpstream):
        return {"kind": FBANK}
    if isinstance(upstream, HubertModel):
        return upstream.blob()
    if not isinstance(upstream, DistilHubert | LstmStudent):
        raise ValueError(f"not an upstream of this package: {type(upstream).__name__}")
    default = "distilhubert" if isinstance(upstream, DistilHubert) else "kd"
    blob = {
        "kind": kind or default,
        "student_config": upstream.config,
        "state_dict": upstream.state_dict(),
    }
    if isinstance(upstream, DistilHubert):
        blob.update(
            target_layers=upstream.target_layers, teacher_dim=upstream.heads[0].out_features
        )
    elif not isinstance(upstream.lstms[0], nn.LSTM):  # dynamically quantized
        blob["int8"] = True
    return blob


def save_student(net: DistilHubert | LstmStudent, kind: str, path: Path) -> None:
    """A student as :func:`load_upstream` reads it; ``kind``: distilhubert, kd or dkd."""
    save_torch(upstream_blob(net, kind), path)


def upstream_from_blob(
    blob: dict, source: Path | str
) -> HubertModel | DistilHubert | LstmStudent | FbankUpstream:
    """The upstream of an :func:`upstream_blob` dict, in eval mode; ``source`` names it in errors."""
    if blob.get("kind") == FBANK:
        return FbankUpstream().eval()
    if blob.get("format") == HubertModel.BLOB_FORMAT:
        return HubertModel.from_blob(blob, source)
    if blob.get("kind") not in STUDENT_KINDS:
        raise ValueError(f"{source}: not an upstream (no teacher format or student kind)")
    if blob["kind"] == "distilhubert":
        net = DistilHubert(blob["student_config"], blob["target_layers"], blob["teacher_dim"])
    else:
        c = blob["student_config"]
        net = LstmStudent(
            c["cnn"], c["num_classes"], c["hidden"], c["num_layers"], c["bidirectional"]
        )
        if blob.get("int8"):
            net = quantize_int8(net)
    net.load_state_dict(blob["state_dict"])
    return net.eval()


def load_upstream(path: Path | str) -> HubertModel | DistilHubert | LstmStudent | FbankUpstream:
    """A trained upstream in eval mode: a HuBERT (any format of :func:`load_hubert`: a Hugging
    Face dir, a fairseq, torchaudio or espnet_distill checkpoint) or a student written by
    :func:`train_ssl`; an exported ``.onnx`` (:class:`OnnxUpstream`); the name ``fbank``
    (:data:`FBANK`): the features alone, :class:`FbankUpstream`. The one loader of every stage that takes an upstream."""
    if str(path) == FBANK:
        return FbankUpstream().eval()
    path = Path(path)
    if path.suffix == ".onnx":
        return OnnxUpstream(path).eval()
    if path.is_dir():  # a Hugging Face model dir: only load_hubert reads those
        return load_hubert(path)
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("kind") not in STUDENT_KINDS:
        return load_hubert(path)
    return upstream_from_blob(blob, path)


class WeightedSum(nn.Module):
    """softmax(w)-weighted sum of layer-normed layers (B, T, D) each."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        # the feature size as a Python int: a constant to the ONNX exporters, not a traced shape
        stacked = torch.stack([nn.functional.layer_norm(x, (int(x.shape[-1]),)) for x in layers])
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
