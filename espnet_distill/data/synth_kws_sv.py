"""Offline synthetic keyword-spotting and speaker-verification corpora in the on-disk layouts of
Speech Commands v0.02 and VoxCeleb1, so lhotse's own recipes read them (``prepare_speechcommands``,
and VoxCeleb1's manifests through ``lhotse.recipes.voxceleb``).

Voices, prosody and channels are those of :mod:`espnet_distill.data.synth_corpus` (espeak-ng
voices x variants and flite voices, each with its pitch, rate and sox channel).

Speech Commands (``--corpus speech_commands``)::

    <out>/SpeechCommands/speech_commands_v0.02/<word>/<spk>_nohash_<k>.wav   (35 words, 1 s)
    <out>/SpeechCommands/speech_commands_v0.02/_background_noise_/<noise>.wav
    <out>/SpeechCommands/speech_commands_v0.02/{validation_list,testing_list}.txt
    <out>/SpeechCommands/speech_commands_test_set_v0.02/<word>/<spk>_nohash_<k>.wav  (10 words)
    <out>/SpeechCommands/speech_commands_test_set_v0.02/_unknown_/<word>_<spk>_nohash_<k>.wav
    <out>/SpeechCommands/speech_commands_test_set_v0.02/_silence_/silence_<k>.wav

Every keyword clip is one second with the word at a seeded offset; most clips have one of the six
background noises (synthesised: white, pink, running tap, dishes, exercise bike, miaowing) mixed in
at a seeded SNR. Speakers (8 hex digits, as the real corpus) are disjoint between train,
validation and test.

VoxCeleb1 (``--corpus voxceleb1``)::

    <out>/VoxCeleb1/wav/id1xxxx/<video>/<nnnnn>.wav
    <out>/VoxCeleb1/vox1_meta.csv      (VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set)
    <out>/VoxCeleb1/veri_test.txt      (<1|0> <enrol wav> <test wav>: the test speakers only)
    <out>/VoxCeleb1/iden_split.txt     (<1|2|3> <wav>: train/dev/test of the dev speakers)

A speaker is a voice with its pitch and rate; each of its videos has its own channel (band limits,
equaliser, reverberation, noise), so target trials cross channels as VoxCeleb's do. The trial
speakers ("test" in vox1_meta.csv) never occur in training.

Usage:
    python -m espnet_distill.data.synth_kws_sv --corpus speech_commands --size tiny --out-dir corpus/tiny
    python -m espnet_distill.data.synth_kws_sv --corpus voxceleb1 --size demo --out-dir corpus/demo
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import string
import zlib
from pathlib import Path

import numpy as np

from espnet_distill.data.synth_corpus import (
    SAMPLE_RATE,
    Speaker,
    check_synthesised,
    draw_channel,
    make_speakers,
    run_synthesis,
    start_layout,
    write_audio,
)
from espnet_distill.data.text import FORTUNE_DIR, load_sentences
from espnet_distill.utils import atomic_write_text

log = logging.getLogger(__name__)

# Speech Commands v0.02: the 35 words; the 10 of the 12-class task (+ _unknown_, _silence_)
KEYWORDS = (
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "down",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "go",
    "happy",
    "house",
    "learn",
    "left",
    "marvin",
    "nine",
    "no",
    "off",
    "on",
    "one",
    "right",
    "seven",
    "sheila",
    "six",
    "stop",
    "three",
    "tree",
    "two",
    "up",
    "visual",
    "wow",
    "yes",
    "zero",
)
CORE_WORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
BACKGROUND_NOISES = (
    "doing_the_dishes",
    "dude_miaowing",
    "exercise_bike",
    "pink_noise",
    "running_tap",
    "white_noise",
)
SC_VERSION = "speech_commands_v0.02"
SC_TEST_VERSION = "speech_commands_test_set_v0.02"


@dataclasses.dataclass(frozen=True)
class CommandsSize:
    speakers: tuple[int, int, int]  # train, validation, test
    core_repetitions: int  # clips per speaker of each of the 10 core words (others: 1)
    unknown_per_test_speaker: int  # non-core words per test speaker in the 12-class test set
    silence_clips: int  # _silence_ clips in the 12-class test set
    noise_seconds: float  # length of each _background_noise_ file


@dataclasses.dataclass(frozen=True)
class VoxSize:
    speakers: tuple[int, int]  # dev (training), test (trials)
    videos: int  # per speaker
    utts_per_video: int
    trials_per_utt: int  # target and as many non-target trials per enrolment utterance


COMMANDS_SIZES = {
    "tiny": CommandsSize((4, 2, 2), 1, 3, 4, 10.0),
    "demo": CommandsSize((60, 10, 10), 2, 6, 40, 60.0),
    "full": CommandsSize((120, 20, 20), 3, 10, 80, 60.0),
}
VOX_SIZES = {
    "tiny": VoxSize((6, 4), 2, 2, 2),
    "demo": VoxSize((120, 40), 3, 3, 4),
    "full": VoxSize((200, 40), 4, 4, 8),
}
BACKGROUND_PROBABILITY = 0.8  # of a keyword clip having a background noise
BACKGROUND_SNR_DB = (5.0, 20.0)


def speaker_hash(seed: int, index: int) -> str:
    """8 hex digits, as Speech Commands' speaker ids."""
    return f"{zlib.crc32(f'{seed}-sc-speaker-{index}'.encode()):08x}"


