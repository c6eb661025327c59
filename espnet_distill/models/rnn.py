"""LSTMs over padded batches without packing.

``pack_padded_sequence`` gives each sequence of a batch the result it would have alone, but on
CPU a packed LSTM's backward pass is slow: measured 515-529 ms against 69-92 ms padded for a
2 x 250-frame batch through the ASR probe's 2-layer BiLSTM of 128 (one thread), and it made the
probe's epochs 3-6 minutes long. :func:`lstm_over_lengths` gets the packed result from padded
calls: the forward direction never reads past a sequence's end before its last valid frame, and
the reverse direction reads each sequence reversed within its own length.
"""

from __future__ import annotations

import torch
from torch import nn

from espnet_distill.nn import frame_mask

_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D) ``x`` with each row's first ``lengths[b]`` frames reversed, the rest in place."""
    t = torch.arange(x.size(1), device=x.device)
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(t < lengths, lengths - 1 - t, t)
    return x.gather(1, index[..., None].expand_as(x))


def lstm_over_lengths(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``lstm``'s output over batch-first padded ``x`` (B, T, D) as if each sequence ran alone,
    frames past a sequence's length zero (what packing gives), with ``lstm``'s own parameters;
    ``lengths`` None: all of ``x`` is valid. A dynamically quantized LSTM (int8 weights packed
    out of reach) runs each sequence alone over its own frames."""
    if not isinstance(lstm, nn.LSTM):
        return _each_alone(lstm, x, lengths)
    if not lstm.batch_first or lstm.proj_size:
        raise ValueError("lstm_over_lengths: needs a batch_first LSTM without projections")
    if lengths is None:
        return lstm(x)[0]
    mask = frame_mask(x.size(1), lengths.to(x.device))
    if not lstm.bidirectional:  # padding comes after each sequence's last valid frame
        return lstm(x)[0] * mask[..., None]
    zeros = x.new_zeros(1, x.size(0), lstm.hidden_size)
    names = _PARAMETERS if lstm.bias else _PARAMETERS[:2]
    h = x
    for layer in range(lstm.num_layers):
        directions = []
        for suffix in ("", "_reverse"):
            weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in names]
            inp = reverse_within_lengths(h, lengths) if suffix else h
            out = torch.lstm(
                inp, (zeros, zeros), weights, lstm.bias, 1, 0.0, lstm.training, False, True
            )[0]
            directions.append(reverse_within_lengths(out, lengths) if suffix else out)
        h = torch.cat(directions, -1)
        if lstm.dropout and lstm.training and layer < lstm.num_layers - 1:
            h = nn.functional.dropout(h, lstm.dropout)
    return h * mask[..., None]


def _each_alone(lstm: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    if lengths is None:
        return lstm(x)[0]
    out = x.new_zeros(*x.shape[:2], lstm.hidden_size * (2 if lstm.bidirectional else 1))
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = lstm(x[b : b + 1, :n])[0][0]
    return out
