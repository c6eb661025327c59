"""An upstream (teacher or student) as deployable files, each checked against the PyTorch model.

- ONNX (:func:`export_onnx`): one graph from 16 kHz audio to every layer, dynamic in batch and
  time: inputs ``waveforms`` (B, S) float32 and ``lengths`` (B,) int64 (samples of each row),
  outputs ``hidden_states`` (L+1, B, T, D), the layers :meth:`hidden_states` returns stacked, and
  ``frames`` (B,), each row's valid frames. Transformers go through ``torch.export`` (the
  exporter torch recommends); the LSTM students through the TorchScript exporter, because
  ``torch.export`` unrolls an LSTM over time and so fixes the input length (its guards reject
  every other), while the TorchScript one maps it to ONNX's ``LSTM`` operator.
- int8: onnxruntime's dynamic quantization (:func:`quantize_onnx_int8`: int8 weights, activations
  quantized per batch at run time, so no calibration set), and PyTorch's for the LSTM students
  (``models.students.quantize_int8``).
- Hugging Face (:func:`export_hf`): the teacher and the transformer students as a
  ``transformers.HubertModel`` directory (``config.json`` + ``model.safetensors``), the form SSL
  models are shared in; ``models.hubert.load_hubert`` reads it back.

:func:`max_abs_diff` compares an ONNX file's layers with the model's on real utterances, over
their valid frames (each alone, or in one padded batch; raw, or layer-normed as the downstreams
read them).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from espnet_distill.deploy.runtime import TASK_OUTPUT, layer_norm
from espnet_distill.kws_sv.trainer import KwsSvModule, load_system
from espnet_distill.models.hubert import HubertModel, load_hubert, receptive_field
from espnet_distill.models.students import DistilHubert, LstmStudent, quantize_int8
from espnet_distill.models.upstream import load_upstream, save_student, upstream_parameters
from espnet_distill.ort import SAMPLE_RATE, onnx_session, padded_batch
from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)
for _chatty in ("onnxscript", "onnx_ir"):  # an INFO line per constant the optimiser merges
    logging.getLogger(_chatty).setLevel(logging.WARNING)

INPUTS = ("waveforms", "lengths")
OPSET = 18
MAX_SECONDS = 3600  # the longest input the transformer graphs accept (torch.export's bound)


class UpstreamGraph(nn.Module):
    """An upstream's :meth:`hidden_states` as one function of tensors (what ONNX exports)."""

    def __init__(self, upstream: nn.Module) -> None:
        super().__init__()
        self.upstream = upstream

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, frames = self.upstream.hidden_states(waveforms, lengths)
        return torch.stack(states), frames


def _network(upstream: nn.Module) -> HubertModel | LstmStudent:
    if isinstance(upstream, DistilHubert):
        return upstream.backbone
    if isinstance(upstream, HubertModel | LstmStudent):
        return upstream
    raise ValueError(
        f"a {type(upstream).__name__} upstream has no network to export "
        "(the fbank baseline is the probes' input features alone)"
    )


def _plain_weights(upstream: nn.Module) -> nn.Module:
    """A copy of ``upstream`` with its weight parametrizations (the positional convolution's
    weight norm) folded into plain weights: the graph then holds the weight as a constant, which
    is what quantization and constant folding need, not its computation from g and v. Not
    ``parametrize.remove_parametrizations``: it deletes the property from the module's class,
    which a deep copy shares with the original, and so would break the original."""
    from torch.nn.utils import parametrize

    upstream = copy.deepcopy(upstream)
    for module in [m for m in upstream.modules() if parametrize.is_parametrized(m)]:
        plain = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
        del module.parametrizations
        module.__class__ = module.__class__.__bases__[0]  # the class before parametrization
        for name, value in plain.items():
            module.register_parameter(name, nn.Parameter(value))
    return upstream


def export_onnx(upstream: nn.Module, path: Path) -> None:
    """``upstream`` as an ONNX file at ``path`` (see the module docstring for its signature)."""
    upstream = _plain_weights(upstream)
    axes = {"hidden_states": {1: "batch", 2: "time"}, "frames": {0: "batch"}}
    _export_graph(UpstreamGraph(upstream), _network(upstream), path, axes)


