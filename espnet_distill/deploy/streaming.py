"""A unidirectional LSTM student on fixed-size chunks of audio with its state carried over, the
way a device runs it on a live stream.

The CNN front-end needs no state beyond the samples it has not consumed: its frame ``t`` reads
samples ``[t * stride, t * stride + field)`` (stride 320, field 400 for the HuBERT CNN), so each
call runs the CNN over the kept samples plus the new chunk, emits every frame whose window is
complete and keeps the rest; the LSTMs carry their (h, c). With a layer-norm CNN
(``extractor_mode: layer_norm``, normalising each frame alone) the chunked layers equal the
whole-utterance ones (tested). A group-norm CNN (HuBERT Base's and the offline teacher's) has
its first layer normalised over the whole input, which a stream does not have: each call then
normalises over its own samples, an approximation whose agreement
:func:`chunked_agreement` measures.
"""

from __future__ import annotations

import torch
from torch import nn

from espnet_distill.models.hubert import receptive_field
from espnet_distill.models.students import LstmStudent


class StreamingLstm:
    """:class:`LstmStudent` ``student`` (unidirectional) fed chunk by chunk: :meth:`push` takes
    a (S,) chunk and returns the new frames of every layer, [(T_new, D)] * (L + 1)."""

    def __init__(self, student: LstmStudent) -> None:
        if student.config["bidirectional"]:
            raise ValueError(
                "a bidirectional LSTM student reads each utterance from its end too: it cannot "
                "run on a stream (train one with model.bidirectional: false)"
            )
        self.student = student.eval()
        conv = student.config["cnn"]["extractor_conv_layer_config"]
        self.field = receptive_field(student.config["cnn"])
        self.stride = 1
        for _, _, stride in conv:
            self.stride *= stride
        self.pending = torch.zeros(0)
        self.states: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(student.lstms)

    @torch.no_grad()
    def push(self, chunk: torch.Tensor) -> list[torch.Tensor]:
        samples = torch.cat([self.pending, chunk.float()])
        frames = 0 if len(samples) < self.field else (len(samples) - self.field) // self.stride + 1
        if frames == 0:
            self.pending = samples
            width = self.student.config["hidden"]  # every layer's, one direction
            return [torch.zeros(0, width) for _ in range(len(self.student.lstms) + 1)]
        used = (frames - 1) * self.stride + self.field
        x, _ = self.student.feature_extractor(samples[None, :used], None)
        self.pending = samples[frames * self.stride :]
        layers = [self.student.projection(x)]
        for i, lstm in enumerate(self.student.lstms):
            out, self.states[i] = lstm(layers[-1], self.states[i])
            layers.append(out)
        return [layer[0] for layer in layers]


@torch.no_grad()
def chunked_agreement(student: LstmStudent, wave: torch.Tensor, chunk_samples: int) -> dict:
    """``wave`` through :class:`StreamingLstm` in chunks of ``chunk_samples`` against the whole
    utterance at once: the last layer's relative error (||chunked - whole|| / ||whole||) and mean
    per-frame cosine similarity, over the frames both give."""
    stream = StreamingLstm(student)
    pieces = [stream.push(wave[i : i + chunk_samples]) for i in range(0, len(wave), chunk_samples)]
    chunked = torch.cat([p[-1] for p in pieces])
    whole = student.hidden_states(wave[None])[0][-1][0]
    n = min(len(chunked), len(whole))
    a, b = chunked[:n], whole[:n]
    return {
        "frames": n,
        "relative_error": float((a - b).norm() / b.norm()),
        "cosine": float(nn.functional.cosine_similarity(a, b, dim=-1).mean()),
    }