def background_noise(name: str, seconds: float, seed: int) -> np.ndarray:
    """One of the six ``_background_noise_`` recordings, synthesised (seeded, 16 kHz)."""
    rng = np.random.default_rng(zlib.crc32(f"{seed}-{name}".encode()))
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    white = rng.standard_normal(n)

    def coloured(exponent: float) -> np.ndarray:  # power spectrum ~ 1 / f^exponent
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spec[1:] /= f[1:] ** (exponent / 2)
        spec[0] = 0
        out = np.fft.irfft(spec, n)
        return out / out.std()

    def smooth_envelope(rate_hz: float) -> np.ndarray:  # slow random amplitude in [0.2, 1]
        knots = rng.random(int(seconds * rate_hz) + 2)
        env = np.interp(t * rate_hz, np.arange(len(knots)), knots)
        return 0.2 + 0.8 * env

    if name == "white_noise":
        audio = white
    elif name == "pink_noise":
        audio = coloured(1.0)
    elif name == "running_tap":  # band-limited hiss with a slowly varying flow
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spec[(f < 800) | (f > 5000)] *= 0.05
        audio = np.fft.irfft(spec, n) * smooth_envelope(2.0)
    elif name == "doing_the_dishes":  # clatter: decaying resonant clicks over a low rumble
        audio = 0.2 * coloured(2.0)
        for start in rng.integers(0, n - 4000, size=int(seconds * 3)):
            freq, decay = rng.uniform(1500, 6000), rng.uniform(80, 400)
            k = np.arange(4000) / SAMPLE_RATE
            audio[start : start + 4000] += (
                rng.uniform(1, 4) * np.sin(2 * np.pi * freq * k) * np.exp(-decay * k)
            )
    elif name == "exercise_bike":  # periodic whoosh at the pedalling rate plus a hum
        rate = rng.uniform(1.2, 1.8)
        audio = coloured(1.5) * (0.6 + 0.4 * np.sin(2 * np.pi * rate * t)) + 0.3 * np.sin(
            2 * np.pi * 55 * t
        )
    elif name == "dude_miaowing":  # harmonic miaows with gliding pitch, and pauses
        audio = 0.05 * white
        for start in rng.integers(0, max(1, n - SAMPLE_RATE), size=max(1, int(seconds / 3))):
            k = np.arange(int(rng.uniform(0.4, 0.9) * SAMPLE_RATE)) / SAMPLE_RATE
            f0 = rng.uniform(350, 500) * (1 + 0.6 * np.sin(np.pi * k / k[-1]))
            phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
            tone = sum(np.sin(h * phase) / h for h in range(1, 6)) * np.sin(np.pi * k / k[-1])
            audio[start : start + len(k)] += tone
    else:
        raise ValueError(f"unknown background noise '{name}', expected one of {BACKGROUND_NOISES}")
    return 0.5 * audio / np.abs(audio).max()


