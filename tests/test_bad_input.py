"""Bad input: each problem gives a one-line error naming the file, or is skipped and listed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from espnet_distill.data.librispeech import CorpusError, check_corpus_dir, prepare_part


@pytest.fixture
def corpus_copy(tiny_corpus, tmp_path):
    root = tmp_path / "LibriSpeech"
    shutil.copytree(tiny_corpus / "LibriSpeech" / "dev-clean", root / "dev-clean")
    return root


def _trans_files(root):
    return sorted((root / "dev-clean").rglob("*.trans.txt"))


def test_missing_corpus_dir_is_a_one_line_error(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.prepare_manifests", "--corpus-dir", str(tmp_path / "nope"),
         "--parts", "dev-clean", "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1
    assert (
        r.stderr.strip().splitlines()[-1]
        == f"prepare_manifests: corpus dir {tmp_path / 'nope'} does not exist"
    )


def test_missing_split_is_named(corpus_copy):
    with pytest.raises(CorpusError, match=r"split test-clean missing"):
        check_corpus_dir(corpus_copy, ["dev-clean", "test-clean"])


def test_bad_items_are_skipped_counted_and_listed(corpus_copy, tmp_path):
    trans = _trans_files(corpus_copy)
    n_total = sum(len(t.read_text().splitlines()) for t in trans)
    # 1. corrupt audio: the first utterance's FLAC replaced by garbage bytes
    first_line = trans[0].read_text().splitlines()[0]
    corrupt_id = first_line.split()[0]
    corrupt = trans[0].parent / f"{corrupt_id}.flac"
    corrupt.write_bytes(b"this is not a flac file" * 10)
    # 2. empty audio file (0 bytes, e.g. an interrupted copy)
    second_id = trans[0].read_text().splitlines()[1].split()[0]
    empty = trans[0].parent / f"{second_id}.flac"
    empty.write_bytes(b"")
    # 3. empty transcript and 4. a non-UTF-8 line, in the second transcript file
    lines = trans[1].read_bytes().splitlines()
    empty_text_id = lines[0].split()[0].decode()
    lines[0] = lines[0].split()[0]
    lines[1] = lines[1] + b" CAF\xe9"
    trans[1].write_bytes(b"\n".join(lines) + b"\n")

    report = prepare_part(corpus_copy, "dev-clean", tmp_path / "manifests")
    reasons = (tmp_path / "manifests" / "rejected_dev-clean.txt").read_text().splitlines()
    assert report.kept == n_total - 4 and len(report.rejected) == 4 and len(reasons) == 4
    assert any(r.startswith(str(corrupt)) and "unreadable audio" in r for r in reasons)
    assert any(r.startswith(str(empty)) and "empty audio file" in r for r in reasons)
    assert any(
        r.startswith(f"{trans[1]}:1:") and f"empty transcript for {empty_text_id}" in r
        for r in reasons
    )
    assert any(r.startswith(f"{trans[1]}:2:") and "not valid UTF-8" in r for r in reasons)
    # the good items are all in lhotse's manifests
    from lhotse import load_manifest

    sups = load_manifest(tmp_path / "manifests" / "librispeech_supervisions_dev-clean.jsonl.gz")
    assert len(sups) == n_total - 4 and corrupt_id not in {s.id for s in sups}


def test_missing_audio_file_is_listed(corpus_copy, tmp_path):
    trans = _trans_files(corpus_copy)[0]
    utt = trans.read_text().splitlines()[0].split()[0]
    (trans.parent / f"{utt}.flac").unlink()
    report = prepare_part(corpus_copy, "dev-clean", tmp_path / "m")
    assert len(report.rejected) == 1 and "audio file missing" in report.rejected[0][1]


def test_all_items_bad_is_an_error(corpus_copy, tmp_path):
    for flac in corpus_copy.rglob("*.flac"):
        flac.write_bytes(b"junk")
    with pytest.raises(CorpusError, match="no usable utterances"):
        prepare_part(corpus_copy, "dev-clean", tmp_path / "m")


def test_undecodable_audio_is_skipped_in_feature_extraction(tiny_features, tmp_path):
    """Audio that breaks only when decoded (after stage 1) is skipped and listed by stage 2."""
    from lhotse import CutSet

    from espnet_distill.data import features

    cuts = CutSet.from_file(
        tiny_features / "fbank" / "dev-clean" / "split" / "cuts.1.jsonl.gz"
    ).to_eager()
    bad = cuts[0]
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"junk")
    bad.recording.sources[0].source = str(broken)
    out = tmp_path / "fbank"
    (out / "split").mkdir(parents=True)
    cuts.to_file(out / "split" / "cuts.1.jsonl.gz")
    features.extract(out / "split" / "cuts.1.jsonl.gz", out, 1)
    done = CutSet.from_file(out / "cuts.1.jsonl.gz")
    assert len(done) == len(cuts) - 1 and bad.id not in {c.id for c in done}
    rejected = (out / "rejected.1.txt").read_text().splitlines()
    assert len(rejected) == 1 and rejected[0].startswith(f"{broken}: cannot compute features")
