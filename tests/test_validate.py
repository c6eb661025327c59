"""Data validation: each kind of bad item is named with its reason; --fix keeps exactly the rest."""

from __future__ import annotations

import json
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile as sf
from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet, load_manifest

from espnet_distill.data.validate import Expect, ValidationError, validate_kaldi_dir

SR = 16000


def _wav(path, seconds=1.0, sr=SR, channels=1, subtype="PCM_16", nan=False):
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    if nan:
        x[10, 0] = np.nan
    sf.write(path, x, sr, subtype=subtype)
    return path


def _rec(rid, path, sr=SR, seconds=1.0, channels=1):
    n = int(seconds * sr)
    return Recording.from_dict(
        {
            "id": rid,
            "sources": [{"type": "file", "channels": list(range(channels)), "source": str(path)}],
            "sampling_rate": sr,
            "num_samples": n,
            "duration": n / sr,
            "channel_ids": list(range(channels)),
        }
    )


def _sup(sid, rid, text, start=0.0, duration=1.0):
    return SupervisionSegment(sid, rid, start, duration, channel=0, text=text, speaker="spk1")


@pytest.fixture
def bad_manifests(tmp_path):
    """A manifest pair with one item per problem, and the ids expected to survive."""
    a = tmp_path / "audio"
    a.mkdir()
    recs, sups, expected = [], [], []  # (item, reason)
    for i in range(3):  # clean items
        recs.append(_rec(f"good{i}", _wav(a / f"good{i}.wav")))
        sups.append(_sup(f"good{i}", f"good{i}", "HELLO WORLD"))
    recs.append(_rec("oov", _wav(a / "oov.wav")))
    sups.append(_sup("oov", "oov", "HELLO ZEBRA"))

    def bad(rid, reason, path=None, text="HELLO", **kw):
        recs.append(_rec(rid, path if path is not None else _wav(a / f"{rid}.wav"), **kw))
        sups.append(_sup(rid, rid, text, duration=kw.get("seconds", 1.0)))
        expected.append((rid, reason))  # one line: the recording goes with its utterance

    bad("missing", "audio file missing", path=a / "nowhere.wav")
    (a / "garbage.wav").write_bytes(b"RIFF this is not audio" * 20)
    bad("garbage", "unreadable audio", path=a / "garbage.wav")
    (a / "empty.wav").write_bytes(b"")
    bad("empty", "empty audio file, 0 bytes", path=a / "empty.wav")
    bad("short", "too short: 0.050 s < 0.1 s", path=_wav(a / "short.wav", 0.05), seconds=0.05)
    bad(
        "rate8k",
        "sample rate 8000 in the manifest, expected 16000",
        path=_wav(a / "r8k.wav", sr=8000),
        sr=8000,
    )
    bad(
        "stereo",
        "2 channels in the manifest, expected 1",
        path=_wav(a / "stereo.wav", channels=2),
        channels=2,
    )
    bad("nan", "1 NaN/inf samples", path=_wav(a / "nan.wav", subtype="FLOAT", nan=True))
    bad(
        "truncated",
        "8000 samples in the file, 16000 in the manifest",
        path=_wav(a / "half.wav", 0.5),
    )
    bad("notext", "empty transcript", text="  ")
    bad("mojibake", "transcript is not valid UTF-8", text="CAF\ufffd")
    bad("charset", "characters outside the unit inventory: '4' 'É'", text="CAFÉ 4")
    # a supervision of an unknown recording; one outside its recording; a recording without one
    sups.append(_sup("orphan", "ghost", "HELLO"))
    expected.append(("orphan", "recording ghost is not in"))
    recs.append(_rec("long", _wav(a / "long.wav")))
    sups.append(_sup("long", "long", "HELLO", start=0.5, duration=1.0))
    expected.append(("long", "outside its recording: 0.500-1.500 s of 1.000 s"))
    recs.append(_rec("silent", _wav(a / "silent.wav")))
    expected.append(("silent", "recording has no supervision"))
    d = tmp_path / "manifests"
    d.mkdir()
    RecordingSet.from_recordings(recs).to_file(d / "x_recordings_dev.jsonl.gz")
    # a duplicated supervision id: lhotse's SupervisionSet would keep one silently
    with_dup = [*sups, _sup("good0", "good1", "HELLO")]
    SupervisionSet.from_segments(with_dup).to_file(d / "x_supervisions_dev.jsonl.gz")
    expected.append(("good0", "duplicated supervision id"))
    # the training part whose words are the vocabulary: HELLO WORLD
    RecordingSet.from_recordings(recs[:1]).to_file(d / "x_recordings_train.jsonl.gz")
    SupervisionSet.from_segments(sups[:1]).to_file(d / "x_supervisions_train.jsonl.gz")
    return d, expected


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.validate_data", *map(str, args)],
        capture_output=True,
        text=True,
    )


# the bad manifests' parts, OOVs counted against the training part's words
_DEV_AND_TRAIN = ("--parts", "dev", "train", "--prefix", "x", "--vocab-part", "train")


