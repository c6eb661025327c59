"""Offline synthetic speech corpus in LibriSpeech's on-disk layout.

Speech comes from espeak-ng (English voices x voice variants) and flite voices, each synthetic
speaker with its own pitch and rate and its own channel made with sox (band limits, a two-band
equaliser, reverberation) plus additive coloured noise at a seeded SNR. test-other, LibriSpeech's
second test set, is here the held-out-engine condition: festival voices that no other split has
(``FESTIVAL_VOICES``), speaking test-clean's held-out sentences through channels drawn alike, so
its WER beside test-clean's says how far a model carries to a voice source it never heard. Text
comes from Debian's fortunes, normalised like LibriSpeech; dev and test sentences are held out of
the training text and of the LM text. The layout is LibriSpeech's, so ``lhotse.recipes.prepare_librispeech`` reads it::

    <out>/LibriSpeech/SPEAKERS.TXT
    <out>/LibriSpeech/<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt
    <out>/LibriSpeech/<split>/<spk>/<chapter>/<spk>-<chapter>-<utt:04d>.flac
    <out>/librispeech-lm-norm.txt.gz        (LM text: every sentence not in dev/test)
    <out>/synth_speakers.json               (the speaker profiles, for reproducibility)

Splits: train-clean-100 (training), dev-clean, test-clean, test-other (held-out engine);
speaker-disjoint.

Usage:
    python -m espnet_distill.data.synth_corpus --size tiny --out-dir corpus/tiny --nj 2
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import logging
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from espnet_distill.data.text import FORTUNE_DIR, load_sentences
from espnet_distill.utils import REPO_ROOT, atomic_output, atomic_write_text

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SPLITS = ("train-clean-100", "dev-clean", "test-clean", "test-other")
ESPEAK_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
FLITE_VOICES = {"kal": "M", "kal16": "M", "awb": "M", "rms": "M", "slt": "F"}
# test-other's voices (Debian festvox-kdlpc16k, festvox-us-slt-hts): ked is a diphone voice no
# training engine has; slt is a speaker flite also voices (clustergen), here through HTS, another
# synthesiser. festival's kal_diphone is left out: it is the diphone set of flite's kal.
FESTIVAL_VOICES = {"ked_diphone": "M", "cmu_us_slt_arctic_hts": "F"}


@dataclasses.dataclass(frozen=True)
class CorpusSize:
    """Speakers per split and utterances per speaker; every size uses the same generator."""

    speakers: tuple[int, int, int, int]  # train, dev, test-clean, test-other (as SPLITS)
    utts_per_speaker: tuple[int, int, int, int]
    held_out_sentences: int  # per held-out sentence pool (dev, test; test-other shares test's)


SIZES = {
    # a few minutes: for tests
    "tiny": CorpusSize((6, 2, 2, 2), (8, 5, 5, 5), 40),
    # about 1 hour of training speech
    "demo": CorpusSize((44, 5, 5, 4), (14, 16, 16, 20), 400),
    # about 10 hours of training speech
    "full": CorpusSize((44, 5, 5, 4), (135, 40, 40, 50), 1000),
}


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a TTS voice, its prosody and its recording channel."""

    id: int
    sex: str
    engine: str  # espeak-ng, flite or festival
    voice: str
    variant: str  # espeak-ng voice variant ('' for flite, festival)
    pitch: float  # espeak-ng -p (0-99), flite mean F0 in Hz, festival: sox pitch shift in cents
    rate: float  # espeak-ng words per minute, flite or festival duration stretch
    highpass_hz: int
    lowpass_hz: int
    eq: tuple[tuple[int, float, float], ...]  # (centre Hz, width in octaves, gain dB)
    reverberance: int  # sox reverb 0-100 (0: no reverb)
    room_scale: int
    snr_db: float
    noise_color: float  # 0 white .. 1 brown


def espeak_variants() -> list[tuple[str, str]]:
    """(variant file name, sex) for every espeak-ng voice variant, sorted."""
    out = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    variants = []
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            sex = fields[2].split("/")[-1] or "M"
            variants.append((fields[4][3:], "F" if sex == "F" else "M"))
    return sorted(set(variants))