def _export_graph(graph: nn.Module, network: nn.Module, path: Path, outputs: dict) -> None:
    """``graph`` (waveforms, lengths) -> ``outputs`` (name -> its dynamic axes) as ONNX, with the
    exporter ``network`` (the upstream's) allows; see the module docstring."""
    graph.eval()  # the wrapper too: the exporter runs the module in the wrapper's mode
    g = torch.Generator().manual_seed(0)
    example = (torch.randn(2, 2 * SAMPLE_RATE, generator=g), torch.tensor([32000, 24000]))
    path.parent.mkdir(parents=True, exist_ok=True)
    common = dict(input_names=list(INPUTS), output_names=list(outputs), opset_version=OPSET)
    with atomic_output(path) as tmp, torch.no_grad():
        if isinstance(network, LstmStudent):
            axes = {"waveforms": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}, **outputs}
            torch.onnx.export(graph, example, tmp, dynamo=False, dynamic_axes=axes, **common)
        else:
            batch = torch.export.Dim("batch", max=4096)
            shortest = receptive_field(network.config)
            samples = torch.export.Dim("samples", min=shortest, max=MAX_SECONDS * SAMPLE_RATE)
            torch.onnx.export(
                graph,
                example,
                tmp,
                dynamo=True,
                dynamic_shapes=({0: batch, 1: samples}, {0: batch}),
                external_data=False,  # one self-contained file (the weights under 2 GB)
                verbose=False,
                **common,
            )


def max_abs_diff(
    path: Path,
    upstream: nn.Module,
    waveforms: list[np.ndarray],
    batched: bool = False,
    normed: bool = False,
) -> float:
    """The largest |ONNX - PyTorch| over every layer and valid frame of ``waveforms``, each run
    alone (batch 1: how a device runs it), or with ``batched`` as one padded batch (so padding
    and the dynamic batch axis are part of the check). A frame count that differs is an error.

    Padded batches are ill-conditioned for a group-norm CNN (wav2vec 2.0's and the students'):
    its first layer normalises each row over the padding too, so a short row in a long batch has
    a small variance and the two runtimes' summation orders differ by more (measured on the full
    LSTM-DKD student: 3.6e-4 in a padded batch of 1.5-10.9 s utterances, 2e-5 alone).

    ``normed``: of each layer through a layer norm, the form every downstream reads it in
    (``WeightedSum``, s3prl's featurizer): a pre-LN transformer's residual stream is not
    normalised (the full teacher's layers reach |x| = 96, rms 16), so float32 rounding alone
    puts its raw difference near 1e-4 (3.5e-4 measured, 4e-6 of the layer's scale)."""
    groups = [waveforms] if batched else [[w] for w in waveforms]
    session, graph = onnx_session(path), UpstreamGraph(upstream)
    worst = 0.0
    for group in groups:
        (states, frames), (ref, ref_frames) = _both_runtimes(session, graph, group)
        if not np.array_equal(frames, ref_frames):
            raise ValueError(
                f"{path}: frame counts {frames.tolist()}, PyTorch's {ref_frames.tolist()}"
            )
        worst = max(worst, _valid_frames_diff(states, ref, frames, normed))
    return worst


def _both_runtimes(session, graph: nn.Module, group: list[np.ndarray]) -> tuple[list, list]:  # noqa: ANN001
    """onnxruntime's and PyTorch's outputs (numpy) on ``group`` as one padded batch."""
    batch, lengths = padded_batch(group)
    got = session.run(None, {"waveforms": batch, "lengths": lengths})
    with torch.no_grad():
        want = graph.eval()(torch.from_numpy(batch), torch.from_numpy(lengths))
    return got, [w.numpy() for w in want]


def _valid_frames_diff(a: np.ndarray, b: np.ndarray, frames: np.ndarray, normed: bool) -> float:
    """max |a - b| of stacked layers (L+1, B, T, D) over each row's valid ``frames``; with
    ``normed``, of each layer through a layer norm."""
    if normed:
        a, b = layer_norm(a), layer_norm(b)
    return max(
        float(np.abs(a[:, i, :n] - b[:, i, :n]).max()) for i, n in enumerate(frames.tolist())
    )


