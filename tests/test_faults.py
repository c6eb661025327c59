"""Training faults: NaN/inf batches skipped and counted; kill -9 then rerun reaches the same weights
as an uninterrupted run; same seed and config, same checkpoint bytes and the same WER."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lhotse import CutSet

from espnet_distill.decode.network import network_outputs
from espnet_distill.decode.searches import GreedyCtc, decode_all
from espnet_distill.lang.bpe import BpeTokenizer
from espnet_distill.score.wer import score_corpus
from espnet_distill.train.fault import FaultTolerantModule, TooManyBadBatches

from .test_train import _config


class _Regression(FaultTolerantModule):
    def __init__(self, max_bad: int) -> None:
        super().__init__()
        self.configure_faults({"seed": 1, "max_bad_batches": max_bad})
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.guard(torch.nn.functional.mse_loss(self.lin(x), y), [f"batch{batch_idx}"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _batches(bad: set[int], n: int = 8) -> list:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        x = torch.randn(4, 3, generator=g)
        if i in bad:
            x[1, 2] = float("nan") if i % 2 else float("inf")
        out.append((x, x.sum(1, keepdim=True)))
    return out


def _fit(module, batches, epochs=1):
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, torch.utils.data.DataLoader(batches, batch_size=None))
    return trainer


def test_nonfinite_batches_are_skipped_counted_and_capped(caplog):
    module = _Regression(max_bad=5)
    with caplog.at_level("WARNING", logger="espnet_distill.train.fault"):
        _fit(module, _batches({2, 5}), epochs=2)
    # 2 bad batches an epoch, skipped: the same weights as training on the 6 good ones alone
    assert module.bad_batches == 4
    good = [b for i, b in enumerate(_batches({2, 5})) if i not in (2, 5)]
    reference = _Regression(max_bad=0)
    _fit(reference, good, epochs=2)
    assert torch.isfinite(module.lin.weight).all()
    assert torch.equal(module.lin.weight, reference.lin.weight)
    assert torch.equal(module.lin.bias, reference.lin.bias)
    warnings = [r.getMessage() for r in caplog.records if r.name == "espnet_distill.train.fault"]
    assert (
        len(warnings) == 4 and "batch skipped (1 of at most 5); utterances: batch2" in warnings[0]
    )
    # past the limit: a clear error, not a model trained on NaN
    with pytest.raises(
        TooManyBadBatches,
        match=r"3 training batches had a NaN/inf loss \(train.max_bad_batches=2\); last one: batch7",
    ):  # noqa: E501
        _fit(_Regression(max_bad=2), _batches({1, 3, 7}))


def _train_cli(data, exp, cfg_file):
    return [
        sys.executable,
        "-m",
        "espnet_distill.bin.train_am",
        "--config",
        str(cfg_file),
        "--train-cuts",
        str(data / "fbank" / "cuts_train-clean-100.jsonl.gz"),
        "--valid-cuts",
        str(data / "fbank" / "cuts_dev-clean.jsonl.gz"),
        "--lang-dir",
        str(data / "lang_bpe_64"),
        "--cmvn",
        str(data / "fbank" / "cmvn.npz"),
        "--exp-dir",
        str(exp),
    ]


def _state(model_file):
    return torch.load(model_file, map_location="cpu", weights_only=False)["state_dict"]


def _greedy_wer(model_file, data) -> float:
    cuts = data / "fbank" / "cuts_dev-clean.jsonl.gz"
    outputs, _ = network_outputs(model_file, cuts, "cpu", 60)
    hyps = decode_all(outputs, GreedyCtc(BpeTokenizer(data / "lang_bpe_64" / "bpe.model")))
    refs = {c.supervisions[0].id: c.supervisions[0].text for c in CutSet.from_file(cuts)}
    return score_corpus(refs, hyps).totals()["err"]


def test_kill_resume_and_determinism(tiny_features, tmp_path):
    """Dropout and SpecAugment on, so the random state after a resume matters."""
    cfg = _config(
        **{
            "train.max_epochs": 2,
            "train.average_best": 1,
            "model.encoder_conf.dropout_rate": 0.1,
            "model.specaug_conf": "{apply_time_warp: false, apply_freq_mask: true, "
            "freq_mask_width_range: [0, 10], num_freq_mask: 1, apply_time_mask: true, "
            "time_mask_width_ratio_range: [0.0, 0.05], num_time_mask: 1}",
        }
    )
    cfg_file = tmp_path / "conf.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    runs = {name: tmp_path / name for name in ("a", "b", "killed")}
    # two 1-thread runs at a time (the machine's two cores): the same thread count in every run,
    # which bit-identical weights need
    threads = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = {**os.environ, **dict.fromkeys(threads, "1")}

    def start(name: str, log: str) -> tuple[subprocess.Popen, Path]:
        cli = _train_cli(tiny_features, runs[name], cfg_file)
        with open(tmp_path / log, "w") as stderr:  # a file: a pipe nobody reads fills up
            proc = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        return proc, tmp_path / log

    def finish(run: tuple[subprocess.Popen, Path]) -> str:
        proc, log = run
        proc.wait()
        assert proc.returncode == 0, log.read_text()[-2000:]
        return log.read_text()

    # kill -9 as soon as the first epoch's checkpoint is there, then rerun the same command
    run_a, (killed, _) = start("a", "a.log"), start("killed", "killed.log")
    exp = runs["killed"]
    last = exp / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed.kill()
    killed.wait()
    assert not (exp / "model.pt").exists(), "killed too late: training had finished"
    epoch_at_kill = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    assert epoch_at_kill == 0
    rerun = start("killed", "rerun.log")
    finish(run_a)
    run_b = start("b", "b.log")
    assert f"resuming from {last}" in finish(rerun)
    finish(run_b)
    # determinism: the same bytes, the same WER
    a, b = runs["a"] / "model.pt", runs["b"] / "model.pt"
    assert a.read_bytes() == b.read_bytes()
    assert _greedy_wer(a, tiny_features) == _greedy_wer(b, tiny_features)
    resumed, uninterrupted = _state(exp / "model.pt"), _state(a)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_feature_job_killed_midway_leaves_nothing_a_rerun_trusts(tiny_features, tmp_path):
    """kill -9 at the third utterance of a feature job: no cut list (the job's 'done' marker) and
    no rejected list are left; the rerun writes both, complete."""
    split = tiny_features / "fbank" / "dev-clean" / "split" / "cuts.1.jsonl.gz"
    out = tmp_path / "fbank"
    code = (
        "import os, signal\nfrom pathlib import Path\nfrom lhotse.cut import MonoCut\n"
        "from espnet_distill.data import features\n"
        "orig, calls = MonoCut.compute_and_store_features, []\n"
        "def dying(self, *a, **k):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 3:\n        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return orig(self, *a, **k)\n"
        "MonoCut.compute_and_store_features = dying\n"
        f"features.extract(Path({str(split)!r}), Path({str(out)!r}), 1)\n"
    )
    out.mkdir()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == -9
    assert (out / "feats.1.lca").exists()  # the partial archive the killed job was writing
    assert not (out / "cuts.1.jsonl.gz").exists() and not (out / "rejected.1.txt").exists()
    r = subprocess.run(
        [sys.executable, "-c", code.replace("== 3", "== -1")], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-1000:]
    assert len(CutSet.from_file(out / "cuts.1.jsonl.gz")) == len(CutSet.from_file(split))
    assert (out / "rejected.1.txt").read_text() == ""