def draw_channel(
    rng: random.Random, highpass_hz: list[int], lowpass_hz: list[int], min_snr_db: float
) -> dict:
    """A recording channel's :class:`Speaker` fields: band limits (from the given choices), a
    two-band equaliser, reverberation, and noise of a random colour at min_snr_db..30 dB."""
    return dict(
        highpass_hz=rng.choice(highpass_hz),
        lowpass_hz=rng.choice(lowpass_hz),
        eq=tuple(
            (rng.choice([300, 700, 1200, 2500, 4000]), 1.0, round(rng.uniform(-8, 8), 1))
            for _ in range(2)
        ),
        reverberance=rng.choice([0, 0, 20, 35, 50]),
        room_scale=rng.choice([20, 40, 70]),
        snr_db=round(rng.uniform(min_snr_db, 30), 1),
        noise_color=round(rng.random(), 2),
    )


def make_speakers(n: int, seed: int) -> list[Speaker]:
    """``n`` distinct speaker profiles, the same list for the same seed (prefixes agree)."""
    rng = random.Random(seed)
    variants = espeak_variants()
    voices: list[tuple[str, str, str, str]] = [
        ("flite", v, "", sex) for v, sex in sorted(FLITE_VOICES.items())
    ]
    combos = [(v, var, sex) for v in ESPEAK_VOICES for var, sex in variants]
    rng.shuffle(combos)
    voices += [("espeak-ng", v, var, sex) for v, var, sex in combos]
    # Interleave flite voices among the espeak-ng ones so that every split gets some.
    order = voices[5:]
    for i, v in enumerate(voices[:5]):
        order.insert(min(len(order), 1 + i * 9), v)
    speakers = []
    for i in range(n):
        engine, voice, variant, sex = order[i % len(order)]
        srng = random.Random(f"{seed}-speaker-{i}")
        if engine == "espeak-ng":
            pitch, rate = srng.uniform(25, 75), srng.uniform(135, 185)
        else:
            pitch = srng.uniform(90, 130) if sex == "M" else srng.uniform(150, 210)
            rate = srng.uniform(0.9, 1.15)
        speakers.append(
            Speaker(
                id=100 + 17 * i,
                sex=sex,
                engine=engine,
                voice=voice,
                variant=variant,
                pitch=round(pitch, 1),
                rate=round(rate, 3),
                **draw_channel(srng, [60, 100, 150, 200], [3800, 5000, 6500, 7600], 12),
            )
        )
    return speakers


def held_out_engine_speakers(n: int, seed: int, first_index: int) -> list[Speaker]:
    """``n`` festival speakers (``FESTIVAL_VOICES`` in turn) numbered on from ``first_index``, so
    their ids follow :func:`make_speakers`'s; pitch, rate and channel drawn as theirs are."""
    voices = sorted(FESTIVAL_VOICES.items())
    speakers = []
    for j in range(n):
        i = first_index + j
        voice, sex = voices[j % len(voices)]
        srng = random.Random(f"{seed}-speaker-{i}")
        speakers.append(
            Speaker(
                id=100 + 17 * i,
                sex=sex,
                engine="festival",
                voice=voice,
                variant="",
                pitch=round(srng.uniform(-250, 250)),
                rate=round(srng.uniform(0.9, 1.15), 3),
                **draw_channel(srng, [60, 100, 150, 200], [3800, 5000, 6500, 7600], 12),
            )
        )
    return speakers


