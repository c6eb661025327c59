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
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import kaldialign
import numpy as np
import yaml
from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
from lhotse.features.io import LilcomChunkyWriter

from espnet_distill.align.features import load_align_features
from espnet_distill.align.hmm import phone_segments
from espnet_distill.align.trainer import Aligner, GmmSystem, Lang
from espnet_distill.data.features import fbank_extractor
from espnet_distill.lang.phone_lang import SIL, SPN, base_phone
from espnet_distill.utils import atomic_write_text

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


def evaluate_alignment(
    align_dir: Path,
    lang_dir: Path,
    text: list[Path],
    out_dir: Path,
    num_utts: int = 50,
    engine: str = "festival",
    voice: str | None = None,
    tolerance_ms: float = 20.0,
    nj: int = 2,
) -> dict:
    """The stage-4 triphone system (``align_dir/tri``) aligning ``num_utts`` sentences of the
    Kaldi ``text`` files voiced by a TTS ``engine``, its phone boundaries against the engine's:
    ``out_dir/boundaries.tsv``, ``summary.yaml`` (returned) and the error CDF plot. RuntimeError
    when the engine is missing or fails, ValueError when nothing can be scored."""
    voice = voice or {"festival": "kal_diphone", "flite": "slt"}[engine]
    if shutil.which(engine) is None:
        raise RuntimeError(f"{engine} is not installed (tools/install.sh installs it)")
    lang = Lang.load(lang_dir)
    tri = GmmSystem.load(align_dir / "tri", lang)
    texts, skipped = pick_sentences(text, set(lang.words), num_utts)
    if not texts:
        raise ValueError(
            f"{' '.join(map(str, text))}: no sentence has all its words in the lexicon"
        )
    log.info(
        "%s (%s): %d sentences of %s (%d skipped: words outside the lexicon)",
        engine,
        voice,
        len(texts),
        " ".join(map(str, text)),
        skipped,
    )
    audio_dir = out_dir / "audio"
    synthesize = synthesize_festival if engine == "festival" else synthesize_flite
    audio = synthesize(texts, audio_dir, voice)  # RuntimeError, ValueError: the engine failed
    cuts = tts_cuts(audio, texts, audio_dir, f"{engine}-{voice}")
    feats = load_align_features(cuts)
    utts = {c.id: (lang.word_ids(texts[c.id].split())[0], feats[c.id]) for c in cuts}
    aligner = Aligner(lang, utts, nj=nj)
    alis, *_ = aligner.iteration(tri, True, None, "festival alignment", accumulate=False)

    names = {i: p for p, i in lang.phones.items()}
    rows, all_errors, ref_phones, matched = [], [], 0, 0
    for uid in sorted(alis):
        ref = tts_to_arpabet(audio[uid][1])
        hyp = [
            PhoneSegment(base_phone(names[p]), s * FRAME_SHIFT, e * FRAME_SHIFT)
            for p, s, e in phone_segments(alis[uid].tids, tri.tm)
            if base_phone(names[p]) not in (SIL, SPN)
        ]
        cmp = compare_boundaries(ref, hyp)
        ref_phones += cmp.ref_phones
        matched += cmp.matched_phones
        all_errors.append(cmp.errors)
        rows += [f"{uid}\t{e * 1000:.1f}\n" for e in cmp.errors]  # signed: > 0 is late
    errors_ms = np.concatenate(all_errors) * 1000 if all_errors else np.zeros(0)
    if not len(errors_ms):
        raise ValueError("no boundary could be scored (no utterance aligned)")
    abs_ms = np.abs(errors_ms)
    summary = {
        "engine": engine,
        "voice": voice,
        "utterances": len(alis),
        "not_aligned": len(texts) - len(alis),
        "boundaries": int(len(errors_ms)),
        "tolerance_ms": tolerance_ms,
        # times are multiples of 10 ms or 1 ms: a 1e-6 ms margin keeps 20.000000001 inside
        "within_tolerance": round(float((abs_ms <= tolerance_ms + 1e-6).mean()), 4),
        "median_abs_error_ms": round(float(np.median(abs_ms)), 1),
        "mean_abs_error_ms": round(float(abs_ms.mean()), 1),
        "mean_signed_error_ms": round(float(errors_ms.mean()), 1),
        "phones_matched": round(matched / max(ref_phones, 1), 4),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "boundaries.tsv", "utt\terror_ms\n" + "".join(rows))
    atomic_write_text(out_dir / "summary.yaml", yaml.safe_dump(summary, sort_keys=False))
    plot_cdf(
        abs_ms,
        tolerance_ms,
        out_dir / "boundary_errors.png",
        f"tri alignment vs {engine} {voice}: {summary['within_tolerance']:.1%} "
        f"within {tolerance_ms:g} ms ({len(errors_ms)} boundaries)",
    )
    return summary
