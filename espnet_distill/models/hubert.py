"""HuBERT teachers: one model class, loaded from the three checkpoint formats users have.

:class:`HubertModel` is torchaudio's :class:`~torchaudio.models.Wav2Vec2Model` (CNN feature
extractor + Transformer encoder) plus HuBERT's masked-prediction output (``final_proj`` and the
cluster embeddings), whose cosine-similarity logits are the teacher's output distribution for
output-level KD. :func:`load_hubert` reads

- ``torchaudio``: a state dict of torchaudio's ``Wav2Vec2Model`` (e.g. the ``HUBERT_BASE``
  pipeline's file) or of its ``HuBERTPretrainModel`` (``wav2vec2.*`` and ``logit_generator.*``);
  the architecture is read from the tensor shapes (attention heads: dim / 64, the HuBERT rule;
  pre-LN unless the model is 768-d, i.e. HuBERT Base), or given as ``config``;
- ``hf``: a Hugging Face ``HubertModel`` directory (``config.json`` + weights), via torchaudio's
  importer;
- ``fairseq``: a fairseq checkpoint file (``{"cfg": {"model": ...}, "model": state_dict}``, or
  ``"args"`` in older ones), via torchaudio's key mapping;
- ``espnet_distill``: what :meth:`HubertModel.save` writes (the recipe's own pretrained teacher).

Every path ends in one strict ``load_state_dict`` whose mismatches are reported as one error
naming the file and the keys (:class:`CheckpointMismatch`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch
import torchaudio
from torch import nn

from espnet_distill.utils import save_torch

FORMATS = ("torchaudio", "hf", "fairseq", "espnet_distill")
# kernel -> stride of the wav2vec 2.0 / HuBERT CNN layers (a shape does not tell the stride)
_CNN_STRIDES = {10: 5, 3: 2, 2: 2}
# weight norm of the positional convolution: the old keys (fairseq, torchaudio < 2.1 files) and
# torch.nn.utils.parametrizations.weight_norm's
_WEIGHT_NORM_KEYS = {
    "g": "conv.parametrizations.weight.original0",
    "v": "conv.parametrizations.weight.original1",
}


def attention_heads(dim: int) -> int:
    """HuBERT's rule: heads of 64 dimensions (at least one; the largest count dividing ``dim``)."""
    heads = max(dim // 64, 1)
    while dim % heads:
        heads -= 1
    return heads


class CheckpointMismatch(ValueError):
    """A checkpoint whose tensors do not fit the architecture (the message lists the keys)."""


def _describe(keys: list[str], limit: int = 6) -> str:
    return ", ".join(keys[:limit]) + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


class HubertModel(nn.Module):
    """``config``: the keyword arguments of :func:`torchaudio.models.wav2vec2_model`;
    ``num_classes``/``final_dim``: HuBERT's cluster targets (0: no masked-prediction output)."""

    def __init__(self, config: dict, num_classes: int = 0, final_dim: int = 0) -> None:
        super().__init__()
        self.config = dict(config)
        self.num_classes, self.final_dim = num_classes, final_dim
        self.wav2vec2 = torchaudio.models.wav2vec2_model(**self.config, aux_num_out=None)
        if num_classes:
            dim = self.config["encoder_embed_dim"]
            self.final_proj = nn.Linear(dim, final_dim)
            self.label_embeddings = nn.Parameter(torch.randn(num_classes, final_dim) * 0.02)
        self.logit_temperature = 0.1  # HuBERT's cosine-similarity logits are divided by 0.1

    @property
    def num_layers(self) -> int:
        return self.config["encoder_num_layers"]

    def hidden_states(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        num_layers: int | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """(B, S) 16 kHz audio -> [layer 0 (Transformer input), layer 1, ..., layer L] of (B, T, D)
        and the frame counts: each layer's own output, as transformers' ``hidden_states`` and
        torchaudio's ``extract_features`` (a pre-LN model's final norm: :meth:`final_output`)."""
        w2v = self.wav2vec2
        x, lengths = w2v.feature_extractor(waveforms, lengths)
        x, mask = w2v.encoder._preprocess(x, lengths)
        transformer = w2v.encoder.transformer
        states = [transformer._preprocess(x)]
        position_bias = None
        for layer in transformer.layers[: num_layers or self.num_layers]:
            x_out, position_bias = layer(states[-1], mask, position_bias=position_bias)
            states.append(x_out)
        return states, lengths

    def final_output(self, last_layer: torch.Tensor) -> torch.Tensor:
        """The encoder's output from its last layer's: a pre-LN model's final layer norm."""
        transformer = self.wav2vec2.encoder.transformer
        # torchaudio's flag means "norm before the layers", i.e. a post-LN model
        return last_layer if transformer.layer_norm_first else transformer.layer_norm(last_layer)

    def unit_logits(self, last_layer: torch.Tensor) -> torch.Tensor:
        """(B, T, D) last layer -> (B, T, num_classes): cosine similarity of the projected encoder
        output to the cluster embeddings / 0.1 (HuBERT's masked-prediction logits)."""
        if not self.num_classes:
            raise ValueError("this HuBERT has no masked-prediction output (no cluster embeddings)")
        proj = self.final_proj(self.final_output(last_layer))
        sim = torch.cosine_similarity(proj.unsqueeze(-2), self.label_embeddings, dim=-1)
        return sim / self.logit_temperature

    def frames(self, num_samples: int) -> int:
        """Output frames of ``num_samples`` samples (0 when shorter than the receptive field)."""
        n = num_samples
        for _, kernel, stride in self.config["extractor_conv_layer_config"]:
            n = (n - kernel) // stride + 1 if n >= kernel else 0
        return max(n, 0)

    BLOB_FORMAT = "espnet_distill.hubert"

    def blob(self) -> dict:
        """What :meth:`save` writes and :meth:`from_blob` rebuilds."""
        return {
            "format": self.BLOB_FORMAT,
            "config": self.config,
            "num_classes": self.num_classes,
            "final_dim": self.final_dim,
            "state_dict": self.state_dict(),
        }

    @classmethod
    def from_blob(cls, blob: dict, source: Path | str) -> HubertModel:
        model = cls(blob["config"], blob["num_classes"], blob["final_dim"])
        return model.load_checked(blob["state_dict"], source)

    def save(self, path: Path) -> None:
        save_torch(self.blob(), path)

    def load_checked(self, state: dict[str, torch.Tensor], source: Path | str) -> HubertModel:
        """Strict load; every missing, unexpected or mis-shaped key is named in one error."""
        state = {
            re.sub(r"conv\.weight_([gv])$", lambda m: _WEIGHT_NORM_KEYS[m.group(1)], k): v
            for k, v in state.items()
        }
        own = self.state_dict()
        missing = sorted(k for k in own if k not in state)
        unexpected = sorted(k for k in state if k not in own)
        shapes = sorted(
            f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
            for k in own
            if k in state and tuple(state[k].shape) != tuple(own[k].shape)
        )
        if missing or unexpected or shapes:
            parts = [
                f"{name}: {_describe(keys)}"
                for name, keys in (
                    ("missing keys", missing),
                    ("unexpected keys", unexpected),
                    ("shape mismatches (checkpoint vs model)", shapes),
                )
                if keys
            ]
            raise CheckpointMismatch(
                f"{source}: not a checkpoint of this HuBERT architecture: " + "; ".join(parts)
            )
        self.load_state_dict(state)
        return self.eval()


def infer_torchaudio_config(state: dict[str, torch.Tensor], source: Path | str = "") -> dict:
    """The ``wav2vec2_model`` arguments of a torchaudio state dict, read from its shapes."""
    try:
        conv = []
        i = 0
        while f"feature_extractor.conv_layers.{i}.conv.weight" in state:
            out_ch, _, kernel = state[f"feature_extractor.conv_layers.{i}.conv.weight"].shape
            if kernel not in _CNN_STRIDES:
                raise CheckpointMismatch(
                    f"{source}: CNN kernel {kernel} of layer {i} has no known "
                    "stride: give the architecture as a config"
                )
            conv.append((int(out_ch), int(kernel), _CNN_STRIDES[int(kernel)]))
            i += 1
        dim = int(state["encoder.feature_projection.projection.weight"].shape[0])
        pos = [
            state[k]
            for k in state
            if k.startswith("encoder.transformer.pos_conv_embed.conv.")
            and k.endswith(("weight_v", "original1", "conv.weight"))
        ]
        num_layers = len(
            {
                m.group(1)
                for k in state
                if (m := re.match(r"encoder\.transformer\.layers\.(\d+)\.", k))
            }
        )
        ff = state["encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"].shape[0]
    except (KeyError, IndexError) as err:
        raise CheckpointMismatch(
            f"{source}: not a torchaudio wav2vec2/HuBERT state dict (no {err})"
        ) from None
    if not conv or not pos:
        raise CheckpointMismatch(
            f"{source}: not a torchaudio wav2vec2/HuBERT state dict "
            "(no CNN layers or positional convolution)"
        )
    heads = attention_heads(dim)
    return {
        "extractor_mode": "layer_norm"
        if "feature_extractor.conv_layers.1.layer_norm.weight" in state
        else "group_norm",
        "extractor_conv_layer_config": conv,
        "extractor_conv_bias": "feature_extractor.conv_layers.0.conv.bias" in state,
        "encoder_embed_dim": dim,
        "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": int(pos[0].shape[2]),
        "encoder_pos_conv_groups": dim // int(pos[0].shape[1]),
        "encoder_num_layers": num_layers,
        "encoder_num_heads": heads,
        "encoder_attention_dropout": 0.0,
        "encoder_ff_interm_features": int(ff),
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.0,
        "encoder_layer_norm_first": dim != 768,
        "encoder_layer_drop": 0.0,
    }


def split_pretrain_state(state: dict) -> tuple[dict, torch.Tensor | None, dict]:
    """torchaudio HuBERTPretrainModel keys -> (wav2vec2 state, cluster embeddings, final_proj)."""
    if any(k.startswith("wav2vec2.") for k in state):
        body = {
            k.removeprefix("wav2vec2."): v
            for k, v in state.items()
            if k.startswith("wav2vec2.") and not k.startswith("wav2vec2.mask_generator")
        }
        emb = state.get("logit_generator.label_embeddings")
        proj = {
            k.removeprefix("logit_generator.final_proj."): v
            for k, v in state.items()
            if k.startswith("logit_generator.final_proj.")
        }
        return body, emb, proj
    return dict(state), None, {}


def assemble_hubert(
    config: dict, body: dict, emb: torch.Tensor | None, proj: dict, source: Path | str
) -> HubertModel:
    num_classes, final_dim = (emb.shape[0], emb.shape[1]) if emb is not None else (0, 0)
    model = HubertModel(config, num_classes, final_dim)
    state = {f"wav2vec2.{k}": v for k, v in body.items()}
    if emb is not None:
        state["label_embeddings"] = emb
        state.update({f"final_proj.{k}": v for k, v in proj.items()})
    return model.load_checked(state, source)


def _fairseq_config(model_cfg: dict) -> dict:
    conv = ast.literal_eval(
        model_cfg.get(
            "conv_feature_layers", "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"
        )
    )
    mode = model_cfg.get("extractor_mode", "default")
    return {
        "extractor_mode": "layer_norm" if mode == "layer_norm" else "group_norm",
        "extractor_conv_layer_config": [tuple(c) for c in conv],
        "extractor_conv_bias": bool(model_cfg.get("conv_bias", False)),
        "encoder_embed_dim": model_cfg.get("encoder_embed_dim", 768),
        "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": model_cfg.get("conv_pos", 128),
        "encoder_pos_conv_groups": model_cfg.get("conv_pos_groups", 16),
        "encoder_num_layers": model_cfg.get("encoder_layers", 12),
        "encoder_num_heads": model_cfg.get("encoder_attention_heads", 12),
        "encoder_attention_dropout": 0.0,
        "encoder_ff_interm_features": model_cfg.get("encoder_ffn_embed_dim", 3072),
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.0,
        "encoder_layer_norm_first": bool(model_cfg.get("layer_norm_first", False)),
        "encoder_layer_drop": 0.0,
    }


def _load_fairseq(path: Path) -> HubertModel:
    # torchaudio's public import_fairseq_model needs the fairseq model object (fairseq itself,
    # which does not install beside this stack); its private key mapping works on the state dict.
    from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict

    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or "model" not in blob:
        raise CheckpointMismatch(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    cfg = blob.get("cfg") or {}
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    if model_cfg is None and blob.get("args") is not None:
        model_cfg = vars(blob["args"])
    if model_cfg is None:
        raise CheckpointMismatch(f"{path}: a fairseq checkpoint without 'cfg' or 'args'")
    model_cfg = dict(model_cfg)
    state = blob["model"]
    proj = {
        k.removeprefix("final_proj."): v for k, v in state.items() if k.startswith("final_proj.")
    }
    emb = state.get("label_embs_concat")
    try:
        body = _convert_state_dict({k: v for k, v in state.items() if k != "label_embs_concat"})
    except ValueError as err:
        raise CheckpointMismatch(f"{path}: {err}") from None
    return assemble_hubert(_fairseq_config(model_cfg), body, emb, proj, path)


def _load_hf(path: Path) -> HubertModel:
    # import_huggingface_model is public; the config mapping it uses (_get_config) has no public
    # name, and we need the config to rebuild the model with its dropouts off.
    from torchaudio.models.wav2vec2.utils.import_huggingface import (
        _get_config,
        import_huggingface_model,
    )
    from transformers import HubertConfig
    from transformers import HubertModel as HfHubertModel

    config = HubertConfig.from_pretrained(path, local_files_only=True)
    if config.model_type != "hubert":
        raise CheckpointMismatch(f"{path}: a '{config.model_type}' model, not HuBERT")
    hf = HfHubertModel.from_pretrained(path, local_files_only=True)
    imported = import_huggingface_model(hf)
    ours = {k: v for k, v in _get_config(config).items()}
    ours.update(
        encoder_projection_dropout=0.0,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_drop=0.0,
    )
    ours["extractor_conv_layer_config"] = [tuple(c) for c in ours["extractor_conv_layer_config"]]
    return assemble_hubert(ours, imported.state_dict(), None, {}, path)


def detect_format(path: Path) -> str:
    """``hf`` for a directory with config.json, else by the checkpoint's top-level keys."""
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf"
        raise CheckpointMismatch(f"{path}: a directory without config.json (not a HF model)")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(blob, dict) and blob.get("format") == HubertModel.BLOB_FORMAT:
        return "espnet_distill"
    if isinstance(blob, dict) and "model" in blob and ("cfg" in blob or "args" in blob):
        return "fairseq"
    return "torchaudio"


def load_hubert(path: Path, fmt: str = "auto", config: dict | None = None) -> HubertModel:
    """A HuBERT teacher in eval mode from ``path`` in format ``fmt`` (see the module doc)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown checkpoint format '{fmt}', expected one of {', '.join(FORMATS)}")
    if fmt == "hf":
        return _load_hf(path)
    if fmt == "fairseq":
        return _load_fairseq(path)
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if fmt == "espnet_distill":
        return HubertModel.from_blob(blob, path)
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise CheckpointMismatch(f"{path}: not a torchaudio state dict (a dict of tensors)")
    body, emb, proj = split_pretrain_state(blob)
    return assemble_hubert(config or infer_torchaudio_config(body, path), body, emb, proj, path)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def receptive_field(config: dict) -> int:
    """Samples of the CNN's receptive field: shorter audio has no output frame."""
    field = 1
    for _, kernel, stride in reversed(config["extractor_conv_layer_config"]):
        field = (field - 1) * stride + kernel
    return field