def plan_corpus(size: str, seed: int, sentences: list[str]) -> tuple[list[dict], list[str], dict]:
    """Decide every utterance: returns (utterances, LM text sentences, speaker table).

    Dev and test sentences are drawn first from a seeded shuffle and removed from the pool used for
    training utterances and from the LM text, so no test sentence is ever seen in training;
    test-other draws its own utterances from test-clean's sentences.
    """
    cfg = SIZES[size]
    rng = random.Random(seed)
    pool = list(sentences)
    rng.shuffle(pool)
    held = {
        "test-clean": pool[: cfg.held_out_sentences],
        "dev-clean": pool[cfg.held_out_sentences : 2 * cfg.held_out_sentences],
    }
    held["test-other"] = held["test-clean"]
    train_pool = pool[2 * cfg.held_out_sentences :]
    # the festival speakers come after the others, so those are the same as without test-other
    n_spk = sum(cfg.speakers[:3])
    speakers = make_speakers(n_spk, seed) + held_out_engine_speakers(cfg.speakers[3], seed, n_spk)
    # Speaker-disjoint splits: train speakers first, then dev, then test.
    bounds = np.cumsum((0,) + cfg.speakers)
    utts: list[dict] = []
    table = {}
    for split_idx, split in enumerate(SPLITS):
        split_speakers = speakers[bounds[split_idx] : bounds[split_idx + 1]]
        text_pool = train_pool if split == "train-clean-100" else held[split]
        urng = random.Random(f"{seed}-{split}")
        cursor = urng.randrange(len(text_pool))
        for spk in split_speakers:
            table[spk.id] = (spk, split)
            n_utt = cfg.utts_per_speaker[split_idx]
            chapters = (spk.id * 10 + 1, spk.id * 10 + 2)
            for u in range(n_utt):
                n_sent = 1 if urng.random() < 0.5 else 2
                text = " ".join(text_pool[(cursor + k) % len(text_pool)] for k in range(n_sent))
                cursor += n_sent
                chapter = chapters[u % 2]
                utts.append(
                    {
                        "split": split,
                        "speaker": spk.id,
                        "chapter": chapter,
                        "id": f"{spk.id}-{chapter}-{u // 2:04d}",
                        "text": text,
                        "seed": zlib.crc32(f"{seed}-{split}-{spk.id}-{u}".encode()),
                    }
                )
    return utts, train_pool, table


def utt_path(root: Path, utt: dict) -> Path:
    return (
        root
        / "LibriSpeech"
        / utt["split"]
        / str(utt["speaker"])
        / str(utt["chapter"])
        / f"{utt['id']}.flac"
    )


def _tts_command(spk: Speaker, text: str, wav: Path, rng: random.Random) -> list[str]:
    spoken = text.lower()
    if spk.engine == "festival":
        text_file = wav.with_suffix(".txt")  # text2wave reads a file
        text_file.write_text(spoken + "\n")
        stretch = spk.rate * rng.uniform(0.96, 1.04)
        return [
            "text2wave",
            "-eval",
            f"(voice_{spk.voice})",
            "-eval",
            f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
            "-o",
            str(wav),
            str(text_file),
        ]
    if spk.engine == "espeak-ng":
        voice = f"{spk.voice}+{spk.variant}" if spk.variant else spk.voice
        pitch = min(99, max(0, spk.pitch + rng.uniform(-4, 4)))
        rate = spk.rate * rng.uniform(0.95, 1.05)
        return [
            "espeak-ng",
            "-v",
            voice,
            "-p",
            f"{pitch:.0f}",
            "-s",
            f"{rate:.0f}",
            "-w",
            str(wav),
            spoken,
        ]
    f0 = spk.pitch * rng.uniform(0.95, 1.05)
    stretch = spk.rate * rng.uniform(0.96, 1.04)
    return [
        "flite",
        "-voice",
        spk.voice,
        "--setf",
        f"int_f0_target_mean={f0:.0f}",
        "--setf",
        f"duration_stretch={stretch:.3f}",
        "-t",
        spoken,
        "-o",
        str(wav),
    ]


def _channel_effects(spk: Speaker) -> list[str]:
    effects = []
    if spk.engine == "festival":  # festival voices have no pitch option that HTS ones share
        effects += ["pitch", f"{spk.pitch:.0f}"]  # before rate: sox's pitch changes the rate
    effects += ["rate", "-v", str(SAMPLE_RATE), "channels", "1"]
    effects += ["highpass", str(spk.highpass_hz), "lowpass", str(spk.lowpass_hz)]
    for freq, width, gain in spk.eq:
        effects += ["equalizer", str(freq), f"{width}o", str(gain)]
    if spk.reverberance > 0:
        effects += ["reverb", str(spk.reverberance), "50", str(spk.room_scale)]
    effects += ["norm", "-3"]
    return effects


