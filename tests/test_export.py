"""Deployment (espnet_distill/deploy/export.py): ONNX graphs equal to the PyTorch upstreams on a
padded batch of other lengths than the export's example, int8 artifacts that load and stay close,
and the Hugging Face round trip (transformers' own HubertModel gives our hidden states)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from espnet_distill.deploy.export import (
    UpstreamGraph,
    export_hf,
    export_onnx,
    max_abs_diff,
    quantize_onnx_int8,
)
from espnet_distill.models.hubert import HubertModel, load_hubert
from espnet_distill.models.students import DistilHubert, LstmStudent, quantize_int8
from espnet_distill.models.upstream import FbankUpstream, load_upstream, save_student
from espnet_distill.ort import onnx_session, padded_batch
from tests.test_hubert import tiny_config

pytest.importorskip("onnxruntime")

# other batch size and lengths than export_onnx's example (2 x 2 s): the axes must be dynamic
LENGTHS = (8000, 21000, 4400)


def _waveforms(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in LENGTHS]


def _upstreams() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    teacher = HubertModel(tiny_config(layer_norm_first=True)).eval()
    student = DistilHubert(dict(tiny_config(), encoder_num_layers=2), [1, 3], 128).eval()
    lstm = LstmStudent(tiny_config(), num_classes=10, hidden=24, num_layers=2).eval()
    return {"hubert": teacher, "distilhubert": student, "lstm": lstm}


@pytest.mark.parametrize("name", ["hubert", "distilhubert", "lstm"])
def test_onnx_equals_torch_on_a_padded_batch_and_int8_stays_close(tmp_path, name):
    """fp32, in one padded batch and each utterance alone: within 1e-4 (the issue's tolerance;
    measured 1.6e-5 to 2.6e-5 max abs over every layer, float rounding of other kernels); a graph with the example's shapes baked in fails to
    run or gives other frames. int8: runs and stays near the last layer (measured relative error
    0.7-1.2%), far below an unrelated model's (1.3: another seed's student)."""
    upstream = _upstreams()[name]
    onnx_file = tmp_path / "model.onnx"
    export_onnx(upstream, onnx_file)
    waveforms = _waveforms()
    assert max_abs_diff(onnx_file, upstream, waveforms, batched=True) < 1e-4
    assert max_abs_diff(onnx_file, upstream, waveforms, normed=True) < 1e-4  # export_model's check

    int8_file = tmp_path / "model.int8.onnx"
    quantize_onnx_int8(onnx_file, int8_file)
    assert int8_file.stat().st_size < 0.6 * onnx_file.stat().st_size
    batch, lengths = padded_batch(waveforms)
    states, frames = onnx_session(int8_file).run(None, {"waveforms": batch, "lengths": lengths})
    with torch.no_grad():
        ref, _ = UpstreamGraph(upstream)(torch.from_numpy(batch), torch.from_numpy(lengths))
    n = int(frames[0])
    last, ref_last = states[-1, 0, :n], ref[-1, 0, :n].numpy()
    assert np.linalg.norm(last - ref_last) / np.linalg.norm(ref_last) < 0.3


def test_fbank_baseline_has_nothing_to_export(tmp_path):
    with pytest.raises(ValueError, match="no network to export"):
        export_onnx(FbankUpstream(), tmp_path / "fbank.onnx")


def test_int8_lstm_student_round_trips_through_load_upstream(tmp_path):
    """PyTorch dynamic int8 of an LSTM student: saved by save_student, rebuilt by load_upstream
    with the same outputs; on a padded batch the quantized LSTM runs each row over its own frames
    (padding stays zero, each row near the float model's: measured relative error 1.2%; an
    unrelated model of another seed is at 1.3)."""
    lstm = _upstreams()["lstm"]
    int8 = quantize_int8(lstm)
    assert type(int8.lstms[0]).__module__.startswith("torch.ao.nn.quantized")
    save_student(int8, "dkd", tmp_path / "model.int8.pt")
    loaded = load_upstream(tmp_path / "model.int8.pt")
    batch, lengths = (torch.from_numpy(x) for x in padded_batch(_waveforms()))
    with torch.no_grad():
        states, frames = loaded.hidden_states(batch, lengths)
        mine, _ = int8.hidden_states(batch, lengths)
        ref, _ = lstm.hidden_states(batch, lengths)
    torch.testing.assert_close(states[-1], mine[-1])
    for row, n in enumerate(frames.tolist()):
        assert (states[-1][row, n:] == 0).all()
        got, want = states[-1][row, :n], ref[-1][row, :n]
        assert (got - want).norm() / want.norm() < 0.3


@pytest.mark.parametrize("name", ["hubert", "distilhubert"])
def test_hf_export_loads_in_transformers_and_round_trips(tmp_path, name):
    """transformers.HubertModel.from_pretrained on the exported dir gives every layer of ours
    (the final layer norm of a pre-LN model included in its last state, as transformers does),
    and load_hubert reads the dir back to the same hidden states."""
    from transformers import HubertModel as HfHubertModel

    upstream = _upstreams()[name]
    export_hf(upstream, tmp_path / "hf")
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    hf = HfHubertModel.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    wave = torch.from_numpy(_waveforms()[1])[None]
    with torch.no_grad():
        ours, _ = upstream.hidden_states(wave)
        theirs = hf(wave, output_hidden_states=True).hidden_states
        back, _ = load_hubert(tmp_path / "hf").hidden_states(wave)
    assert len(theirs) == len(ours) == len(back)
    for layer, (a, b, c) in enumerate(zip(ours, theirs, back, strict=True)):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=f"transformers, layer {layer}")
        torch.testing.assert_close(c, a, atol=1e-5, rtol=1e-4, msg=f"round trip, layer {layer}")


def test_lstm_students_have_no_hf_form(tmp_path):
    with pytest.raises(ValueError, match="no Hugging Face HubertModel form"):
        export_hf(_upstreams()["lstm"], tmp_path / "hf")


def _system(upstream_name: str, tasks: list[str]):
    from espnet_distill.config import merge_config
    from espnet_distill.kws_sv.trainer import DEFAULT_CONFIG, KwsSvModule

    config = merge_config(DEFAULT_CONFIG, {"tasks": tasks, "kws": {"hidden": 32}})
    config["sv"].update(hidden=32, embedding=16)
    torch.manual_seed(1)
    system = KwsSvModule(
        _upstreams()[upstream_name], config, ["no", "yes", "_unknown_"], ["a", "b"]
    )
    with torch.no_grad():  # heads away from their initial weights, so a lost one shows
        for name, p in system.named_parameters():
            if not name.startswith("upstream."):
                p.add_(torch.randn_like(p) * 0.1)
    return system.eval()


@pytest.mark.parametrize("upstream_name", ["lstm", "distilhubert"])
def test_system_file_round_trip_and_onnx_export(tmp_path, upstream_name):
    """save_system/load_system give the same outputs (fine-tuned upstream weights included);
    the ONNX system's keyword probabilities and embeddings within 1e-4 of PyTorch's (measured
    ~1e-7: softmax and normalised outputs), its int8 form close (measured < 0.05), the metadata
    carried by both files."""
    from espnet_distill.deploy.export import SystemGraph, export_system
    from espnet_distill.kws_sv.trainer import load_system, save_system
    from espnet_distill.ort import metadata

    system = _system(upstream_name, ["kws", "sv"])
    with torch.no_grad():  # as if fine-tuned: the file must keep the upstream's own weights
        next(system.upstream.parameters()).add_(0.05)
    save_system(system, tmp_path / "system.pt", sv_threshold=0.42)
    loaded, threshold = load_system(tmp_path / "system.pt")
    assert threshold == 0.42 and loaded.keywords == system.keywords
    wave = torch.from_numpy(_waveforms()[1])[None]
    with torch.no_grad():
        for a, b in zip(
            SystemGraph(loaded)(wave, None), SystemGraph(system)(wave, None), strict=True
        ):
            torch.testing.assert_close(a, b)
    summary = export_system(loaded, threshold, tmp_path / "export", _waveforms())
    assert summary["artifacts"]["onnx_fp32"]["max_abs_diff"] < 1e-4
    assert summary["artifacts"]["onnx_int8"]["max_abs_diff"] < 0.2
    for name in ("system.onnx", "system.int8.onnx"):
        meta = metadata(onnx_session(tmp_path / "export" / name))
        assert meta["keywords"] == ["no", "yes", "_unknown_"] and meta["sv_threshold"] == 0.42


INFER_WITHOUT_TORCH = (
    "import sys; sys.modules['torch'] = None  # any import of torch fails\n"
    "from espnet_distill.bin.infer import main; sys.exit(main(sys.argv[1:]))"
)


def _infer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", INFER_WITHOUT_TORCH, *args], capture_output=True, text=True
    )


def test_infer_runs_on_onnx_without_torch_and_names_bad_input(tmp_path, capsys):
    """bin/infer on an exported system in a process where importing torch fails: KWS labels
    each file with the keyword PyTorch's system gives, SV scores a pair with its cosine and the
    stored threshold; on the system.pt (PyTorch) the same labels; a wrong sample rate, an empty file and a task the system lacks end in one
    line naming the file."""
    import soundfile as sf

    from espnet_distill.deploy.export import SystemGraph, export_system

    system = _system("lstm", ["kws", "sv"])
    export_system(system, 0.5, tmp_path, _waveforms())
    waves = _waveforms()
    for i, wave in enumerate(waves):
        sf.write(tmp_path / f"{i}.wav", wave, 16000)
    model = str(tmp_path / "system.onnx")
    out = _infer("--model", model, "--task", "kws", *(str(tmp_path / f"{i}.wav") for i in range(3)))
    assert out.returncode == 0, out.stderr
    with torch.no_grad():
        want = [
            system.keywords[int(SystemGraph(system)(torch.from_numpy(w)[None], None)[0].argmax())]
            for w in waves
        ]
    assert [line.split("\t")[1] for line in out.stdout.splitlines()] == want
    a, b = str(tmp_path / "0.wav"), str(tmp_path / "1.wav")
    out = _infer("--model", model, "--task", "sv", "--enroll", a, "--test", b)
    assert out.returncode == 0, out.stderr
    with torch.no_grad():
        ea, eb = (SystemGraph(system)(torch.from_numpy(w)[None], None)[1][0] for w in waves[:2])
    score = float(out.stdout.split("\t")[2])
    assert score == pytest.approx(float(ea @ eb), abs=1e-3)
    assert out.stdout.strip().endswith("accept" if score >= 0.5 else "reject")

    # the training's system.pt through PyTorch: the same labels
    from espnet_distill.bin.infer import main as infer_main
    from espnet_distill.kws_sv.trainer import save_system

    save_system(system, tmp_path / "system.pt", 0.5)
    wavs = [str(tmp_path / f"{i}.wav") for i in range(3)]
    assert infer_main(["--model", str(tmp_path / "system.pt"), "--task", "kws", *wavs]) == 0
    labels = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
    assert labels == want

    sf.write(tmp_path / "8k.wav", waves[0][::2], 8000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    for bad, message in [("8k.wav", "8000 Hz audio"), ("empty.wav", "0 samples")]:
        out = _infer("--model", model, "--task", "kws", str(tmp_path / bad))
        assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
        assert out.stderr.startswith(f"infer: {tmp_path / bad}: {message}"), out.stderr
    export_system(_system("lstm", ["kws"]), None, tmp_path / "kws_only", waves)
    kws_only = str(tmp_path / "kws_only" / "system.onnx")
    out = _infer("--model", kws_only, "--task", "sv", "--enroll", a, "--test", b)
    assert out.returncode == 1 and "a kws system has no sv output" in out.stderr, out.stderr


def _uni_student(mode: str) -> LstmStudent:
    torch.manual_seed(3)
    config = tiny_config(mode=mode)
    config["extractor_conv_bias"] = mode == "layer_norm"
    return LstmStudent(config, num_classes=10, hidden=24, num_layers=2, bidirectional=False).eval()


def test_streaming_equals_the_whole_utterance_with_a_layer_norm_cnn():
    """Chunks of 0.1 s, 0.25 s and an odd 333 samples through StreamingLstm: every frame of
    every layer equals the whole-utterance pass (a layer-norm CNN normalises each frame alone;
    the carried LSTM state and the kept samples make it exact: float rounding only). A frame
    dropped or doubled at a chunk edge shifts every later frame and fails this."""
    from espnet_distill.deploy.streaming import StreamingLstm

    student = _uni_student("layer_norm")
    wave = torch.from_numpy(_waveforms()[1])
    with torch.no_grad():
        whole, _ = student.hidden_states(wave[None])
    for chunk in (1600, 4000, 333):
        stream = StreamingLstm(student)
        pieces = [stream.push(wave[i : i + chunk]) for i in range(0, len(wave), chunk)]
        for layer in range(len(whole)):
            got = torch.cat([p[layer] for p in pieces])
            assert len(got) == whole[layer].shape[1], (chunk, layer)
            torch.testing.assert_close(got, whole[layer][0], atol=1e-5, rtol=1e-4)


def test_streaming_a_group_norm_cnn_is_measured_and_a_bilstm_refused():
    """A group-norm CNN normalises its first layer over the whole input, which a stream lacks:
    chunked_agreement says how close it comes, closer with longer chunks (measured on this
    random student: relative error 1.4% at 0.25 s chunks, 0.7% at 1 s; cosine 0.99991, 0.99998).
    Exactness is the layer-norm test's; here the measurement and its direction."""
    from espnet_distill.deploy.streaming import StreamingLstm, chunked_agreement

    student = _uni_student("group_norm")
    wave = torch.from_numpy(_waveforms()[1])
    short, long = (chunked_agreement(student, wave, n) for n in (4000, 16000))
    assert short["frames"] == long["frames"] > 0
    assert long["relative_error"] < short["relative_error"] < 0.2
    assert 0.99 < short["cosine"] <= 1.0 and 0.99 < long["cosine"] <= 1.0
    with pytest.raises(ValueError, match="cannot run on a stream"):
        StreamingLstm(_upstreams()["lstm"])


def test_load_upstream_reads_an_exported_onnx_file(tmp_path):
    """load_upstream on model.onnx: the upstream interface over onnxruntime, the model's layers
    (within the export's tolerance) on a padded batch, and its parameter count from the graph;
    a system's ONNX file is not an upstream."""
    upstream = _upstreams()["distilhubert"]
    export_onnx(upstream, tmp_path / "model.onnx")
    loaded = load_upstream(tmp_path / "model.onnx")
    batch, lengths = (torch.from_numpy(x) for x in padded_batch(_waveforms()))
    with torch.no_grad():
        got, frames = loaded.hidden_states(batch, lengths)
        want, want_frames = upstream.hidden_states(batch, lengths)
    assert torch.equal(frames, want_frames) and len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    from espnet_distill.models.upstream import upstream_parameters

    # the graph's weights: the backbone's, give or take a few folded constants (measured 0.3%)
    assert abs(upstream_parameters(loaded) / upstream_parameters(upstream) - 1) < 0.02
    from espnet_distill.deploy.export import export_system

    export_system(_system("lstm", ["kws"]), None, tmp_path / "sys", _waveforms())
    with pytest.raises(ValueError, match="not an exported upstream"):
        load_upstream(tmp_path / "sys" / "system.onnx")
