"""The real-corpus recipes (egs/librispeech/{asr1,ssl1}, egs/mini_librispeech/asr1,
egs/speech_commands/kws_sv1, egs/voxceleb1/kws_sv1) on tiny synthetic stand-ins written in each
corpus's real layout: stages 1-3 give manifests with the expected counts, durations and
transcripts; a missing split stops stage 1 before any work, naming it; parts join into one
training set (LibriSpeech 960 h); and (slow) the LibriSpeech recipe runs on to a WER."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from lhotse import load_manifest

from espnet_distill.bin import prepare_manifests
from espnet_distill.data.synth_corpus import SIZES, SPLITS

from .conftest import copy_recipe, run_recipe

TINY = dict(
    zip(
        SPLITS,
        (
            s * u
            for s, u in zip(SIZES["tiny"].speakers, SIZES["tiny"].utts_per_speaker, strict=True)
        ),
        strict=True,
    )
)


# the parts of a full LibriSpeech layout, each made from the tiny corpus's part of the same kind
LIBRISPEECH_PARTS = {
    "train-clean-100": "train-clean-100",
    "dev-clean": "dev-clean",
    "dev-other": "dev-clean",
    "test-clean": "test-clean",
    "test-other": "test-other",
}


def _layout(tiny_corpus: Path, root: Path, parts: dict[str, str]) -> Path:
    """A LibriSpeech dir whose split ``name`` is a copy of the tiny corpus's split ``source``."""
    ls = root / "LibriSpeech"
    ls.mkdir(parents=True)
    for name, source in parts.items():
        shutil.copytree(tiny_corpus / "LibriSpeech" / source, ls / name)
    return ls


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


def test_mini_librispeech_recipe_stages_1_to_3_and_transcript_lm(tiny_corpus, tmp_path):
    corpus = _layout(
        tiny_corpus,
        tmp_path / "corpus",
        {"train-clean-5": "train-clean-100", "dev-clean-2": "dev-clean"},
    )
    d = copy_recipe(tmp_path, "mini_librispeech")
    small_sp = [*SMALL[:4], *SMALL[-2:]]  # with the recipe's speed perturbation (3 copies)
    run_recipe(d, "--corpus_dir", str(corpus), "--stop_stage", "3", *small_sp)
    _check_manifests(
        d / "data" / "manifests",
        corpus,
        {"train-clean-5": TINY["train-clean-100"], "dev-clean-2": TINY["dev-clean"]},
    )
    # no LM text in the corpus: stage 5's n-gram is trained on the training transcripts, each
    # once, though speed perturbation made three copies of each
    run_recipe(d, "--corpus_dir", str(corpus), "--stage", "5", "--stop_stage", "5", *small_sp)
    lm_text = (d / "data" / "lm" / "transcripts_train-clean-5.txt").read_text().splitlines()
    train_text = (d / "data" / "train_clean_5" / "text").read_text().splitlines()
    assert len(train_text) == 3 * TINY["train-clean-100"]
    sups = load_manifest(
        d / "data" / "manifests" / "librispeech_supervisions_train-clean-5.jsonl.gz"
    )
    assert sorted(lm_text) == sorted(s.text for s in sups)
    assert (d / "data" / "lm" / "word_3gram.bin").is_file()


def test_missing_split_stops_stage_1_before_any_work(tiny_corpus, tmp_path):
    corpus = _layout(
        tiny_corpus,
        tmp_path / "corpus",
        {
            "train-clean-100": "train-clean-100",
            "dev-clean": "dev-clean",
            "test-clean": "test-clean",
        },
    )
    (corpus / "test-other").mkdir()  # present but empty
    d = copy_recipe(tmp_path, "librispeech")
    out = run_recipe(d, "--corpus_dir", str(corpus), "--stop_stage", "3", *SMALL, ok=False)
    assert "split dev-other missing" in out and "split test-other has no *.trans.txt files" in out
    assert not list((d / "data" / "train-clean-100" / "manifests").glob("*.jsonl.gz"))
    assert not (d / "data" / "train-clean-100" / "fbank").exists()


def test_parts_join_into_one_training_set(tiny_corpus, tmp_path):
    corpus = tiny_corpus / "LibriSpeech"
    out = tmp_path / "manifests"
    argv = [
        "--corpus-dir",
        str(corpus),
        "--parts",
        "train-clean-100",
        "dev-clean",
        "--out-dir",
        str(out),
        "--combine",
        "train-both=train-clean-100,dev-clean",
    ]
    assert prepare_manifests.main(argv) == 0
    joined = load_manifest(out / "librispeech_supervisions_train-both.jsonl.gz")
    assert len(joined) == TINY["train-clean-100"] + TINY["dev-clean"]
    assert len(load_manifest(out / "librispeech_recordings_train-both.jsonl.gz")) == len(joined)
    bad = [
        "--corpus-dir",
        str(corpus),
        "--parts",
        "dev-clean",
        "--out-dir",
        str(out),
        "--combine",
        "x=dev-clean,train-clean-360",
    ]
    assert prepare_manifests.main(bad) == 1


