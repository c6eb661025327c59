"""CTC acoustic model: global CMVN -> SpecAugment -> espnet2 encoder -> espnet2 CTC.

The encoder (Conformer by default) and the CTC layer are espnet2's own modules; this class only
wires them and keeps the CMVN statistics with the weights so that decoding needs no extra files.
"""

from __future__ import annotations

import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.encoder.transformer_encoder import TransformerEncoder
from espnet2.asr.specaug.specaug import SpecAug

ENCODERS = {"conformer": ConformerEncoder, "transformer": TransformerEncoder}


class LightConv2dSubsampling(torch.nn.Module):
    """4x time subsampling with two narrow stride-2 convolutions, then a projection to ``odim``.

    espnet2's Conv2dSubsampling uses ``odim`` channels in both convolutions; at odim=144 that layer
    alone costs more than all Conformer blocks together on a CPU. Narrow convolutions (as icefall's
    Zipformer front-end does) keep most of the benefit at a small fraction of the cost.
    Shapes: (B, T, F), (B,) -> (B, T', odim), (B,) with T' = ((T - 1) // 2 - 1) // 2.
    """

    def __init__(self, idim: int, odim: int, channels: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(1, c1, 3, 2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(c1, c2, 3, 2),
            torch.nn.ReLU(),
        )
        freq = ((idim - 1) // 2 - 1) // 2
        self.out = torch.nn.Sequential(torch.nn.Linear(c2 * freq, odim), torch.nn.LayerNorm(odim))

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x, ((lens - 1) // 2 - 1) // 2


class CtcAcousticModel(torch.nn.Module):
    """Shapes: feats (B, T, F), feat_lens (B,) -> log-probs (B, T', V), out_lens (B,)."""

    def __init__(
        self,
        vocab_size: int,
        input_size: int = 80,
        encoder: str = "conformer",
        encoder_conf: dict | None = None,
        specaug_conf: dict | None = None,
        ctc_dropout: float = 0.0,
        subsampling_conf: dict | None = None,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder '{encoder}', expected one of {sorted(ENCODERS)}")
        self.register_buffer("cmvn_mean", torch.zeros(input_size))
        self.register_buffer("cmvn_std", torch.ones(input_size))
        self.specaug = SpecAug(**specaug_conf) if specaug_conf else None
        encoder_conf = dict(encoder_conf or {})
        # Optional own front-end; then the espnet2 encoder gets input_layer=None (pos. enc. only).
        self.subsampling = None
        if subsampling_conf:
            odim = encoder_conf.get("output_size", 256)
            self.subsampling = LightConv2dSubsampling(
                input_size, odim, tuple(subsampling_conf.get("channels", (16, 32)))
            )
            encoder_conf["input_layer"] = None
            input_size = odim
        self.encoder = ENCODERS[encoder](input_size=input_size, **encoder_conf)
        self.ctc = CTC(
            odim=vocab_size,
            encoder_output_size=self.encoder.output_size(),
            dropout_rate=ctc_dropout,
        )

    def set_cmvn(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.cmvn_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.cmvn_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def encode(
        self, feats: torch.Tensor, feat_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) -> encoder output (B, T', D) and its lengths."""
        mask = (
            torch.arange(feats.size(1), device=feats.device)[None, :] < feat_lens[:, None]
        ).unsqueeze(-1)
        feats = ((feats - self.cmvn_mean) / self.cmvn_std) * mask
        if self.specaug is not None and self.training:
            feats, feat_lens = self.specaug(feats, feat_lens)
        if self.subsampling is not None:
            feats, feat_lens = self.subsampling(feats, feat_lens)
        enc, enc_lens, _ = self.encoder(feats, feat_lens)
        return enc, enc_lens

    def forward(
        self, feats: torch.Tensor, feat_lens: torch.Tensor, ys: torch.Tensor, ys_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC loss (summed over each utterance, averaged over the batch) and the encoder lengths."""
        enc, enc_lens = self.encode(feats, feat_lens)
        loss = self.ctc(enc, enc_lens, ys, ys_lens)
        return loss, enc_lens

    @torch.no_grad()
    def log_probs(
        self, feats: torch.Tensor, feat_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        enc, enc_lens = self.encode(feats, feat_lens)
        return self.ctc.log_softmax(enc), enc_lens


def greedy_ctc(log_probs: torch.Tensor, lens: torch.Tensor, blank_id: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. (B, T, V) -> label ids per utt."""
    best = log_probs.argmax(-1)
    out = []
    for seq, n in zip(best, lens.tolist(), strict=True):
        seq = torch.unique_consecutive(seq[:n]).tolist()
        out.append([t for t in seq if t != blank_id])
    return out
