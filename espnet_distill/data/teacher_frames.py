"""Frames of an SSL teacher beside the acoustic model's: the frame check and stage 5's codebook
manifests (the data side of :mod:`espnet_distill.kd.codebooks`)."""

from __future__ import annotations

from pathlib import Path

from lhotse import CutSet

TEACHER_FRAME_SHIFT = 0.02  # seconds: HuBERT / wav2vec 2.0's CNN stride of 320 samples at 16 kHz
ENCODER_TO_TEACHER = 2  # 40 ms encoder frames over 20 ms teacher frames
CODEBOOK_SIZE = 256  # one byte per codebook (multi_quantization's trained quantizers)
IGNORE = -100  # codebook index of frames that are not scored (JointCodebookLoss's ignore_index)
FRAME_SLACK = 2  # teacher frames a cut's count may differ from half its feature frames
FIELD = "codebook_indexes"  # the custom field of stage 5's codebook manifests' cuts


def check_teacher_frames(
    cut_id: str, teacher_frames: int, feature_frames: int, source: str
) -> None:
    """ValueError naming ``source`` and the cut unless the teacher has about one frame per two
    10 ms feature frames (within :data:`FRAME_SLACK`)."""
    expected = feature_frames / ENCODER_TO_TEACHER
    if abs(teacher_frames - expected) > FRAME_SLACK:
        raise ValueError(
            f"{source}: {cut_id} has {teacher_frames} teacher frames for {feature_frames} "
            f"feature frames (a 20 ms teacher has about {expected:.0f}): another frame rate or "
            "another cut's audio"
        )


def codebook_table(manifest: Path) -> dict[str, object]:
    """cut id -> its stored codebook indexes (a lhotse TemporalArray; ``.load()`` reads them)."""
    table = {}
    for cut in CutSet.from_file(manifest):
        if not cut.custom or FIELD not in cut.custom:
            raise ValueError(
                f"{manifest}: {cut.id} has no {FIELD} (not a stage-5 codebook manifest)"
            )
        table[cut.id] = cut.custom[FIELD]
    return table