@pytest.mark.slow  # about 10 minutes: CI runs it (make test-slow)
def test_librispeech_recipe_stages_1_to_3_then_to_a_wer_on_the_stand_in(tiny_corpus, tmp_path):
    corpus = _layout(tiny_corpus, tmp_path / "corpus", LIBRISPEECH_PARTS)
    shutil.copy(tiny_corpus / "librispeech-lm-norm.txt.gz", corpus.parent)  # found beside it
    d = copy_recipe(tmp_path, "librispeech")
    opts = [
        *SMALL,
        "--ngpu",
        "0",
        "--mono_subset",
        "0",
        "--decode_methods",
        "greedy tlg",
        "--asr_config",
        "../../synth/asr1/conf/train_conformer_ctc_senone_tiny.yaml",
    ]
    out = run_recipe(d, "--corpus_dir", str(corpus), "--stop_stage", "3", *opts)
    expected = {**TINY, "dev-other": TINY["dev-clean"]}
    _check_manifests(d / "data" / "train-clean-100" / "manifests", corpus, expected)
    assert (d / "data" / "train-clean-100" / "lang_phone" / "L.fst").is_file()
    assert (d / "data" / "train-clean-100" / "lang_bpe_64" / "bpe.model").is_file()
    assert "Stage 3" in out
    # the LM text beside the corpus is the word n-gram's (stage 5 reads it)
    lm_line = next(
        line for line in out.splitlines() if "asr.sh" in line and "--word_lm_text" in line
    )
    assert "librispeech-lm-norm.txt.gz" in lm_line

    run_recipe(d, "--corpus_dir", str(corpus), "--stage", "4", *opts)
    results = (d / "RESULTS_train-clean-100.md").read_text()
    for part in ("dev-clean", "dev-other", "test-clean", "test-other"):
        assert f"decode_{part}_tlg" in results, part
    assert f"Data: {corpus}" in results


@pytest.mark.slow  # about 2 minutes
def test_speech_commands_and_voxceleb1_recipes_stages_1_to_3(kws_sv_corpora, tmp_path):
    from .test_recipe_kws_sv import _upstreams

    teacher, student = _upstreams(tmp_path)
    common = [
        "--teacher_ckpt",
        str(teacher),
        "--student_ckpt",
        str(student),
        "--upstream_modes",
        "frozen",
        "--finetune_config",
        "../../synth/kws_sv1/conf/finetune_tiny.yaml",
        "--fbank_baseline",
        "false",  # the tiny kws_sv1 test's
        "--stop_stage",
        "3",
    ]
    d = copy_recipe(tmp_path, "speech_commands", "kws_sv1")
    run_recipe(d, "--corpus_dir", str(kws_sv_corpora / "SpeechCommands"), *common)
    counts = json.loads((d / "data" / "manifests" / "counts.json").read_text())
    assert set(counts) == {"speech_commands"} and counts["speech_commands"]["test"] == 30
    assert (d / "exp" / "finetune" / "distilhubert" / "frozen" / "kws" / "results.json").is_file()
    assert not (d / "exp" / "finetune" / "teacher" / "frozen" / "sv").exists()
    d = copy_recipe(tmp_path, "voxceleb1", "kws_sv1")
    run_recipe(d, "--corpus_dir", str(kws_sv_corpora / "VoxCeleb1"), *common)
    counts = json.loads((d / "data" / "manifests" / "counts.json").read_text())
    assert set(counts) == {"voxceleb1"} and counts["voxceleb1"]["test"] == 16
    assert "eer" in json.loads(
        (d / "exp" / "finetune" / "teacher" / "frozen" / "sv" / "results.json").read_text()
    )
    # the joint set-up needs both corpora: refused before any work
    out = run_recipe(
        d, "--corpus_dir", str(kws_sv_corpora / "VoxCeleb1"), *common, "--setups", "joint", ok=False
    )
    assert "setup joint needs --speech_commands_dir" in out


@pytest.mark.slow  # about 2 minutes
def test_librispeech_ssl_recipe_stages_1_to_3(tiny_corpus, tmp_path):
    corpus = _layout(tiny_corpus, tmp_path / "corpus", LIBRISPEECH_PARTS)
    d = copy_recipe(tmp_path, "librispeech", "ssl1")
    run_recipe(
        d,
        "--corpus_dir",
        str(corpus),
        "--stop_stage",
        "3",
        "--asr_opts",
        f"--corpus_dir {corpus} --train 100 {' '.join(SMALL[:4])} --num_leaves 50",
        "--teacher_config",
        "../../synth/ssl1/conf/hubert_pretrain_tiny.yaml",
        "--num_clusters",
        "20",
        "--train_overrides",
        "train.max_epochs=1 model.hidden=16",
    )
    assert (d / "exp" / "train-clean-100" / "labels" / "labels.npz").is_file()
    assert (d / "exp" / "train-clean-100" / "teacher" / "model.pt").is_file()
    assert (
        len(
            load_manifest(
                d.parent
                / "asr1"
                / "data"
                / "train-clean-100"
                / "manifests"
                / "librispeech_supervisions_train-clean-100.jsonl.gz"
            )
        )
        == TINY["train-clean-100"]
    )