def test_every_problem_is_named_and_fix_keeps_the_rest(bad_manifests):
    d, expected = bad_manifests
    before = load_manifest(d / "x_supervisions_dev.jsonl.gz")
    r = _run("--manifest-dir", d, *_DEV_AND_TRAIN)
    assert r.returncode == 1 and "rerun with --fix true" in r.stderr.splitlines()[-1]
    # nothing changed without --fix
    assert len(load_manifest(d / "x_supervisions_dev.jsonl.gz")) == len(before)

    r = _run("--manifest-dir", d, *_DEV_AND_TRAIN, "--fix", "true")
    assert r.returncode == 0, r.stderr
    lines = (d / "rejected_dev.txt").read_text().splitlines()
    assert len(lines) == len(expected)
    for item, reason in expected:
        assert any(line.startswith(f"{item}: ") and reason in line for line in lines), (item, lines)
    kept = load_manifest(d / "x_supervisions_dev.jsonl.gz")
    assert sorted(s.id for s in kept) == ["good0", "good1", "good2", "oov"]
    assert sorted(r.id for r in load_manifest(d / "x_recordings_dev.jsonl.gz")) == sorted(
        ["good0", "good1", "good2", "oov"]
    )
    summary = json.loads((d / "validation_dev.json").read_text())
    assert summary["kept"] == 4 and summary["problems"] == len(expected)
    # the counts add up: every supervision line is kept or is one problem ("silent" is the one
    # recording without a supervision line)
    assert summary["utterances"] == summary["kept"] + summary["problems"] - 1
    # reason kinds keep their words and stand-alone numbers become N
    kinds = summary["by_kind"]
    assert kinds["sample rate N in the manifest, expected N"] == 1
    assert kinds["too short: N s < N s"] == 1 and kinds["transcript is not valid UTF-8"] == 1
    # OOV: HELLO ZEBRA and three HELLO WORLD against {HELLO, WORLD}: 1 of 8 words
    assert summary["oov_rate"] == pytest.approx(1 / 8) and summary["oov_top"] == {"ZEBRA": 1}
    # a second run finds nothing left to fix
    r = _run("--manifest-dir", d, "--parts", "dev", "--prefix", "x")
    assert r.returncode == 0, r.stderr


def test_oov_threshold_and_missing_part_are_errors(bad_manifests):
    d, _ = bad_manifests
    r = _run("--manifest-dir", d, *_DEV_AND_TRAIN, "--fix", "true", "--max-oov-rate", "0.1")
    assert r.returncode == 1 and "dev: OOV rate 0.1250 > --max-oov-rate 0.1" in r.stderr
    r = _run("--manifest-dir", d, "--parts", "test", "--prefix", "x")
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == f"validate_data: part test: missing {d}/x_recordings_test.jsonl.gz, {d}/x_supervisions_test.jsonl.gz"
    )


@pytest.fixture
def kaldi_dir(tmp_path):
    a = tmp_path / "audio"
    a.mkdir()
    d = tmp_path / "data"
    d.mkdir()
    utts = ["u1", "u2", "u3", "u4", "u5"]
    for u in utts:
        _wav(a / f"{u}.flac")
    (a / "u4.flac").unlink()  # u4: its pipe names a missing file
    wav = "".join(f"{u} flac -c -d -s {a}/{u}.flac |\n" for u in utts)
    (d / "wav.scp").write_text(wav)
    # text: u3's line is not UTF-8, u2 is listed twice, and the file is unsorted
    (d / "text").write_bytes(
        b"u2 HELLO WORLD\nu1 HELLO\nu2 AGAIN\nu3 CAF\xe9\nu4 HELLO\nu5 HELLO\n"
    )
    (d / "utt2spk").write_text("u1 s1\nu2 s1\nu3 s2\nu4 s2\n")  # u5 has no speaker
    (d / "spk2utt").write_text("s1 u1 u2\ns2 u3 u4\n")
    feats = {u: np.ones((5, 3), np.float32) for u in utts}
    feats["u1"][2, 1] = np.inf
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for u in utts:
            w(u, feats[u])
    return d


def test_kaldi_dir_problems_and_fix(kaldi_dir):
    d = kaldi_dir
    report = validate_kaldi_dir(d, Expect(charset="A-Z' "))
    problems = dict(report.problems)
    assert problems[f"{d}/text"].startswith("not sorted")
    assert problems[f"{d}/text:3"] == "duplicated id u2"
    assert problems[f"{d}/text:4"].startswith("line of u3 is not valid UTF-8")
    assert problems["u1"].startswith("1 NaN/inf feature values")
    assert problems["u3"].startswith("transcript is not valid UTF-8")
    assert problems["u4"].startswith("audio file missing") and "u4.flac" in problems["u4"]
    assert problems["u5"] == f"in text but not in {d}/utt2spk"
    assert "u2" not in problems
    report = validate_kaldi_dir(d, Expect(charset="A-Z' "), fix=True)
    assert report.kept == 1
    assert (d / "text").read_text() == "u2 HELLO WORLD\n"
    assert (d / "utt2spk").read_text() == "u2 s1\n" and (d / "spk2utt").read_text() == "s1 u2\n"
    assert (d / "wav.scp").read_text().startswith("u2 flac") and len(
        (d / "wav.scp").read_text().splitlines()
    ) == 1
    assert (d / ".backup" / "text").read_bytes().startswith(b"u2 HELLO WORLD\nu1")
    assert len((d / "validation.rejected.txt").read_text().splitlines()) == len(report.problems)
    assert not validate_kaldi_dir(d, Expect()).problems  # the fixed dir is clean


def test_not_a_kaldi_dir(tmp_path):
    with pytest.raises(
        ValidationError, match=r"not a Kaldi data dir, missing text, utt2spk, wav.scp or feats.scp"
    ):
        validate_kaldi_dir(tmp_path, Expect())
