"""Tensor helpers that networks, losses and decoders share: length masks and greedy CTC."""

from __future__ import annotations

import torch


def frame_mask(n: int, lens: torch.Tensor) -> torch.Tensor:
    """(B, n) True on each utterance's first ``lens`` frames."""
    return torch.arange(n, device=lens.device)[None, :] < lens[:, None]


def greedy_ctc(log_probs: torch.Tensor, lens: torch.Tensor, blank_id: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. (B, T, V) -> label ids per utt."""
    best = log_probs.argmax(-1)
    out = []
    for seq, n in zip(best, lens.tolist(), strict=True):
        seq = torch.unique_consecutive(seq[:n]).tolist()
        out.append([t for t in seq if t != blank_id])
    return out
