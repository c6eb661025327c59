"""Distillation from an SSL teacher's layer into the ASR encoder: icefall's MVQ codebook KD
(``distillation_with_hubert.sh``, ``pruned_transducer_stateless6``) and layer-wise hint KD.

MVQ-KD: a teacher layer's frames are quantized into ``num_codebooks`` one-byte codebook indexes
per frame by a ``multi_quantization`` Quantizer (direct-sum codebooks of 256 entries, trained on a
subset of the training frames), and a head on an intermediate encoder layer predicts them (the
codebook cross-entropy of :class:`multi_quantization.JointCodebookLoss`, not joint: one softmax
per codebook). Hint KD regresses the teacher layer itself (DistilHuBERT's L1 - log sigmoid(cos)).

Frame rates. The teacher (HuBERT's CNN: 400-sample receptive field, stride 320) has a 20 ms frame
shift, ``(S - 400) // 320 + 1`` frames for ``S`` samples, about ``T / 2`` for ``T`` 10 ms fbank
frames. The Conformer's subsampling gives 40 ms frames, ``T' = ((T - 1) // 2 - 1) // 2``. As
icefall's ``concat_successive_codebook_indexes``, encoder frame ``j`` predicts teacher frames
``2j`` and ``2j + 1`` (for MVQ: the codebooks of both, ``2 * num_codebooks`` classes); the one to
three teacher frames past ``2T'`` have no encoder frame and are not scored. Encoder frame ``j``
sees fbank frames ``4j .. 4j + 6`` (centred on frame ``4j + 3``, 40j + 30 ms), teacher frames
``2j, 2j + 1`` are centred at 40j + 12.5 and 40j + 32.5 ms: the pairing is off by about one
teacher frame at most (docs/ssl_teacher_kd.md). A teacher whose frame count is not about ``T / 2`` (another frame rate, audio of
another cut) is refused (:func:`~espnet_distill.data.teacher_frames.check_teacher_frames`).
"""

from __future__ import annotations

import logging
import random

import torch
from multi_quantization import JointCodebookLoss, Quantizer, QuantizerTrainer

from espnet_distill.data.teacher_frames import CODEBOOK_SIZE, ENCODER_TO_TEACHER, IGNORE
from espnet_distill.kd.losses import layer_distillation_loss
from espnet_distill.nn import frame_mask

log = logging.getLogger(__name__)


def pair_teacher_frames(
    teacher: torch.Tensor, num_frames: int, lens: torch.Tensor, pad: float | int
) -> torch.Tensor:
    """(B, Tt, C) teacher frames -> (B, num_frames, 2 * C): encoder frame ``j`` gets teacher frames
    ``2j`` and ``2j + 1`` side by side; frames at or past ``lens`` (encoder lengths) and pairs the
    teacher does not reach are ``pad``."""
    b, t, c = teacher.shape
    need = ENCODER_TO_TEACHER * num_frames
    if t < need:
        teacher = torch.nn.functional.pad(teacher, (0, 0, 0, need - t), value=pad)
    paired = teacher[:, :need].reshape(b, num_frames, ENCODER_TO_TEACHER * c)
    beyond = ~frame_mask(num_frames, lens.to(paired.device))
    return paired.masked_fill(beyond.unsqueeze(-1), pad)


class CodebookHead(torch.nn.Module):
    """MVQ-KD's head: an encoder layer (B, T', D) predicts the teacher's codebook indexes of its
    two teacher frames; the loss is the cross-entropy summed over frames and codebooks, per
    utterance (the scale of CTC's loss; icefall adds it with scale 0.1)."""

    def __init__(self, idim: int, num_codebooks: int) -> None:
        super().__init__()
        self.num_codebooks = num_codebooks
        self.loss_net = JointCodebookLoss(
            predictor_channels=idim,
            num_codebooks=ENCODER_TO_TEACHER * num_codebooks,
            codebook_size=CODEBOOK_SIZE,
            is_joint=False,
            reduction="sum",
            ignore_index=IGNORE,
            checkpoint=False,
        )

    def forward(
        self, enc: torch.Tensor, enc_lens: torch.Tensor, indexes: torch.Tensor
    ) -> torch.Tensor:
        """``indexes`` (B, Tt, num_codebooks), :data:`IGNORE` past each cut's frames."""
        if indexes.size(-1) != self.num_codebooks:
            raise ValueError(
                f"model.mvq_kd.num_codebooks is {self.num_codebooks} but the teacher's indexes "
                f"have {indexes.size(-1)} codebooks (stage 5's --kd_num_codebooks)"
            )
        paired = pair_teacher_frames(indexes.long(), enc.size(1), enc_lens, IGNORE)
        return self.loss_net(enc, paired) / enc.size(0)


