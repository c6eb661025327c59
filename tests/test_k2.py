"""k2, the optional FSA backend (tools/install_k2.sh builds it; make test does not need it):
its CTC loss and its one-best search over a CTC topology against independent computations."""

from __future__ import annotations

import pytest
import torch

k2 = pytest.importorskip("k2", reason="k2 is not installed (tools/install_k2.sh builds it)")


def _dense(log_probs: torch.Tensor):
    """(T, C) log-probs of one utterance as k2's DenseFsaVec."""
    segments = torch.tensor([[0, 0, log_probs.shape[0]]], dtype=torch.int32)
    return k2.DenseFsaVec(log_probs.unsqueeze(0), segments)


def test_k2_ctc_loss_equals_torch():
    torch.manual_seed(0)
    log_probs = torch.randn(20, 6).log_softmax(-1)
    target = [1, 2, 3, 2]
    expected = torch.nn.functional.ctc_loss(
        log_probs.unsqueeze(1), torch.tensor([target]), [20], [4], reduction="sum"
    )
    graph = k2.ctc_graph([target], modified=False)
    loss = k2.ctc_loss(graph, _dense(log_probs), output_beam=1e10, reduction="sum")
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_one_best_over_the_ctc_topology_is_greedy_decoding():
    """With every token sequence allowed (no LM), the best path is the frame-wise argmax with
    repeats merged and blanks dropped."""
    torch.manual_seed(1)
    log_probs = torch.randn(30, 6).log_softmax(-1)
    lattice = k2.intersect_dense_pruned(k2.ctc_topo(5), _dense(log_probs), 20.0, 8.0, 1, 1000)
    best = k2.shortest_path(lattice, use_double_scores=True)
    frames = log_probs.argmax(-1).tolist()
    greedy = [t for i, t in enumerate(frames) if t != 0 and (i == 0 or t != frames[i - 1])]
    assert best.aux_labels[best.aux_labels > 0].tolist() == greedy
