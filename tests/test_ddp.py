"""Multi-process data-parallel training (Lightning DDP, gloo on CPU) equals single-process training
at the doubled batch.

lhotse's samplers give process r of N every N-th batch of the one shuffled sequence, and DDP
averages the processes' gradients; so step k of 2 processes sees batches 2k and 2k+1 and applies
the mean of their gradients: exactly one process accumulating the gradients of 2 batches
(``train.accumulate_grad_batches=2``). The weights must agree to float rounding.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from .cli import cli_args, run
from .test_faults import _train_cli
from .test_train import _config


@pytest.mark.timeout(900)
def test_two_cpu_processes_equal_one_process_at_the_doubled_batch(tiny_features, tmp_path):
    # sync_buckets false: the processes deal out the single-process batch sequence (with lhotse's
    # default, each step's batches come from one duration bucket: a different sequence). No
    # dropout: process r's masks are seeded by its own batch numbers, not the single process's.
    # Adam's eps 1e-3 (1e-8 by default): a bias followed by BatchNorm has a gradient of exactly 0
    # but for rounding, which Adam with a tiny eps turns into whole +-lr steps of random sign.
    cfg = _config(
        **{
            "train.max_epochs": 2,
            "train.average_best": 1,
            "train.average_by": "last",
            "train.sync_buckets": False,
            "train.max_duration": 12,
            "model.encoder_conf.dropout_rate": 0.0,
            "model.encoder_conf.positional_dropout_rate": 0.0,
            "optim.eps": 1e-3,
        }
    )
    cfg_file = tmp_path / "conf.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    r = run(
        _train_cli(tiny_features, ddp, cfg_file)
        + cli_args(cpu_procs=2, override="train.limit_train_batches=3")
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in r.stderr
    overrides = ["train.limit_train_batches=6", "train.accumulate_grad_batches=2"]
    r = run(_train_cli(tiny_features, single, cfg_file) + cli_args(override=overrides))
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(ddp / "model.pt", weights_only=False)
    b = torch.load(single / "model.pt", weights_only=False)
    # BatchNorm running statistics are buffers that DDP takes from process 0: parameters only
    params = [
        k for k, v in a["state_dict"].items() if "running_" not in k and "num_batches" not in k
    ]
    assert len(params) > 50
    for k in params:
        # a tenth of one Adam step (lr 1e-4..6e-4 in this warm-up): the all-reduce and the
        # accumulation round differently, and nothing more may differ
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=1e-3, atol=2e-5)
    ckpt_a = torch.load(ddp / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt_b = torch.load(single / "checkpoints" / "last.ckpt", weights_only=False)
    # the same number of optimizer steps (3 an epoch), each one taken by both
    assert ckpt_a["global_step"] == ckpt_b["global_step"] == 6
    assert ckpt_a["optimizer_states"][0]["state"][0]["step"] == 6
    assert ckpt_a["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 6
    assert ckpt_b["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 12