# The weight-heavy operators. The convolutions stay float: the first reads raw audio, whose
# per-batch int8 activations cost accuracy, and onnxruntime's ConvInteger is no faster on CPU.
INT8_OPS = ("MatMul", "Gemm", "LSTM")


def quantize_onnx_int8(path: Path, out_path: Path) -> None:
    """onnxruntime's dynamic int8 quantization of ``path`` (:data:`INT8_OPS`: int8 weights,
    activations quantized per batch at run time, so no calibration set)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_output(out_path) as tmp:
        quantize_dynamic(
            path, tmp, op_types_to_quantize=list(INT8_OPS), weight_type=QuantType.QInt8
        )


def hf_config(config: dict):  # noqa: ANN201 (transformers.HubertConfig, imported lazily)
    """The ``transformers.HubertConfig`` of a torchaudio wav2vec 2.0 / HuBERT config (the inverse
    of torchaudio's ``import_huggingface_model`` mapping). Time masking is off: our models keep no
    mask embedding for ``HubertModel``'s SpecAugment to use."""
    from transformers import HubertConfig

    conv = config["extractor_conv_layer_config"]
    return HubertConfig(
        hidden_size=config["encoder_embed_dim"],
        num_hidden_layers=config["encoder_num_layers"],
        num_attention_heads=config["encoder_num_heads"],
        intermediate_size=config["encoder_ff_interm_features"],
        hidden_act="gelu",
        conv_dim=[c[0] for c in conv],
        conv_kernel=[c[1] for c in conv],
        conv_stride=[c[2] for c in conv],
        conv_bias=config["extractor_conv_bias"],
        feat_extract_norm=config["extractor_mode"].removesuffix("_norm"),
        feat_proj_layer_norm=True,  # torchaudio's feature projection always has its layer norm
        num_conv_pos_embeddings=config["encoder_pos_conv_kernel"],
        num_conv_pos_embedding_groups=config["encoder_pos_conv_groups"],
        do_stable_layer_norm=config["encoder_layer_norm_first"],
        feat_proj_dropout=config.get("encoder_projection_dropout", 0.1),
        attention_dropout=config.get("encoder_attention_dropout", 0.1),
        activation_dropout=config.get("encoder_ff_interm_dropout", 0.0),
        hidden_dropout=config.get("encoder_dropout", 0.1),
        layerdrop=config.get("encoder_layer_drop", 0.1),
        mask_time_prob=0.0,
    )


def export_hf(upstream: nn.Module, out_dir: Path) -> None:
    """A HuBERT teacher or a DistilHuBERT-style student (its backbone: the prediction heads are
    dropped, as DistilHuBERT's release does) as a Hugging Face ``HubertModel`` directory; every
    tensor is copied with a strict load, so a mismatch is an error, not a random weight."""
    from transformers import HubertModel as HfHubertModel

    network = _network(upstream)
    if not isinstance(network, HubertModel):
        raise ValueError(
            f"a {type(network).__name__} has no Hugging Face HubertModel form (ONNX or .pt only)"
        )
    hf = HfHubertModel(hf_config(network.config)).eval()
    w2v = network.wav2vec2
    hf.feature_extractor.load_state_dict(w2v.feature_extractor.state_dict())
    hf.feature_projection.load_state_dict(w2v.encoder.feature_projection.state_dict())
    hf.encoder.load_state_dict(w2v.encoder.transformer.state_dict())
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    hf.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


ONNX_TOLERANCE = 1e-4  # max abs difference of the fp32 graph from PyTorch (issue 30's bound)


def export_upstream(upstream: nn.Module, kind: str, out_dir: Path, waveforms: list) -> dict:
    """Every deployable form of ``upstream`` in ``out_dir``, each checked on ``waveforms`` (real
    utterances of several lengths, each alone; the fp32 graph on one padded batch of them too, its
    difference reported): ``model.onnx`` (an error if it is more than :data:`ONNX_TOLERANCE` from
    PyTorch's, both layer-normed: :func:`max_abs_diff`), ``model.int8.onnx``, for an LSTM student
    ``model.int8.pt`` (``load_upstream`` reads it), for a transformer ``hf/`` (a
    ``transformers.HubertModel`` dir, read back by ``load_hubert`` and compared). Returns the
    summary that ``export.yaml`` holds: files, MB, each artifact's max abs difference from the
    float model, layer-normed (int8: its quantization error, reported, not bounded); the fp32
    graph's raw difference and its padded-batch one beside."""
    out_dir.mkdir(parents=True, exist_ok=True)
    network = _network(upstream)
    onnx_file, int8_file = out_dir / "model.onnx", out_dir / "model.int8.onnx"
    export_onnx(upstream, onnx_file)
    diff = max_abs_diff(onnx_file, upstream, waveforms, normed=True)
    if diff > ONNX_TOLERANCE:
        raise ValueError(
            f"{onnx_file}: max abs difference {diff:.2e} of the layer-normed layers from "
            f"PyTorch's > {ONNX_TOLERANCE}"
        )
    quantize_onnx_int8(onnx_file, int8_file)
    artifacts = {
        "onnx_fp32": {
            "file": onnx_file.name,
            "max_abs_diff": diff,
            "raw_diff": max_abs_diff(onnx_file, upstream, waveforms),
            "padded_batch_diff": max_abs_diff(onnx_file, upstream, waveforms, batched=True),
        },
        "onnx_int8": {
            "file": int8_file.name,
            "max_abs_diff": max_abs_diff(int8_file, upstream, waveforms, normed=True),
        },
    }
    batch, lengths = (torch.from_numpy(x) for x in padded_batch(waveforms))
    if isinstance(network, LstmStudent):
        pt_file = out_dir / "model.int8.pt"
        save_student(quantize_int8(network), kind, pt_file)
        artifacts["torch_int8"] = {
            "file": pt_file.name,
            "max_abs_diff": _torch_diff(load_upstream(pt_file), upstream, batch, lengths),
        }
    else:
        export_hf(upstream, out_dir / "hf")
        back = load_hubert(out_dir / "hf")
        artifacts["hf"] = {"file": "hf", "max_abs_diff": _torch_diff(back, network, batch, lengths)}
    return {
        "upstream_parameters": upstream_parameters(upstream),
        "test_lengths_s": [round(len(w) / SAMPLE_RATE, 2) for w in waveforms],
        "artifacts": _summary(artifacts, out_dir),
    }


def _torch_diff(
    model: nn.Module, reference: nn.Module, batch: torch.Tensor, lengths: torch.Tensor
) -> float:
    """:func:`max_abs_diff` (layer-normed) between two PyTorch upstreams on one padded batch."""
    with torch.no_grad():
        got, frames = UpstreamGraph(model).eval()(batch, lengths)
        want, _ = UpstreamGraph(reference).eval()(batch, lengths)
    return _valid_frames_diff(got.numpy(), want.numpy(), frames.numpy(), normed=True)


def _summary(artifacts: dict, out_dir: Path) -> dict:
    """``artifacts`` with their differences to 3 significant digits and their files' MB."""
    for entry in artifacts.values():
        for key in ("max_abs_diff", "raw_diff", "padded_batch_diff"):
            if key in entry:
                entry[key] = float(f"{entry[key]:.3g}")
        entry["mb"] = round(_size(out_dir / entry["file"]) / 2**20, 3)
    return artifacts


def _size(path: Path) -> int:
    return (
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


class SystemGraph(nn.Module):
    """A KWS/SV system as one function of tensors: (waveforms, lengths) -> the keyword
    probabilities (B, K) and/or the length-normalised speaker embedding (B, E), by its tasks."""

    def __init__(self, system: KwsSvModule) -> None:
        super().__init__()
        self.system = system

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = []
        if "kws" in self.system.tasks:
            outputs.append(self.system.keyword_logits(waveforms, lengths).softmax(-1))
        if "sv" in self.system.tasks:
            embedding = self.system.embeddings(waveforms, lengths)
            outputs.append(nn.functional.normalize(embedding, dim=-1))
        return tuple(outputs)


def system_metadata(system: KwsSvModule, sv_threshold: float | None) -> dict:
    """What ``bin/infer.py`` needs besides the graph: tasks, keywords, the SV threshold, the
    shortest input (samples of the CNN's receptive field)."""
    return {
        "espnet_distill": "kws_sv",
        "tasks": list(system.tasks),
        "keywords": list(system.keywords),
        "sv_threshold": sv_threshold,
        "sample_rate": SAMPLE_RATE,
        "min_samples": _min_samples(system.upstream),
    }


def _min_samples(upstream: nn.Module) -> int:
    network = _network(upstream)
    config = network.config["cnn"] if isinstance(network, LstmStudent) else network.config
    return receptive_field(config)


def export_system_onnx(system: KwsSvModule, path: Path, meta: dict) -> None:
    """``system`` (:class:`SystemGraph`) as ONNX at ``path``, ``meta`` in its metadata."""
    plain = _plain_weights(system)
    outputs = {TASK_OUTPUT[t]: {0: "batch"} for t in system.tasks}
    _export_graph(SystemGraph(plain), _network(plain.upstream), path, outputs)
    write_metadata(path, meta)


def write_metadata(path: Path, meta: dict) -> None:
    """``meta`` (JSON values) as the ONNX file's ``metadata_props``, replacing any there."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    with atomic_output(path) as tmp:
        onnx.save(model, str(tmp))


def system_max_diff(path: Path, system: KwsSvModule, waveforms: list[np.ndarray]) -> float:
    """The largest |ONNX - PyTorch| of the system's outputs (keyword probabilities, normalised
    embedding: what infer reports), over ``waveforms`` each alone."""
    session, graph = onnx_session(path), SystemGraph(system)
    worst = 0.0
    for wave in waveforms:
        got, want = _both_runtimes(session, graph, [wave])
        worst = max([worst, *(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True))])
    return worst


def export_system(
    system: KwsSvModule, sv_threshold: float | None, out_dir: Path, waveforms: list
) -> dict:
    """A KWS/SV system as ``system.onnx`` (fp32; more than :data:`ONNX_TOLERANCE` from PyTorch
    on ``waveforms`` is an error) and ``system.int8.onnx`` (onnxruntime dynamic int8), both
    carrying :func:`system_metadata`; returns the summary ``export.yaml`` holds."""
    _network(system.upstream)  # the fbank baseline has none: an error before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = system_metadata(system, sv_threshold)
    onnx_file, int8_file = out_dir / "system.onnx", out_dir / "system.int8.onnx"
    export_system_onnx(system, onnx_file, meta)
    diff = system_max_diff(onnx_file, system, waveforms)
    if diff > ONNX_TOLERANCE:
        raise ValueError(
            f"{onnx_file}: max abs difference {diff:.2e} from PyTorch's > {ONNX_TOLERANCE}"
        )
    quantize_onnx_int8(onnx_file, int8_file)
    write_metadata(int8_file, meta)
    artifacts = {
        "onnx_fp32": {"file": onnx_file.name, "max_abs_diff": diff},
        "onnx_int8": {
            "file": int8_file.name,
            "max_abs_diff": system_max_diff(int8_file, system, waveforms),
        },
    }
    summary = {"tasks": meta["tasks"], "sv_threshold": sv_threshold}
    return {**summary, "artifacts": _summary(artifacts, out_dir)}


class TorchSystem:
    """A ``system.pt`` through PyTorch, with :class:`~espnet_distill.deploy.runtime.OnnxSystem`'s
    interface (``meta``, ``outputs``, ``run``)."""

    def __init__(self, path: Path) -> None:
        system, threshold = load_system(path)
        self.meta = system_metadata(system, threshold)
        self.graph = SystemGraph(system).eval()
        self.outputs = [TASK_OUTPUT[t] for t in system.tasks]

    def run(self, task: str, wave: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            outputs = self.graph(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        return outputs[self.outputs.index(TASK_OUTPUT[task])][0].numpy()
