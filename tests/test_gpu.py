"""GPU paths: training in bf16 mixed precision, and GPU inference agreeing with CPU. Skipped on a
machine without CUDA (the CI machine has none; run them where a GPU is lent)."""

from __future__ import annotations

import pytest
import torch

from espnet_distill.models.acoustic_model import load_model

from .conftest import train_tiny_am
from .test_train import _config, _train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _batch(data):
    from espnet_distill.data.datamodule import make_loader

    loader = make_loader(
        data / "fbank" / "cuts_dev-clean.jsonl.gz", None, 60, train=False, num_workers=0
    )
    return next(iter(loader))


def test_bf16_training_on_gpu_and_inference_matches_cpu(tiny_features, tmp_path):

    cfg = _config(
        **{"train.max_epochs": 2, "train.average_best": 1, "train.precision": "bf16-mixed"}
    )
    model_file = train_tiny_am(cfg, tmp_path / "am", tiny_features, ngpu=1)
    ckpt = torch.load(
        tmp_path / "am" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert ckpt["global_step"] > 0
    assert all(
        torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
    )
    batch = _batch(tiny_features)
    cpu_model, _ = load_model(model_file, "cpu")
    gpu_model, _ = load_model(model_file, "cuda")
    with torch.no_grad():
        lp_cpu, n_cpu = cpu_model.log_probs(batch["feats"], batch["feat_lens"])
        lp_gpu, n_gpu = gpu_model.log_probs(batch["feats"].cuda(), batch["feat_lens"].cuda())
    assert torch.equal(n_cpu, n_gpu.cpu())
    torch.testing.assert_close(lp_gpu.cpu(), lp_cpu, rtol=1e-3, atol=1e-3)


def test_fp32_gpu_training_matches_cpu_training_closely(tiny_features, tmp_path):
    """The same seed and config on CPU and GPU (fp32): the trained weights agree to GPU rounding."""
    cfg = _config(**{"train.max_epochs": 1, "train.average_best": 1})
    cpu_file = _train(tiny_features, tmp_path / "cpu", cfg)

    gpu_file = train_tiny_am(cfg, tmp_path / "gpu", tiny_features, ngpu=1)
    a = torch.load(cpu_file, weights_only=False)["state_dict"]
    b = torch.load(gpu_file, weights_only=False)["state_dict"]
    for k in a:
        if a[k].is_floating_point() and "running_" not in k:
            torch.testing.assert_close(a[k], b[k], rtol=1e-2, atol=1e-3)
