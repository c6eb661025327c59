"""Alignment quality against a TTS engine's own phone timings (festival, flite).

Festival (``utt.save.segs``) and flite (``-psdur``) report where each phone they synthesised ends;
a forced alignment of that audio with its transcript should put the phone boundaries at the same
times. Their English voices use CMU phones (lower case, no stress; ``ax`` for schwa, ``pau`` for
pauses), so the two phone strings are compared after mapping to ARPAbet, aligned by edit distance
(lexicon variants may differ), and only boundaries of phones present in both are scored.

Boundary time convention (Kaldi's CTM): a phone that starts at frame ``i`` starts at ``i * 0.01`` s.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import kaldialign
import numpy as np
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.features.io import LilcomChunkyWriter

from espnet_distill.data.features import fbank_extractor

log = logging.getLogger(__name__)

FESTIVAL_TO_ARPABET = {"ax": "AH"}  # the radio phone set is CMU's, plus schwa and pau
FESTIVAL_PAUSE = "pau"


@dataclass
class PhoneSegment:
    phone: str
    start: float
    end: float


def read_festival_segs(path: Path) -> list[PhoneSegment]:
    """``utt.save.segs`` output (``end_time 100 phone`` lines after a ``#``) -> segments."""
    segments, start, body = [], 0.0, False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() == "#":
            body = True
            continue
        if not body or not line.strip():
            continue
        fields = line.split()
        try:
            end = float(fields[0])
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{n}: expected 'end_time 100 phone', got {line!r}") from None
        if len(fields) != 3 or end < start:
            raise ValueError(
                f"{path}:{n}: expected 'end_time 100 phone' in time order, got {line!r}"
            )
        segments.append(PhoneSegment(fields[2], start, end))
        start = end
    if not segments:
        raise ValueError(f"{path}: no phone segments")
    return segments


def parse_flite_psdur(output: str, source: str = "flite") -> list[PhoneSegment]:
    """flite ``-psdur`` output (``phone:end_time`` items) -> segments."""
    segments, start = [], 0.0
    for item in output.split():
        phone, sep, end_text = item.rpartition(":")
        try:
            end = float(end_text)
        except ValueError:
            end = -1.0
        if not sep or not phone or end < start:
            raise ValueError(
                f"{source}: expected 'phone:end_time' items in time order, got {item!r}"
            )
        segments.append(PhoneSegment(phone, start, end))
        start = end
    if not segments:
        raise ValueError(f"{source}: no phone segments")
    return segments


def tts_to_arpabet(segments: list[PhoneSegment]) -> list[PhoneSegment]:
    """Speech phones only, in ARPAbet (pauses dropped): festival's and flite's phone set."""
    return [
        PhoneSegment(FESTIVAL_TO_ARPABET.get(s.phone, s.phone.upper()), s.start, s.end)
        for s in segments
        if s.phone != FESTIVAL_PAUSE
    ]


def synthesize_flite(
    texts: dict[str, str], out_dir: Path, voice: str = "slt"
) -> dict[str, tuple[Path, list[PhoneSegment]]]:
    """{id: (wav, phone segments)} of flite ``voice`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for uid, text in texts.items():
        wav = out_dir / f"{uid}.wav"
        cmd = ["flite", "-voice", voice, "-psdur", "-t", text, "-o", str(wav)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wav.is_file():
            detail = " ".join(proc.stderr.split())[-300:]
            raise RuntimeError(f"flite (voice {voice}) failed on {uid}: {detail}")
        out[uid] = (wav, parse_flite_psdur(proc.stdout, f"flite -voice {voice} ({uid})"))
    return out


def synthesize_festival(
    texts: dict[str, str], out_dir: Path, voice: str = "kal_diphone"
) -> dict[str, tuple[Path, list[PhoneSegment]]]:
    """One festival run for all sentences: {id: (wav, phone segments)} under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"(voice_{voice})"]
    out = {}
    for uid, text in texts.items():
        wav, segs = out_dir / f"{uid}.wav", out_dir / f"{uid}.segs"
        quoted = text.replace("\\", " ").replace('"', " ")
        lines.append(f'(set! utt (utt.synth (Utterance Text "{quoted}")))')
        lines.append(f'(utt.save.wave utt "{wav}" \'riff)')
        lines.append(f'(utt.save.segs utt "{segs}")')
        out[uid] = (wav, segs)
    with tempfile.NamedTemporaryFile("w", suffix=".scm", dir=out_dir, delete=False) as f:
        f.write("\n".join(lines) + "\n")
        script = Path(f.name)
    try:
        proc = subprocess.run(["festival", "--batch", str(script)], capture_output=True, text=True)
    finally:
        script.unlink()
    missing = [u for u, (w, s) in out.items() if not (w.is_file() and s.is_file())]
    if proc.returncode != 0 or missing:
        detail = " ".join(proc.stderr.split())[-300:]
        raise RuntimeError(
            f"festival (voice {voice}) failed for {len(missing)} of {len(out)} "
            f"sentences, e.g. {missing[:3]}: {detail}"
        )
    return {uid: (wav, read_festival_segs(segs)) for uid, (wav, segs) in out.items()}


