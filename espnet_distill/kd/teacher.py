"""Frame-level soft labels from a unit LM (the teacher of cross-modal KD).

For one unit, a batch of stage-4 frame targets (B, T) becomes per-frame teacher log-probabilities
(B, T, V): each utterance's frames are collapsed to its unit tokens (silence left out,
:func:`~espnet_distill.kd.units.tokens_of_frames`), the LM predicts every token from the tokens
before it, and every speech frame gets the prediction of the token it belongs to. Silence and
padding frames get no teacher (mask False). The LM is frozen: no gradient reaches it.
"""

from __future__ import annotations

import torch

from espnet_distill.kd.units import tokens_of_frames
from espnet_distill.lm.hf_lm import HfUnitLM
from espnet_distill.lm.unit_lm import UnitLM


class LmTeacher:
    def __init__(self, lm: UnitLM | HfUnitLM, silence: set[int]) -> None:
        self.lm = lm.eval().requires_grad_(False)
        self.silence = silence
        self.num_units = lm.num_units

    @torch.no_grad()
    def __call__(self, frame_targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) unit ids padded with -1 -> teacher log-probs (B, T, V) and mask (B, T)."""
        b, t = frame_targets.shape
        rows, indices = [], []
        for row in frame_targets.cpu().numpy():
            n = int((row >= 0).sum())
            tokens, index = tokens_of_frames(row[:n], self.silence)
            rows.append(torch.from_numpy(tokens))
            full = torch.full((t,), -1, dtype=torch.long)
            full[:n] = torch.from_numpy(index)
            indices.append(full)
        lens = torch.tensor([len(r) for r in rows])
        index = torch.stack(indices).to(frame_targets.device)
        mask = index >= 0
        if int(lens.max()) == 0:
            return frame_targets.new_zeros((b, t, self.num_units), dtype=torch.float), mask
        units = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-1)
        device = next(self.lm.parameters()).device
        log_probs = self.lm.next_unit_log_probs(units.to(device), lens.to(device))  # (B, K, V)
        gathered = torch.gather(
            log_probs.to(frame_targets.device),
            1,
            index.clamp(min=0).unsqueeze(-1).expand(b, t, self.num_units),
        )
        return gathered, mask
