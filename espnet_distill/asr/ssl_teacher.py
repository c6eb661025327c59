"""The SSL teacher of MVQ-KD and hint KD in asr1 (see :mod:`espnet_distill.kd.codebooks`).

:class:`SslTeacher` is a frozen layer of any checkpoint :func:`load_hubert` reads. Stage 5
(:func:`extract_codebooks`) trains a ``multi_quantization`` quantizer on the layer's frames of a
subset of the training cuts and stores every cut's codebook indexes with lhotse's array storage:
``<out_dir>/indexes_<part>.h5`` and a cut manifest ``<out_dir>/cuts_<part>.jsonl.gz`` whose cuts
carry them as the custom field ``codebook_indexes`` (a 20 ms TemporalArray), as icefall's
``vq_utils.py`` does. Hint KD runs the teacher during training instead: its target layer is a
config option (``model.hint_kd.teacher_layer``), not a stage-5 one.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import torch
import yaml
from lhotse import CutSet
from lhotse.features.io import NumpyHdf5Writer
from multi_quantization import Quantizer

from espnet_distill.data.teacher_frames import (
    CODEBOOK_SIZE,
    FIELD,
    TEACHER_FRAME_SHIFT,
    check_teacher_frames,
)
from espnet_distill.kd.codebooks import relative_reconstruction_error, train_quantizer
from espnet_distill.models.hubert import load_hubert
from espnet_distill.nn import frame_mask
from espnet_distill.utils import atomic_output, atomic_write_text, save_torch

log = logging.getLogger(__name__)


class SslTeacher:
    """Layer ``layer`` (0: the Transformer's input, 1..L: its layers' outputs, as the ssl1 probes
    number them) of a frozen HuBERT-style checkpoint. Kept out of the student's module: not
    trained, not in its checkpoints."""

    def __init__(self, path: Path | str, layer: int) -> None:
        self.path = Path(path)
        self.model = load_hubert(self.path).eval().requires_grad_(False)
        if not 0 <= layer <= self.model.num_layers:
            raise ValueError(
                f"{self.path}: teacher layer {layer} is not in 0..{self.model.num_layers}"
            )
        self.layer = layer
        self.dim = self.model.config["encoder_embed_dim"]

    @torch.no_grad()
    def __call__(
        self, audio: torch.Tensor, lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) 16 kHz audio -> the layer (B, Tt, D), zero past each cut's frames, and the
        frame counts (B,). The teacher follows the audio to its device."""
        self.model.to(audio.device)
        if lens is None:
            lens = torch.full((audio.size(0),), audio.size(1), device=audio.device)
        states, frames = self.model.hidden_states(audio, lens, num_layers=max(self.layer, 1))
        x = states[self.layer]
        return x * frame_mask(x.size(1), frames).unsqueeze(-1), frames


def _cut_audio(cut: object) -> torch.Tensor:
    return torch.from_numpy(cut.load_audio()[0]).float().unsqueeze(0)


def quantizer_frames(teacher: SslTeacher, cuts: CutSet, num_cuts: int, seed: int) -> torch.Tensor:
    """The teacher layer's frames of ``num_cuts`` training cuts drawn with ``seed`` (N, D)."""
    ids = sorted(cuts.ids)
    random.Random(seed).shuffle(ids)
    frames = []
    for cut_id in ids[:num_cuts]:
        x, _ = teacher(_cut_audio(cuts[cut_id]))
        frames.append(x[0])
    return torch.cat(frames)


def load_quantizer(path: Path) -> tuple[Quantizer, dict]:
    """The quantizer :func:`extract_codebooks` saved, and its record (teacher, layer, ...)."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    quantizer = Quantizer(
        dim=blob["dim"], codebook_size=CODEBOOK_SIZE, num_codebooks=blob["num_codebooks"]
    )
    quantizer.load_state_dict(blob["state_dict"])
    return quantizer.eval(), {k: v for k, v in blob.items() if k != "state_dict"}


def extract_codebooks(
    teacher: SslTeacher,
    train_cuts: Path,
    parts: list[Path],
    out_dir: Path,
    num_codebooks: int = 8,
    quantizer_cuts: int = 1000,
    iters_per_phase: int = 10000,
    seed: int = 1234,
) -> dict:
    """Stage 5's teacher codebooks: the quantizer (``quantizer.pt``, trained once on
    ``quantizer_cuts`` cuts of ``train_cuts``), then the indexes of every cut of each manifest in
    ``parts``; each part is written atomically and skipped when it exists (a rerun resumes).
    Returns the summary also written to ``quantizer.yaml``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    quantizer_file = out_dir / "quantizer.pt"
    if not quantizer_file.is_file():
        cuts = CutSet.from_file(train_cuts).to_eager()
        frames = quantizer_frames(teacher, cuts, quantizer_cuts, seed)
        log.info(
            "quantizer: %d frames of %d cuts, %d codebooks of %d, %d steps a phase",
            len(frames),
            min(quantizer_cuts, len(cuts)),
            num_codebooks,
            CODEBOOK_SIZE,
            iters_per_phase,
        )
        quantizer = train_quantizer(frames, num_codebooks, seed, iters_per_phase)
        save_torch(
            {
                "state_dict": quantizer.state_dict(),
                "dim": teacher.dim,
                "num_codebooks": num_codebooks,
                "teacher": str(teacher.path.resolve()),
                "layer": teacher.layer,
                "train_frames": len(frames),
                "relative_error": relative_reconstruction_error(quantizer, frames),
            },
            quantizer_file,
        )
    quantizer, record = load_quantizer(quantizer_file)
    wanted = (str(teacher.path.resolve()), teacher.layer, num_codebooks)
    if (record["teacher"], record["layer"], record["num_codebooks"]) != wanted:
        raise ValueError(
            f"{quantizer_file} quantizes layer {record['layer']} of {record['teacher']} into "
            f"{record['num_codebooks']} codebooks, not layer {teacher.layer} of {wanted[0]} into "
            f"{num_codebooks}: remove it or use another --out-dir"
        )
    for part in parts:
        name = Path(part).name.removesuffix(".jsonl.gz").removeprefix("cuts_")
        manifest = out_dir / f"cuts_{name}.jsonl.gz"
        if manifest.is_file():
            log.info("%s exists: skipping", manifest)
            continue
        cuts = CutSet.from_file(part)
        stored = []
        # the archive is rewritten whole ("w") until its manifest, written last, exists
        with NumpyHdf5Writer(out_dir / f"indexes_{name}.h5", mode="w") as writer:
            for i, cut in enumerate(cuts):
                x, _ = teacher(_cut_audio(cut))
                indexes = quantizer.encode(x[0]).numpy()  # (Tt, C) uint8
                check_teacher_frames(cut.id, len(indexes), cut.num_frames, str(teacher.path))
                array = writer.store_array(
                    cut.id, indexes, frame_shift=TEACHER_FRAME_SHIFT, temporal_dim=0
                )
                stored.append(cut.with_custom(FIELD, array))
                if (i + 1) % 500 == 0:
                    log.info("%s: %d cuts", name, i + 1)
        with atomic_output(manifest) as tmp:
            CutSet.from_cuts(stored).to_file(tmp)
        log.info("%s: codebook indexes of %d cuts", manifest, len(stored))
    summary = {
        "teacher": record["teacher"],
        "layer": record["layer"],
        "num_codebooks": record["num_codebooks"],
        "quantizer_train_frames": record["train_frames"],
        "relative_reconstruction_error": round(record["relative_error"], 4),
    }
    atomic_write_text(out_dir / "quantizer.yaml", yaml.safe_dump(summary, sort_keys=False))
    return summary