@dataclass
class BoundaryComparison:
    errors: np.ndarray  # hypothesis - reference time per scored boundary, seconds
    ref_phones: int
    matched_phones: int


def compare_boundaries(ref: list[PhoneSegment], hyp: list[PhoneSegment]) -> BoundaryComparison:
    """Boundary errors of the phones that the edit-distance alignment of the two strings pairs
    with the same phone. Each boundary is scored once: every matched phone's start, and its end
    where the next reference phone does not start there (before a pause or at the end)."""
    eps = "<eps>"
    pairs = kaldialign.align([s.phone for s in ref], [s.phone for s in hyp], eps)
    errors, i, j, matched = [], 0, 0, 0
    for a, b in pairs:
        if a != eps and b != eps:
            if a == b:
                matched += 1
                r, h = ref[i], hyp[j]
                errors.append(h.start - r.start)
                next_starts_here = i + 1 < len(ref) and ref[i + 1].start == r.end
                if not next_starts_here:
                    errors.append(h.end - r.end)
            i, j = i + 1, j + 1
        elif a != eps:
            i += 1
        else:
            j += 1
    return BoundaryComparison(np.asarray(errors, dtype=np.float64), len(ref), matched)


FRAME_SHIFT = 0.01


def pick_sentences(text_files: list[Path], words: set[str], num: int) -> tuple[dict[str, str], int]:
    """The first ``num`` utterances (each file's sorted by id, the files in order) whose words
    are all in the lexicon; returns them and how many were skipped."""
    chosen, skipped = {}, 0
    for text_file in text_files:
        for line in sorted(text_file.read_text(encoding="utf-8").splitlines()):
            uid, _, text = line.partition(" ")
            if not text.strip() or uid in chosen:
                continue
            if any(w not in words for w in text.split()):
                skipped += 1
                continue
            chosen[uid] = text.strip()
            if len(chosen) == num:
                return chosen, skipped
    return chosen, skipped


def tts_cuts(
    audio: dict[str, tuple[Path, object]], texts: dict[str, str], feats_dir: Path, speaker: str
) -> CutSet:
    """Cuts of the synthesised audio with fbank (one speaker, as the aligner's CMN sees it)."""
    extractor = fbank_extractor()
    cuts = []
    with LilcomChunkyWriter(feats_dir / "feats.lca") as storage:
        for uid, (wav, _) in audio.items():
            rec = Recording.from_file(wav, recording_id=uid)
            sup = SupervisionSegment(uid, uid, 0.0, rec.duration, text=texts[uid], speaker=speaker)
            cut = MonoCut(uid, 0.0, rec.duration, 0, recording=rec, supervisions=[sup])
            cuts.append(cut.compute_and_store_features(extractor, storage))
    return CutSet.from_cuts(cuts)


def plot_cdf(errors_ms: np.ndarray, tolerance_ms: float, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.sort(errors_ms)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x, np.arange(1, len(x) + 1) / len(x))
    ax.axvline(tolerance_ms, color="grey", linestyle="--", label=f"{tolerance_ms:g} ms")
    ax.set_xlim(0, max(100.0, tolerance_ms * 3))
    ax.set_xlabel("|boundary error| (ms)")
    ax.set_ylabel("fraction of boundaries")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
