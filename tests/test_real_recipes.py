"""The real-corpus recipes (egs/librispeech/asr1, egs/mini_librispeech/asr1) on a tiny synthetic
stand-in written in each corpus's real layout: stages 1-3 give manifests with the expected counts,
durations and transcripts; a missing split stops stage 1 before any work, naming it; parts join
into one training set (LibriSpeech 960 h); and (slow) the LibriSpeech recipe runs to a WER."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import load_manifest

from espnet_distill.bin import prepare_manifests
from espnet_distill.data.synth_corpus import SIZES

from .conftest import REPO

TINY = dict(zip(("train-clean-100", "dev-clean", "test-clean"),
                (s * u for s, u in zip(SIZES["tiny"].speakers, SIZES["tiny"].utts_per_speaker, strict=True)),
                strict=True))  # fmt: skip


def _layout(tiny_corpus: Path, root: Path, parts: dict[str, str]) -> Path:
    """A LibriSpeech dir whose split ``name`` is a copy of the tiny corpus's split ``source``."""
    ls = root / "LibriSpeech"
    ls.mkdir(parents=True)
    for name, source in parts.items():
        shutil.copytree(tiny_corpus / "LibriSpeech" / source, ls / name)
    return ls


def _recipe(tmp_path: Path, corpus: str) -> Path:
    """egs/<corpus>/asr1 copied to tmp_path/egs (relative links to egs/synth and TEMPLATE hold)."""
    egs = tmp_path / "egs"
    egs.mkdir()
    for name in ("synth", "TEMPLATE"):
        (egs / name).symlink_to(REPO / "egs" / name)
    d = egs / corpus / "asr1"
    shutil.copytree(REPO / "egs" / corpus / "asr1", d, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "exp"))  # fmt: skip
    (egs.parent / "utils").symlink_to(REPO / "utils")
    return d


def _run(d: Path, *args: str, ok: bool = True) -> str:
    env = dict(os.environ, MAIN_ROOT=str(REPO))
    r = subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True)
    assert (r.returncode == 0) == ok, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


SMALL = ["--bpe_vocab_size", "64", "--nj", "2", "--speed_perturb_factors", "", "--num_leaves", "50"]


def _check_manifests(manifests: Path, corpus: Path, expected: dict[str, int]) -> None:
    for part, n in expected.items():
        sups = load_manifest(manifests / f"librispeech_supervisions_{part}.jsonl.gz")
        recs = load_manifest(manifests / f"librispeech_recordings_{part}.jsonl.gz")
        assert len(sups) == n, part
        trans = {}
        for f in (corpus / part).rglob("*.trans.txt"):
            trans.update(line.split(" ", 1) for line in f.read_text().splitlines())
        assert {s.id: s.text for s in sups} == trans, part
        rec = next(iter(recs))
        assert abs(sf.info(rec.sources[0].source).duration - rec.duration) < 1e-3


def test_librispeech_recipe_stages_1_to_3(tiny_corpus, tmp_path):
    corpus = _layout(tiny_corpus, tmp_path / "corpus", {
        "train-clean-100": "train-clean-100", "dev-clean": "dev-clean", "dev-other": "dev-clean",
        "test-clean": "test-clean", "test-other": "test-clean"})  # fmt: skip
    shutil.copy(tiny_corpus / "librispeech-lm-norm.txt.gz", corpus.parent)  # found beside it
    d = _recipe(tmp_path, "librispeech")
    out = _run(d, "--corpus_dir", str(corpus), "--stop_stage", "3", *SMALL)
    expected = {**TINY, "dev-other": TINY["dev-clean"], "test-other": TINY["test-clean"]}
    _check_manifests(d / "data" / "100h" / "manifests", corpus, expected)
    assert (d / "data" / "100h" / "lang_phone" / "L.fst").is_file()
    assert (d / "data" / "100h" / "lang_bpe_64" / "bpe.model").is_file()
    assert "Stage 3" in out
    # the LM text beside the corpus is the word n-gram's (stage 5 reads it)
    lm_line = next(
        line for line in out.splitlines() if "asr.sh" in line and "--word_lm_text" in line
    )
    assert "librispeech-lm-norm.txt.gz" in lm_line