def _coloured_noise(n: int, color: float, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(801) / 801, mode="same")  # remove the random walk's drift
    brown /= brown.std() + 1e-9
    return (1 - color) * white + color * brown


def render(spk: Speaker, text: str, seed: int, workdir: Path) -> np.ndarray:
    """``text`` spoken by ``spk``: TTS -> sox channel -> coloured noise at the speaker's SNR
    (seeded); float64 samples at 16 kHz."""
    rng = random.Random(seed)
    raw, chan = workdir / "raw.wav", workdir / "chan.wav"
    subprocess.run(_tts_command(spk, text, raw, rng), check=True, capture_output=True)
    subprocess.run(
        ["sox", "-R", str(raw), "-b", "16", str(chan), *_channel_effects(spk)],
        check=True,
        capture_output=True,
    )
    audio, sr = sf.read(chan, dtype="float64")
    assert sr == SAMPLE_RATE, f"sox produced {sr} Hz"
    nrng = np.random.default_rng(seed)
    noise = _coloured_noise(len(audio), spk.noise_color, nrng)
    snr_db = spk.snr_db + rng.uniform(-2, 2)
    return audio + scale_to_snr(audio, noise, snr_db)


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled so that signal power / noise power is ``snr_db``."""
    return noise * np.sqrt(np.mean(signal**2) / (np.mean(noise**2) * 10 ** (snr_db / 10) + 1e-20))


def fit_clip(audio: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """The speech of ``audio`` (leading and trailing near-silence trimmed) at a random offset in a
    clip of exactly ``seconds``, zero-padded; longer speech keeps its first ``seconds``
    (Speech Commands' one-second clips)."""
    n = int(round(seconds * SAMPLE_RATE))
    if audio.size:
        loud = np.flatnonzero(np.abs(audio) > 0.1 * np.abs(audio).max())
        if loud.size:
            audio = audio[max(0, loud[0] - 800) : loud[-1] + 800]
    audio = audio[:n]
    clip = np.zeros(n)
    offset = int(rng.integers(0, n - len(audio) + 1))
    clip[offset : offset + len(audio)] = audio
    return clip


def mix_background(
    audio: np.ndarray, noise_file: Path, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """``audio`` plus a random segment of ``noise_file`` (looped if shorter) at ``snr_db``."""
    noise, sr = sf.read(noise_file, dtype="float64")
    if sr != SAMPLE_RATE:
        raise ValueError(f"{noise_file}: {sr} Hz, expected {SAMPLE_RATE}")
    if len(noise) < len(audio):
        noise = np.tile(noise, len(audio) // len(noise) + 1)
    start = int(rng.integers(0, len(noise) - len(audio) + 1))
    return audio + scale_to_snr(audio, noise[start : start + len(audio)], snr_db)


def write_audio(path: Path, audio: np.ndarray) -> float:
    """16-bit FLAC or WAV (by the suffix), peak-limited, written atomically; returns seconds."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    fmt = {".flac": "FLAC", ".wav": "WAV"}[path.suffix]
    with atomic_output(path) as tmp:
        sf.write(tmp, audio.astype(np.float32), SAMPLE_RATE, format=fmt, subtype="PCM_16")
    return len(audio) / SAMPLE_RATE


def synthesize_utterance(spk: Speaker, utt: dict, out: Path, workdir: Path) -> float:
    """One planned item to ``out``: :func:`render`, then, when the item asks, :func:`fit_clip`
    (``clip_seconds``) and :func:`mix_background` (``background``: file and SNR). Returns seconds."""
    audio = render(spk, utt["text"], utt["seed"], workdir)
    rng = np.random.default_rng(utt["seed"] + 1)
    if utt.get("clip_seconds"):
        audio = fit_clip(audio, utt["clip_seconds"], rng)
    if utt.get("background"):
        background = utt["background"]
        audio = mix_background(audio, Path(background["file"]), background["snr_db"], rng)
    return write_audio(out, audio)


def item_path(root: Path, utt: dict) -> Path:
    """Where a planned item goes: its ``path`` under ``root``, else LibriSpeech's layout."""
    return root / utt["path"] if "path" in utt else utt_path(root, utt)


def run_worker(plan_file: Path) -> None:
    """Synthesise the utterances of one job's plan; finished files are skipped (resumable)."""
    header, *utts = [json.loads(line) for line in plan_file.read_text().splitlines()]
    root = Path(header["root"])
    speakers = {
        s["id"]: Speaker(**{**s, "eq": tuple(map(tuple, s["eq"]))}) for s in header["speakers"]
    }
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for utt in utts:
            out = item_path(root, utt)
            if out.is_file():
                continue
            try:
                synthesize_utterance(speakers[utt["speaker"]], utt, out, Path(tmp))
            except (subprocess.CalledProcessError, OSError, RuntimeError, ValueError) as err:
                detail = getattr(err, "stderr", b"") or b""
                print(
                    f"FAILED {utt['id']}: {err} {detail.decode(errors='replace').strip()}",
                    flush=True,
                )
                failed += 1
    print(
        f"synthesised {len(utts) - failed} of {len(utts)} utterances, {failed} failed", flush=True
    )
    if failed:
        sys.exit(1)


def check_tools(*tools: str) -> None:
    """``tools`` (default: espeak-ng, flite and sox) on PATH, else one line saying how to install
    them."""
    for tool in tools or ("espeak-ng", "flite", "sox"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} not found on PATH: run tools/install.sh")


def check_festival_voices() -> None:
    """festival, its text2wave and test-other's voices, else one line saying how to install them."""
    check_tools("festival", "text2wave")
    listed = subprocess.run(
        ["festival", "-b", "(print (voice.list))"], capture_output=True, text=True
    ).stdout
    missing = sorted(set(FESTIVAL_VOICES) - set(listed.strip("()\n ").split()))
    if missing:
        raise FileNotFoundError(
            f"festival voice(s) {', '.join(missing)} (test-other) not installed: run tools/install.sh"
        )


def run_synthesis(
    root: Path,
    utts: list[dict],
    speakers: list[Speaker],
    nj: int = 2,
    cmd: str | None = None,
    desc: str = "synthesising",
) -> int:
    """Synthesise the planned items under ``root`` as ``nj`` jobs through ``cmd`` (run.pl by
    default) with a progress bar over files written; items already on disk are skipped. Returns
    how many items are still missing (their errors are in ``root/synth_jobs/log``)."""
    jobs_dir = root / "synth_jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    header = {"root": str(root.resolve()), "speakers": [dataclasses.asdict(s) for s in speakers]}
    for j in range(nj):
        lines = [json.dumps(header)] + [json.dumps(u) for u in utts[j::nj]]
        (jobs_dir / f"plan.{j + 1}.jsonl").write_text("\n".join(lines) + "\n")
    cmd = cmd or str(REPO_ROOT / "utils" / "run.pl")
    argv = shlex.split(cmd) + [
        f"JOB=1:{nj}",
        str(jobs_dir / "log" / "synth.JOB.log"),
        sys.executable,
        "-m",
        "espnet_distill.data.synth_corpus",
        "worker",
        str(jobs_dir / "plan.JOB.jsonl"),
    ]
    log.info("synthesising %d items with %d jobs: %s", len(utts), nj, shlex.join(argv))
    proc = subprocess.Popen(argv)
    paths = [item_path(root, u) for u in utts]
    with tqdm(total=len(paths), desc=desc, unit="utt") as bar:
        while True:
            finished = proc.poll() is not None
            n_done = sum(p.is_file() for p in paths)
            bar.update(n_done - bar.n)
            if finished:
                break
            time.sleep(1.0)
    return sum(not p.is_file() for p in paths)


def check_synthesised(missing: int, root: Path, what: str) -> None:
    """Fail with one line pointing at the job logs when ``missing`` items were not written."""
    if missing:
        raise RuntimeError(
            f"synthesis of {missing} {what} failed; see {root}/synth_jobs/log/"
            "synth.*.log (rerun to retry only those)"
        )


def _write_layout(root: Path, utts: list[dict], table: dict) -> dict[str, int]:
    """trans.txt files (only utterances whose audio exists) and SPEAKERS.TXT; returns counts."""
    by_chapter: dict[Path, list[str]] = {}
    minutes: dict[int, float] = {}
    missing = 0
    for utt in utts:
        path = utt_path(root, utt)
        if not path.is_file():
            missing += 1
            continue
        by_chapter.setdefault(path.parent, []).append(f"{utt['id']} {utt['text']}")
        minutes[utt["speaker"]] = minutes.get(utt["speaker"], 0.0) + sf.info(path).duration / 60
    for chapter_dir, lines in by_chapter.items():
        name = f"{chapter_dir.parent.name}-{chapter_dir.name}.trans.txt"
        atomic_write_text(chapter_dir / name, "\n".join(sorted(lines)) + "\n")
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for spk_id, (spk, split) in sorted(table.items()):
        name = f"{spk.engine}:{spk.voice}{'+' + spk.variant if spk.variant else ''}"
        rows.append(
            f"{spk_id:<5}| {spk.sex} | {split:<16} | {minutes.get(spk_id, 0):5.2f} | {name}"
        )
    atomic_write_text(root / "LibriSpeech" / "SPEAKERS.TXT", "\n".join(rows) + "\n")
    return {"written": len(utts) - missing, "missing": missing}


def start_layout(root: Path, size: str, sizes: dict) -> bool:
    """Checks ``size`` (a key of ``sizes``) and the TTS tools before a corpus layout is written
    under ``root``; False when ``root/.done`` says it is finished (a rerun does nothing)."""
    if size not in sizes:
        raise ValueError(f"unknown corpus size '{size}', expected one of {sorted(sizes)}")
    done = root / ".done"
    if done.is_file():
        log.info("%s is complete (%s); nothing to do", root, done)
        return False
    check_tools()
    return True


def generate(
    out: Path,
    size: str = "tiny",
    seed: int = 1234,
    nj: int = 2,
    cmd: str | None = None,
    fortune_dir: Path = FORTUNE_DIR,
) -> Path:
    """Generate (or finish) the corpus under ``out``; returns the LibriSpeech dir.

    Synthesis runs as ``nj`` jobs through ``cmd`` (run.pl by default) with a progress bar over
    files written. A finished corpus has ``out/.done``; a rerun resumes where synthesis stopped.
    """
    out = Path(out)
    done = out / ".done"
    if not start_layout(out, size, SIZES):
        return out / "LibriSpeech"
    check_festival_voices()
    sentences = load_sentences(fortune_dir)
    utts, lm_sentences, table = plan_corpus(size, seed, sentences)
    speakers = [spk for spk, _ in table.values()]
    run_synthesis(out, utts, speakers, nj, cmd, f"synthesising {size} corpus")
    counts = _write_layout(out, utts, table)
    check_synthesised(counts["missing"], out, "utterances")
    with gzip.open(out / "librispeech-lm-norm.txt.gz", "wt") as f:
        f.write("\n".join(lm_sentences) + "\n")
    atomic_write_text(
        out / "synth_speakers.json", json.dumps([dataclasses.asdict(s) for s in speakers], indent=1)
    )
    atomic_write_text(done, f"size={size} seed={seed} utterances={counts['written']}\n")
    return out / "LibriSpeech"


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["worker"]:
        run_worker(Path(argv[1]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="corpus root to create")
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    parser.add_argument("--cmd", default=None, help="job runner (default: utils/run.pl)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    generate(args.out_dir, args.size, args.seed, args.nj, args.cmd)


if __name__ == "__main__":
    main()