class HintHead(torch.nn.Module):
    """Hint KD's head: a linear projection of an encoder layer (B, T', D) to the teacher layer of
    its two teacher frames (2 * Dt); L1 - log sigmoid(cos) per teacher frame (DistilHuBERT's
    loss), summed over frames per utterance: the scale of CTC's loss."""

    def __init__(self, idim: int, teacher_dim: int) -> None:
        super().__init__()
        self.teacher_dim = teacher_dim
        self.proj = torch.nn.Linear(idim, ENCODER_TO_TEACHER * teacher_dim)

    def forward(
        self, enc: torch.Tensor, enc_lens: torch.Tensor, teacher: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``teacher`` (B, Tt, Dt), its frames past each cut's zero-filled; returns the loss and
        the mean cosine similarity of the scored frames."""
        b, t, _ = enc.shape
        target = pair_teacher_frames(teacher, t, enc_lens, 0.0)
        mask = frame_mask(t, enc_lens.to(enc.device)).repeat_interleave(ENCODER_TO_TEACHER, dim=1)
        predicted = self.proj(enc).view(b, ENCODER_TO_TEACHER * t, self.teacher_dim)
        target = target.view(b, ENCODER_TO_TEACHER * t, self.teacher_dim)
        mean, cos = layer_distillation_loss(predicted, target, mask)
        scored = mask.sum() / ENCODER_TO_TEACHER  # encoder frames
        return mean * scored / b, cos


def train_quantizer(
    frames: torch.Tensor,
    num_codebooks: int,
    seed: int,
    iters_per_phase: int = 10000,
    batch_frames: int = 512,
) -> Quantizer:
    """A ``multi_quantization`` Quantizer of ``num_codebooks`` bytes per frame trained on
    ``frames`` (N, D), reproducibly: the trainer's Python and torch draws are seeded and the
    minibatches are consecutive slices of the frames in one seeded shuffle (icefall's generator).

    The trainer runs two phases (16-entry codebooks, then pairs of them merged into 256-entry
    ones) of ``iters_per_phase`` steps each; icefall uses 10000 with 512-frame batches."""
    if len(frames) < 2 * batch_frames:
        raise ValueError(
            f"{len(frames)} teacher frames are too few to train a quantizer on "
            f"{batch_frames}-frame batches: use more cuts (--kd_quantizer_cuts)"
        )
    python_state = random.getstate()  # the trainer draws from Python's global generator
    random.seed(seed)
    generator = torch.Generator().manual_seed(seed)
    frames = frames[torch.randperm(len(frames), generator=generator)].float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trainer = QuantizerTrainer(
            dim=frames.size(1),
            bytes_per_frame=num_codebooks,
            device=torch.device("cpu"),
            phase_one_iters=iters_per_phase,
            phase_two_iters=iters_per_phase,
        )
        offset = 0
        while not trainer.done():
            start = offset % (len(frames) + 1 - batch_frames)
            trainer.step(frames[start : start + batch_frames])
            offset += batch_frames
            if trainer.cur_iter % 1000 == 0:
                log.info("quantizer: step %d of %d", trainer.cur_iter, 2 * iters_per_phase)
        quantizer = trainer.get_quantizer()
    random.setstate(python_state)
    return quantizer.eval()


@torch.no_grad()
def relative_reconstruction_error(quantizer: Quantizer, frames: torch.Tensor) -> float:
    """Squared error of the decoded indexes over the frames' variance (0: exact, 1: no better than
    their mean): the quantizer's quality, written beside the indexes."""
    frames = frames.float()
    decoded = quantizer.decode(quantizer.encode(frames, as_bytes=False))
    err = ((decoded - frames) ** 2).sum()
    return float(err / ((frames - frames.mean(0)) ** 2).sum())