def test_mini_librispeech_recipe_stages_1_to_3_and_transcript_lm(tiny_corpus, tmp_path):
    corpus = _layout(tiny_corpus, tmp_path / "corpus",
                     {"train-clean-5": "train-clean-100", "dev-clean-2": "dev-clean"})  # fmt: skip
    d = _recipe(tmp_path, "mini_librispeech")
    _run(d, "--corpus_dir", str(corpus), "--stop_stage", "3", *SMALL)
    _check_manifests(d / "data" / "manifests", corpus,
                     {"train-clean-5": TINY["train-clean-100"], "dev-clean-2": TINY["dev-clean"]})  # fmt: skip
    # no LM text in the corpus: stage 5's n-gram is trained on the training transcripts
    _run(d, "--corpus_dir", str(corpus), "--stage", "5", "--stop_stage", "5", *SMALL)
    lm_text = (d / "data" / "lm" / "transcripts_train-clean-5.txt").read_text().splitlines()
    train_text = (d / "data" / "train_clean_5" / "text").read_text().splitlines()
    assert lm_text == [line.split(" ", 1)[1] for line in train_text]
    assert (d / "data" / "lm" / "word_3gram.bin").is_file()


def test_missing_split_stops_stage_1_before_any_work(tiny_corpus, tmp_path):
    corpus = _layout(tiny_corpus, tmp_path / "corpus", {
        "train-clean-100": "train-clean-100", "dev-clean": "dev-clean", "test-clean": "test-clean"})  # fmt: skip
    (corpus / "test-other").mkdir()  # present but empty
    d = _recipe(tmp_path, "librispeech")
    out = _run(d, "--corpus_dir", str(corpus), "--stop_stage", "3", *SMALL, ok=False)
    assert "split dev-other missing" in out and "split test-other has no *.trans.txt files" in out
    assert not list((d / "data" / "100h" / "manifests").glob("*.jsonl.gz"))
    assert not (d / "data" / "100h" / "fbank").exists()


def test_parts_join_into_one_training_set(tiny_corpus, tmp_path):
    corpus = tiny_corpus / "LibriSpeech"
    out = tmp_path / "manifests"
    argv = ["--corpus-dir", str(corpus), "--parts", "train-clean-100", "dev-clean",
            "--output-dir", str(out), "--combine", "train-both=train-clean-100,dev-clean"]  # fmt: skip
    assert prepare_manifests.main(argv) == 0
    joined = load_manifest(out / "librispeech_supervisions_train-both.jsonl.gz")
    assert len(joined) == TINY["train-clean-100"] + TINY["dev-clean"]
    assert len(load_manifest(out / "librispeech_recordings_train-both.jsonl.gz")) == len(joined)
    bad = ["--corpus-dir", str(corpus), "--parts", "dev-clean", "--output-dir", str(out),
           "--combine", "x=dev-clean,train-clean-360"]  # fmt: skip
    assert prepare_manifests.main(bad) == 1


@pytest.mark.slow  # about 8 minutes: CI runs it (make test-slow)
def test_librispeech_recipe_to_a_wer_on_the_stand_in(tiny_corpus, tmp_path):
    corpus = _layout(tiny_corpus, tmp_path / "corpus", {
        "train-clean-100": "train-clean-100", "dev-clean": "dev-clean", "dev-other": "dev-clean",
        "test-clean": "test-clean", "test-other": "test-clean"})  # fmt: skip
    with gzip.open(tiny_corpus / "librispeech-lm-norm.txt.gz", "rt") as f:
        (corpus / "librispeech-lm-norm.txt.gz").write_bytes(gzip.compress(f.read().encode()))
    d = _recipe(tmp_path, "librispeech")
    _run(d, "--corpus_dir", str(corpus), *SMALL, "--ngpu", "0", "--mono_subset", "0",
         "--asr_config", "../../synth/asr1/conf/train_conformer_ctc_senone_tiny.yaml",
         "--decode_methods", "greedy tlg")  # fmt: skip
    results = (d / "RESULTS_100h.md").read_text()
    for part in ("dev-clean", "dev-other", "test-clean", "test-other"):
        assert f"decode_{part}_tlg" in results, part
    assert f"Data: {corpus}" in results