def plan_speech_commands(
    size: str, seed: int, root: Path
) -> tuple[list[dict], list[Speaker], dict]:
    """Every keyword clip to synthesise (items of :func:`synth_corpus.run_synthesis`), the
    speakers, and the split lists: {"validation": [...], "testing": [...]} (paths relative to the
    v0.02 dir) and the 12-class test set's silence clips."""
    cfg = COMMANDS_SIZES[size]
    speakers = make_speakers(sum(cfg.speakers), seed + 1)  # not the LibriSpeech corpus' speakers
    bounds = np.cumsum((0,) + cfg.speakers)
    split_of = {}
    for split, lo, hi in zip(
        ("train", "validation", "testing"), bounds[:-1], bounds[1:], strict=True
    ):
        split_of.update({i: split for i in range(lo, hi)})
    background_dir = root / SC_VERSION / "_background_noise_"
    rng = random.Random(f"{seed}-speech-commands")
    items, lists = [], {"validation": [], "testing": []}

    def item(index: int, word: str, rel: str) -> dict:
        spk = speakers[index]
        clip_seed = zlib.crc32(f"{seed}-{rel}".encode())
        out = {
            "id": rel,
            "path": rel,
            "speaker": spk.id,
            "text": word,
            "seed": clip_seed,
            "clip_seconds": 1.0,
        }
        if rng.random() < BACKGROUND_PROBABILITY:
            out["background"] = {
                "file": str(background_dir / f"{rng.choice(BACKGROUND_NOISES)}.wav"),
                "snr_db": round(rng.uniform(*BACKGROUND_SNR_DB), 1),
            }
        return out

    for index in range(len(speakers)):
        h = speaker_hash(seed, index)
        for word in KEYWORDS:
            for k in range(cfg.core_repetitions if word in CORE_WORDS else 1):
                rel = f"{word}/{h}_nohash_{k}.wav"
                items.append(item(index, word, f"{SC_VERSION}/{rel}"))
                if split_of[index] != "train":
                    lists[split_of[index]].append(rel)
    # the 12-class test set: the test speakers again (new clips), unknown words, silence
    unknown_words = [w for w in KEYWORDS if w not in CORE_WORDS]
    for index in range(bounds[2], bounds[3]):
        h = speaker_hash(seed, index)
        for word in CORE_WORDS:
            for k in range(cfg.core_repetitions):
                items.append(item(index, word, f"{SC_TEST_VERSION}/{word}/{h}_nohash_{k}.wav"))
        for word in rng.sample(unknown_words, cfg.unknown_per_test_speaker):
            items.append(item(index, word, f"{SC_TEST_VERSION}/_unknown_/{word}_{h}_nohash_0.wav"))
    return items, speakers, lists


def write_silence_clips(root: Path, n: int, seed: int) -> list[str]:
    """The 12-class test set's ``_silence_`` clips: one-second windows of the background noises
    at seeded levels (from near-silent to loud)."""
    import soundfile as sf

    rng = np.random.default_rng(zlib.crc32(f"{seed}-silence".encode()))
    names = []
    for k in range(n):
        noise, _ = sf.read(
            root
            / SC_VERSION
            / "_background_noise_"
            / f"{BACKGROUND_NOISES[k % len(BACKGROUND_NOISES)]}.wav"
        )
        start = int(rng.integers(0, len(noise) - SAMPLE_RATE))
        rel = f"{SC_TEST_VERSION}/_silence_/silence_{k}.wav"
        level = 10 ** rng.uniform(-2.5, 0)
        write_audio(root / rel, noise[start : start + SAMPLE_RATE] * level)
        names.append(rel)
    return names


def generate_speech_commands(
    out: Path, size: str = "tiny", seed: int = 1234, nj: int = 2, cmd: str | None = None
) -> Path:
    """Write (or finish) the Speech Commands layout under ``out/SpeechCommands``; returns it."""
    root = Path(out) / "SpeechCommands"
    done = root / ".done"
    if not start_layout(root, size, COMMANDS_SIZES):
        return root
    cfg = COMMANDS_SIZES[size]
    for name in BACKGROUND_NOISES:
        path = root / SC_VERSION / "_background_noise_" / f"{name}.wav"
        if not path.is_file():
            write_audio(path, background_noise(name, cfg.noise_seconds, seed))
    items, speakers, lists = plan_speech_commands(size, seed, root)
    missing = run_synthesis(
        root, items, speakers, nj, cmd, f"synthesising Speech Commands ({size})"
    )
    check_synthesised(missing, root, "clips")
    silence = write_silence_clips(root, cfg.silence_clips, seed)
    for name, paths in lists.items():
        atomic_write_text(root / SC_VERSION / f"{name}_list.txt", "\n".join(sorted(paths)) + "\n")
    atomic_write_text(
        root / SC_VERSION / "README.md",
        "Synthetic stand-in for Speech Commands v0.02 (espnet_distill.data.synth_kws_sv): "
        f"size {size}, seed {seed}.\n",
    )
    atomic_write_text(done, f"size={size} seed={seed} clips={len(items) + len(silence)}\n")
    return root


def _video_id(seed: int, speaker: int, video: int) -> str:
    rng = random.Random(f"{seed}-video-{speaker}-{video}")
    return "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(11))


def session_speaker(spk: Speaker, session_id: int, seed: int) -> Speaker:
    """``spk``'s voice (TTS voice, pitch, rate) through the channel of one video: band limits,
    equaliser, reverberation and noise drawn anew."""
    rng = random.Random(f"{seed}-session-{session_id}")
    return dataclasses.replace(
        spk,
        id=session_id,
        **draw_channel(rng, [60, 100, 150, 200, 300], [3400, 3800, 5000, 6500, 7600], 10),
    )


