"""LSTMs over padded batches without packing (espnet_distill/models/rnn.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from espnet_distill.models.rnn import lstm_over_lengths, reverse_within_lengths


def test_reverse_within_lengths_reverses_only_the_valid_frames():
    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]).float()[..., None]
    out = reverse_within_lengths(x, torch.tensor([4, 2]))
    assert out[..., 0].tolist() == [[4, 3, 2, 1], [6, 5, 0, 0]]


def _packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 2, "bidirectional": True},
        {"num_layers": 1, "bidirectional": True, "bias": False},
        {"num_layers": 2, "bidirectional": False},
    ],
)
def test_lstm_over_lengths_equals_the_packed_lstm_with_its_gradients(kwargs):
    """Output and every parameter's gradient equal packing's (garbage in the padding changes
    nothing): each sequence as if it ran alone."""
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 4, batch_first=True, **kwargs)
    lengths = torch.tensor([7, 3, 5])
    x = torch.randn(3, 7, 5)
    x_garbage = x.clone()
    for b, n in enumerate(lengths):
        x_garbage[b, n:] = 100.0
    weights = torch.randn(3, 7, 4 * (2 if kwargs["bidirectional"] else 1))
    outputs, grads = [], []
    for run, inp in ((_packed, x), (lstm_over_lengths, x_garbage)):
        lstm.zero_grad()
        out = run(lstm, inp, lengths)
        (out * weights).sum().backward()
        outputs.append(out)
        grads.append({n: p.grad.clone() for n, p in lstm.named_parameters()})
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-6, rtol=1e-5)
    assert outputs[1][1, 3:].abs().max() == 0  # past a sequence's end: zero, as packing gives
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4)
    # one sequence alone, unpadded, gives the same frames
    alone, _ = lstm(x[1:2, :3])
    torch.testing.assert_close(outputs[1][1:2, :3], alone, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(lstm_over_lengths(lstm, x, None), lstm(x)[0])


def test_lstm_over_lengths_refuses_projections():
    lstm = nn.LSTM(5, 4, batch_first=True, proj_size=2)
    with pytest.raises(ValueError, match="without projections"):
        lstm_over_lengths(lstm, torch.zeros(1, 3, 5), torch.tensor([3]))
