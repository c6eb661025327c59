"""Synthetic Speech Commands and VoxCeleb1 (espnet_distill/data/synth_kws_sv.py) and their
preparation (espnet_distill/data/kws_sv.py): lhotse's own recipes read the layouts with the
expected counts; splits are speaker-disjoint; trials and clips have the properties the real
corpora have; bad layouts and trial lists are errors naming the item."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet
from lhotse.recipes import prepare_speechcommands
from lhotse.recipes.voxceleb import _prepare_voxceleb_v1

from espnet_distill.data.kws_sv import (
    kws_label,
    prepare_speech_commands,
    prepare_voxceleb1,
    read_trials,
)
from espnet_distill.data.librispeech import CorpusError
from espnet_distill.data.synth_corpus import SAMPLE_RATE, fit_clip
from espnet_distill.data.synth_kws_sv import (
    BACKGROUND_NOISES,
    COMMANDS_SIZES,
    CORE_WORDS,
    KEYWORDS,
    VOX_SIZES,
    background_noise,
    generate_voxceleb1,
)


@pytest.fixture(scope="module")
def corpora(kws_sv_corpora) -> Path:
    return kws_sv_corpora


def test_lhotse_reads_speech_commands_with_the_expected_counts(corpora):
    cfg = COMMANDS_SIZES["tiny"]
    n_train, n_valid, n_test = cfg.speakers
    per_speaker = len(CORE_WORDS) * cfg.core_repetitions + len(KEYWORDS) - len(CORE_WORDS)
    m = prepare_speechcommands("2", corpora / "SpeechCommands")
    sups = {part: list(m[part]["supervisions"]) for part in ("train", "valid", "test")}
    # lhotse puts the background noises in train, except running_tap in valid
    assert len(sups["train"]) == n_train * per_speaker + len(BACKGROUND_NOISES) - 1
    assert len(sups["valid"]) == n_valid * per_speaker + 1
    test_words = n_test * (len(CORE_WORDS) * cfg.core_repetitions + cfg.unknown_per_test_speaker)
    assert len(sups["test"]) == test_words + cfg.silence_clips
    assert Counter(s.text for s in sups["test"])[""] == cfg.silence_clips
    assert {s.text for s in sups["train"]} - {""} == set(KEYWORDS)
    speakers = {part: {s.speaker for s in v} - {None} for part, v in sups.items()}
    assert len(speakers["train"]) == n_train and len(speakers["valid"]) == n_valid
    assert not speakers["train"] & speakers["valid"] and not speakers["train"] & speakers["test"]
    # keyword clips are one second at 16 kHz, with speech in them
    for rec in m["test"]["recordings"]:
        assert rec.sampling_rate == SAMPLE_RATE and rec.num_samples == SAMPLE_RATE
    word = next(r for r in m["valid"]["recordings"] if r.duration == 1.0).load_audio()[0]
    assert np.abs(word).max() > 0.1


def test_lhotse_reads_voxceleb1_and_the_trials_cross_videos(corpora):
    cfg = VOX_SIZES["tiny"]
    root = corpora / "VoxCeleb1"
    m = _prepare_voxceleb_v1(root, 1)
    per_speaker = cfg.videos * cfg.utts_per_video
    train_spk = {s.speaker for s in m["train"]["supervisions"]}
    test_spk = {s.speaker for s in m["test"]["supervisions"]}
    assert (len(train_spk), len(test_spk)) == cfg.speakers and not train_spk & test_spk
    assert len(m["train"]["recordings"]) == cfg.speakers[0] * per_speaker
    assert len(m["test"]["recordings"]) == cfg.speakers[1] * per_speaker
    assert min(r.duration for r in m["test"]["recordings"]) > 2.0
    test_ids = {r.id for r in m["test"]["recordings"]}
    trials = [line.split() for line in (root / "veri_test.txt").read_text().splitlines()]
    labels = Counter(t for t, _, _ in trials)
    assert labels["1"] > 0 and labels["0"] > 0
    for target, enrol, test in trials:
        # lhotse's trial id mapping: id10270/x6uYqmx31kE/00001.wav -> id10270-x6uYqmx31kE-00001
        for wav in (enrol, test):
            assert wav.removesuffix(".wav").replace("/", "-") in test_ids
        same = enrol.split("/")[0] == test.split("/")[0]
        assert same == (target == "1")
        if same:  # target trials pair different videos (channels)
            assert enrol.split("/")[1] != test.split("/")[1]
    iden = [line.split() for line in (root / "iden_split.txt").read_text().splitlines()]
    assert {w.split("/")[0] for _, w in iden} == train_spk
    assert {s for s, _ in iden} == {"1", "2", "3"}


def test_background_noises_have_their_spectra():
    """White noise has a flat spectrum, pink noise one falling 3 dB an octave (slope -1 in
    log power vs log frequency); generation is seeded."""

    def slope(audio: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(audio)) ** 2
        f = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
        band = (f > 50) & (f < 7000)
        return float(np.polyfit(np.log(f[band]), np.log(power[band] + 1e-12), 1)[0])

    white = background_noise("white_noise", 4.0, seed=1)
    pink = background_noise("pink_noise", 4.0, seed=1)
    assert abs(slope(white)) < 0.1 and abs(slope(pink) + 1.0) < 0.1
    assert np.array_equal(pink, background_noise("pink_noise", 4.0, seed=1))
    for name in BACKGROUND_NOISES:
        audio = background_noise(name, 2.0, seed=1)
        assert len(audio) == 2 * SAMPLE_RATE and 0.0 < np.abs(audio).max() <= 0.5
    with pytest.raises(ValueError, match="unknown background noise 'rain'"):
        background_noise("rain", 1.0, seed=1)


def test_fit_clip_places_the_speech_in_one_second():
    rng = np.random.default_rng(0)
    speech = np.concatenate([np.zeros(4000), np.sin(np.arange(6000) / 5.0), np.zeros(9000)])
    clip = fit_clip(speech, 1.0, rng)
    assert len(clip) == SAMPLE_RATE
    loud = np.flatnonzero(np.abs(clip) > 0.5)
    assert loud[-1] - loud[0] >= 5900  # the whole tone, trimmed of its silences, is in the clip
    long = fit_clip(np.ones(3 * SAMPLE_RATE), 1.0, rng)
    assert len(long) == SAMPLE_RATE and long.min() == 1.0


def test_rerun_is_a_no_op(corpora):
    wav = next((corpora / "VoxCeleb1" / "wav").rglob("*.wav"))
    before = wav.stat().st_mtime_ns
    generate_voxceleb1(corpora, "tiny", seed=1234, nj=2)
    assert wav.stat().st_mtime_ns == before
    assert sf.info(wav).samplerate == SAMPLE_RATE


def test_prepare_speech_commands_adds_the_35_word_test_split(corpora, tmp_path):
    cfg = COMMANDS_SIZES["tiny"]
    per_speaker = len(CORE_WORDS) * cfg.core_repetitions + len(KEYWORDS) - len(CORE_WORDS)
    counts = prepare_speech_commands(corpora / "SpeechCommands", tmp_path)
    assert counts["test35"] == cfg.speakers[2] * per_speaker
    test35 = SupervisionSet.from_file(tmp_path / "speechcommands_supervisions_test35.jsonl.gz")
    assert {s.text for s in test35} == set(KEYWORDS)
    train = SupervisionSet.from_file(tmp_path / "speechcommands_supervisions_train.jsonl.gz")
    assert not {s.speaker for s in test35} & {s.speaker for s in train}
    labels = Counter(kws_label(s.text, "12class") for s in train)
    assert set(labels) == {*CORE_WORDS, "_unknown_", "_silence_"}
    assert labels["_silence_"] == len(BACKGROUND_NOISES) - 1
    assert (
        kws_label("marvin", "35class") == "marvin" and kws_label("marvin", "12class") == "_unknown_"
    )


def test_manifests_are_the_same_whatever_the_hash_seed(corpora, tmp_path):
    """lhotse lists the files in a set's order, which follows PYTHONHASHSEED: the written
    manifests are sorted, so two runs give the same bytes (before: other cut ids and another
    training order each run, so kws_sv1 results changed from run to run)."""
    written = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        code = (
            "import sys; from pathlib import Path; from espnet_distill.data.kws_sv import *; "
            "prepare_speech_commands(Path(sys.argv[1]), Path(sys.argv[3])); "
            "prepare_voxceleb1(Path(sys.argv[2]), Path(sys.argv[3]))"
        )
        argv = [sys.executable, "-c", code, corpora / "SpeechCommands", corpora / "VoxCeleb1", out]
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([str(a) for a in argv], env=env, check=True, capture_output=True)
        written.append({f.name: gzip.decompress(f.read_bytes()) for f in out.glob("*.jsonl.gz")})
    assert len(written[0]) == 12 and written[0] == written[1]


def test_prepare_voxceleb1_reads_the_trials(corpora, tmp_path):
    counts = prepare_voxceleb1(corpora / "VoxCeleb1", tmp_path)
    n_lines = len((corpora / "VoxCeleb1" / "veri_test.txt").read_text().splitlines())
    assert counts["trials"] == n_lines and 0 < counts["target_trials"] < n_lines
    test = RecordingSet.from_file(tmp_path / "voxceleb_recordings_test.jsonl.gz")
    trials = read_trials(tmp_path / "voxceleb_trials.txt", set(test.ids))
    assert len(trials) == n_lines and all(a in test.ids and b in test.ids for _, a, b in trials)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_speech_commands_bad_layouts_are_named(corpora, tmp_path):
    root = _copy(corpora / "SpeechCommands", tmp_path / "sc")
    main = root / "speech_commands_v0.02"
    (main / "banana").mkdir()
    with pytest.raises(CorpusError, match=r"unknown keyword folder\(s\) banana \(v0.02 has 35"):
        prepare_speech_commands(root, tmp_path / "out")
    (main / "banana").rmdir()
    lines = (main / "testing_list.txt").read_text().splitlines()
    (main / "testing_list.txt").write_text("\n".join([*lines, "yes/deadbeef_nohash_9.wav"]) + "\n")
    with pytest.raises(
        CorpusError, match=rf"testing_list.txt:{len(lines) + 1} yes/deadbeef_nohash_9"
    ):
        prepare_speech_commands(root, tmp_path / "out")
    shutil.rmtree(root / "speech_commands_test_set_v0.02")
    with pytest.raises(CorpusError, match="speech_commands_test_set_v0.02 missing"):
        prepare_speech_commands(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before the checks pass


def test_voxceleb_trials_naming_missing_utterances_are_errors(corpora, tmp_path):
    root = _copy(corpora / "VoxCeleb1", tmp_path / "vox")
    trials = (root / "veri_test.txt").read_text().splitlines()
    (root / "veri_test.txt").write_text(
        "\n".join([*trials, "1 id10009/nope/00001.wav " + trials[0].split()[1], "1 two"]) + "\n"
    )
    n = len(trials)
    with pytest.raises(
        CorpusError,
        match=rf"2 bad trial line\(s\): .*veri_test.txt:{n + 1}: "
        rf"id10009/nope/00001.wav not in the corpus; .*:{n + 2}: expected",
    ):
        prepare_voxceleb1(root, tmp_path / "out")
    meta = (root / "vox1_meta.csv").read_text().splitlines()
    (root / "vox1_meta.csv").write_text("\n".join(meta[:-1]) + "\n")
    with pytest.raises(
        CorpusError, match=rf"vox1_meta.csv lacks speaker\(s\) {meta[-1].split()[0]}"
    ):
        prepare_voxceleb1(root, tmp_path / "out")
