"""Bad input: each problem gives a one-line error naming the file, or is skipped and listed."""

from __future__ import annotations

import os
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
        [
            sys.executable,
            "-m",
            "espnet_distill.bin.prepare_manifests",
            "--corpus-dir",
            str(tmp_path / "nope"),
            "--parts",
            "dev-clean",
            "--out-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
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


def test_audio_without_a_transcript_line_is_listed(corpus_copy, tmp_path):
    """Every audio file found ends up in the manifests or in the rejected list."""
    trans = _trans_files(corpus_copy)[0]
    lines = trans.read_text().splitlines()
    orphan = lines[-1].split()[0]
    trans.write_text("\n".join(lines[:-1]) + "\n")
    n_audio = len(list(corpus_copy.rglob("*.flac")))
    report = prepare_part(corpus_copy, "dev-clean", tmp_path / "m")
    audio = trans.parent / f"{orphan}.flac"
    assert report.rejected == [
        (str(audio), f"{audio}: no transcript line names {orphan} (in {trans.parent}/*.trans.txt)")
    ]
    assert report.kept + len(report.rejected) == n_audio


@pytest.mark.parametrize("where", ["same file", "other chapter"])
def test_duplicated_utterance_id_keeps_the_first_and_names_both_places(
    corpus_copy, tmp_path, where
):
    """lhotse's own check ends in an AssertionError naming neither the id nor the files."""
    trans = _trans_files(corpus_copy)
    line = trans[0].read_text().splitlines()[0]
    target = trans[0] if where == "same file" else trans[1]
    target.write_text(target.read_text() + line + "\n")
    n_lines = len(target.read_text().splitlines())
    report = prepare_part(corpus_copy, "dev-clean", tmp_path / "m")
    utt = line.split()[0]
    assert [r for _, r in report.rejected] == [
        f"{target}:{n_lines}: duplicated utterance id {utt} (first at {trans[0]}:1, which is kept)"
    ]
    from lhotse import load_manifest

    sups = load_manifest(tmp_path / "m" / "librispeech_supervisions_dev-clean.jsonl.gz")
    assert [s.id for s in sups].count(utt) == 1


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


# ------------------------------------------------------------------ the recipe's own entry points
@pytest.fixture
def synth_recipe(tmp_path):
    from .conftest import copy_recipe

    return copy_recipe(tmp_path, "synth")


def _recipe(d, *args):
    from .conftest import REPO

    env = dict(os.environ, MAIN_ROOT=str(REPO))
    return subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--stage", "99"], "Error: --stage 99: the stages of asr.sh are 1..9"),
        (["--stage", "abc"], "Error: --stage abc: the stages of asr.sh are 1..9"),
        (["--stop_stage", "0"], "Error: --stop_stage 0: the stages of asr.sh are 1..9"),
        (
            ["--stage", "3", "--stop_stage", "1"],
            "Error: --stage 3 comes after --stop_stage 1: nothing to run",
        ),
        (["--PATH", "/nonexistent"], "./asr.sh: invalid option --PATH (--help lists the options)"),
        (["--am_dir", "x"], "./asr.sh: invalid option --am_dir (--help lists the options)"),
        (["--corpus_size"], "./run.sh: option --corpus_size needs a value"),
        (
            ["--stage", "3", "extra"],
            "./run.sh: unexpected arguments: extra (options are --name value)",
        ),
    ],
)
def test_bad_options_and_stages_are_one_line_errors_before_any_work(synth_recipe, args, error):
    """Before: exit 0 with "Successfully finished." (--stage 99, 3..1, abc after ten "integer
    expression expected" lines) or a later failure (--PATH, any shell variable, was an option)."""
    r = _recipe(synth_recipe, *args)
    assert r.returncode == 1, r.stdout[-500:]
    assert r.stderr.strip().splitlines()[-1].endswith(error), r.stderr[-500:]
    assert "integer expression expected" not in r.stderr and "Successfully" not in r.stdout
    assert not (synth_recipe / "data").exists()  # nothing started


def test_help_lists_the_declared_options_of_run_sh_and_of_its_engine(synth_recipe):
    r = _recipe(synth_recipe, "--help")
    assert r.returncode == 0, r.stderr
    options = {line.split()[0] for line in r.stdout.splitlines() if line.startswith("  --")}
    assert {"--corpus_size", "--corpus_seed", "--stage", "--test_sets", "--word_lm_text"} <= options
    internal = {
        "--SECONDS",
        "--run_times",
        "--all_sets",
        "--am_dir",
        "--lang_dir",
        "--fbank_dir",
        "--help_message",
        "--demo_opts",
        "--PARSE_OPTIONS_PASS_TO",
    }
    assert not options & internal
    described = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("  --")}
    # continued descriptions are whole
    assert described["--train_parts"].rstrip().endswith("(train_set=train-960)")
    assert described["--word_lm_text"].rstrip().endswith("(corpora without LM text)")
    assert "Options of ./asr.sh" in r.stdout and "stage engine of every ASR recipe" not in r.stdout