def plan_voxceleb1(
    size: str, seed: int, sentences: list[str]
) -> tuple[list[dict], list[Speaker], dict]:
    """Every utterance (items of :func:`synth_corpus.run_synthesis`), the per-video speakers, and
    the meta: {"speakers": [(vox id, gender, set)], "trials": [(target, enrol, test)],
    "iden": [(1|2|3, wav)]}."""
    cfg = VOX_SIZES[size]
    n_dev, n_test = cfg.speakers
    voices = make_speakers(n_dev + n_test, seed + 2)
    rng = random.Random(f"{seed}-voxceleb1")
    pool = list(sentences)
    rng.shuffle(pool)
    cursor = 0
    items, sessions, meta = [], [], {"speakers": [], "trials": [], "iden": []}
    wavs: dict[str, list[tuple[str, str]]] = {}  # speaker -> [(video, wav)]
    for index, voice in enumerate(voices):
        vox_id = f"id{10001 + index}"
        split = "dev" if index < n_dev else "test"
        meta["speakers"].append((vox_id, voice.sex.lower(), split))
        for v in range(cfg.videos):
            video = _video_id(seed, index, v)
            session = session_speaker(voice, 1000 * (index + 1) + v, seed)
            sessions.append(session)
            for u in range(cfg.utts_per_video):
                words: list[str] = []
                while len(words) < 10:  # VoxCeleb segments are >= 3-4 s
                    words += pool[cursor % len(pool)].split()
                    cursor += 1
                rel = f"{vox_id}/{video}/{u + 1:05d}.wav"  # numbered per video, as VoxCeleb
                wavs.setdefault(vox_id, []).append((video, rel))
                items.append(
                    {
                        "id": rel,
                        "path": f"wav/{rel}",
                        "speaker": session.id,
                        "text": " ".join(words),
                        "seed": zlib.crc32(f"{seed}-{rel}".encode()),
                    }
                )
                if split == "dev":  # identification split: the last video's utterances dev/test
                    meta["iden"].append((1 if v < cfg.videos - 1 else 2 + u % 2, rel))
    test_ids = [s for s, _, split in meta["speakers"] if split == "test"]
    trials = set()
    for spk in test_ids:
        others = [s for s in test_ids if s != spk]
        for video, enrol in wavs[spk]:
            cross = [w for v, w in wavs[spk] if v != video] or [
                w for _, w in wavs[spk] if w != enrol
            ]
            for target in rng.sample(cross, min(cfg.trials_per_utt, len(cross))):
                trials.add((1, enrol, target))
            for _ in range(cfg.trials_per_utt):
                trials.add((0, enrol, rng.choice(wavs[rng.choice(others)])[1]))
    meta["trials"] = sorted(trials, key=lambda t: (t[1], t[2]))
    return items, sessions, meta


def generate_voxceleb1(
    out: Path,
    size: str = "tiny",
    seed: int = 1234,
    nj: int = 2,
    cmd: str | None = None,
    fortune_dir: Path = FORTUNE_DIR,
) -> Path:
    """Write (or finish) the VoxCeleb1 layout under ``out/VoxCeleb1``; returns it."""
    root = Path(out) / "VoxCeleb1"
    done = root / ".done"
    if not start_layout(root, size, VOX_SIZES):
        return root
    items, sessions, meta = plan_voxceleb1(size, seed, load_sentences(fortune_dir))
    missing = run_synthesis(root, items, sessions, nj, cmd, f"synthesising VoxCeleb1 ({size})")
    check_synthesised(missing, root, "utterances")
    rows = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    rows += [
        f"{vox}\tSynth_{vox}\t{gender}\tSynthetic\t{split}"
        for vox, gender, split in meta["speakers"]
    ]
    atomic_write_text(root / "vox1_meta.csv", "\n".join(rows) + "\n")
    atomic_write_text(
        root / "veri_test.txt", "".join(f"{t} {a} {b}\n" for t, a, b in meta["trials"])
    )
    atomic_write_text(root / "iden_split.txt", "".join(f"{s} {w}\n" for s, w in meta["iden"]))
    atomic_write_text(
        done, f"size={size} seed={seed} utterances={len(items)} trials={len(meta['trials'])}\n"
    )
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", choices=["speech_commands", "voxceleb1"], required=True)
    parser.add_argument(
        "--out-dir", type=Path, required=True, help="parent of SpeechCommands/ or VoxCeleb1/"
    )
    parser.add_argument("--size", choices=["tiny", "demo", "full"], default="tiny")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    parser.add_argument("--cmd", default=None, help="job runner (default: utils/run.pl)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    generate = generate_speech_commands if args.corpus == "speech_commands" else generate_voxceleb1
    print(generate(args.out_dir, args.size, args.seed, args.nj, args.cmd))


if __name__ == "__main__":
    main()