def test_librispeech_run_sh_says_which_engine_options_it_fixes_and_that_later_ones_win(tmp_path):
    from .conftest import copy_recipe

    d = copy_recipe(tmp_path, "librispeech")
    r = _recipe(d, "--help")
    assert r.returncode == 0, r.stderr
    header = r.stdout.split("Options:")[0]
    assert "--nj 8" in header and "dev-other test-clean test-other" in header
    assert "overrides them" in header


def test_a_stage_whose_inputs_are_missing_names_the_stage_that_makes_them(synth_recipe):
    """Before: FileNotFoundError: ... librispeech_recordings_train-clean-100.jsonl.gz."""
    r = _recipe(synth_recipe, "--corpus_size", "tiny", "--stage", "2")
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "Error: data/tiny/manifests/librispeech_recordings_train-clean-100.jsonl.gz does not exist:"
            " stage 1 makes it (run from --stage 1)"
        )
    ), r.stderr[-1000:]
    assert "Traceback" not in r.stderr
    for stage, missing, maker in (
        ("4", "data/tiny/fbank/cuts_train-clean-100.jsonl.gz", 2),
        ("6", "data/tiny/fbank/cuts_train-clean-100.jsonl.gz", 2),
        ("8", "exp/tiny/am_train_conformer_ctc_senone_tiny/model.pt", 6),
        ("9", "data/tiny/test_clean/text", 2),
    ):
        r = _recipe(synth_recipe, "--corpus_size", "tiny", "--stage", stage)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 1 and last.endswith(
            f"Error: {missing} does not exist: stage {maker} makes it (run from --stage {maker})"
        ), (stage, r.stderr[-1000:])


def test_more_gpus_than_the_machine_has_is_refused_before_stage_1(synth_recipe):
    """Before: stages 1-5 ran, then stage 6 failed with Lightning's MisconfigurationException."""
    import re

    r = _recipe(synth_recipe, "--corpus_size", "tiny", "--ngpu", "99")
    assert r.returncode == 1
    assert re.search(
        r"Error: --ngpu 99, but torch sees \d+ GPU\(s\) here: give --ngpu \d+ "
        r"\(0 trains on the CPU\)$",
        r.stderr.strip().splitlines()[-1],
    ), r.stderr[-500:]
    assert not (synth_recipe / "data").exists() and not (synth_recipe / "corpus").exists()
    r = _recipe(synth_recipe, "--corpus_size", "tiny", "--ngpu", "one")
    assert r.returncode == 1 and r.stderr.strip().endswith(
        "Error: --ngpu one: expected a number of GPUs (0: the CPU)"
    )


@pytest.mark.parametrize(
    ("task", "own"),
    [
        ("asr1", "train.max_epochs=2 train.average_best=1"),
        ("ssl1", "train.max_epochs=2 model.hidden=16"),
    ],
)
def test_command_line_overrides_are_added_to_the_recipes_own(tmp_path, task, own):
    """Before: --train_overrides replaced run.sh's own for the corpus size (the full corpus's
    2 epochs, the tiny teacher's width) instead of adding to them."""
    from .conftest import copy_recipe

    d = copy_recipe(tmp_path, "synth", task)
    size = "full" if task == "asr1" else "tiny"
    # an invalid stop stage: the engine prints the command line it was given, then stops
    r = _recipe(d, "--corpus_size", size, "--train_overrides", "train.seed=7", "--stop_stage", "0")
    assert r.returncode == 1
    assert f"--train_overrides {own} train.seed=7 " in r.stdout, r.stdout[:2000]


def test_fine_tuning_fbank_is_a_one_line_error(tmp_path):
    """FBANK (the features alone) has no weights to fine-tune: said before any data is read."""
    r = subprocess.run(
        [sys.executable, "-m", "espnet_distill.bin.fine_tune_kws_sv", "--upstream", "fbank"]
        + ["--tasks", "kws", "--freeze", "false", "--manifest-dir", str(tmp_path)]
        + ["--exp-dir", str(tmp_path / "exp"), "--config", str(tmp_path / "finetune.yaml")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "fine_tune_kws_sv: --upstream fbank (the features alone) has no weights: use --freeze true"
    )
