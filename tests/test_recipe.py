"""The synth recipe end to end on the tiny corpus, a rerun from stage 3 that redoes nothing, the
kill -9 of run.sh in stage 6 then a rerun that ends bit for bit as an uninterrupted run, the KD
stages and the ablation driver, and --force redoing stages 4-5 (slow: CI runs it)."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from .conftest import REPO, copy_recipe, run_recipe


def _recipe_copy(tmp_path, corpus_root):
    """egs/synth copied to tmp_path/egs (see copy_recipe); its asr1 reuses the session's tiny
    corpus."""
    d = copy_recipe(tmp_path, "synth")
    (d / "corpus").mkdir()
    (d / "corpus" / "tiny").symlink_to(corpus_root)
    return d


def _run(d, *args):
    return run_recipe(d, "--corpus_size", "tiny", *args)


def _stage_6_processes(exp: str) -> list[str]:
    r = subprocess.run(["pgrep", "-f", "--", f"--exp-dir {exp}"], capture_output=True, text=True)
    return r.stdout.split()


def _kill_9_in_stage_6_then_rerun(d):
    """kill -9 of run.sh during the recipe's own stage-6 training (its real config: senone head,
    speed-perturbed data, bucketing sampler, checkpoint averaging), then the same command again:
    the training stops with its run.sh, resumes, and ends with the bytes of an uninterrupted run.
    Before: the resumed epoch repeated the previous epoch's batch order (other weights), the
    training outlived the killed run.sh, and the rerun's train.log replaced the killed run's."""
    # two 1-thread runs side by side (the machine's two cores): equal bytes need equal threads
    threads = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = dict(os.environ, MAIN_ROOT=str(REPO), **dict.fromkeys(threads, "1"))
    # 2 of the config's 3 epochs: killed after the first, resumed for the second (CI's time)
    stage_6 = ["./run.sh", "--corpus_size", "tiny", "--stage", "6", "--stop_stage", "6"]
    stage_6 += ["--train_overrides", "train.max_epochs=2"]

    def start(tag: str) -> subprocess.Popen:
        return subprocess.Popen(
            [*stage_6, "--tag", tag],
            cwd=d,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    reference, killed = start("uninterrupted"), start("killed")
    exp = d / "exp" / "tiny" / "am_killed"
    deadline = time.time() + 600
    while not (exp / "checkpoints" / "last.ckpt").exists() and killed.poll() is None:
        assert time.time() < deadline, "no checkpoint after 10 minutes"
        time.sleep(0.05)
    assert _stage_6_processes("exp/tiny/am_killed"), "the training had already finished"
    killed.kill()  # SIGKILL of run.sh alone, as a job scheduler or `kill -9 <pid>` does
    killed.wait()
    deadline = time.time() + 20
    while _stage_6_processes("exp/tiny/am_killed") and time.time() < deadline:
        time.sleep(0.2)
    assert not _stage_6_processes("exp/tiny/am_killed"), "the training outlived its run.sh"
    assert not (exp / "model.pt").exists()
    killed_log = (exp / "train.log").read_text()
    rerun = start("killed")
    for proc in (reference, rerun):
        out = proc.communicate()[0]
        assert proc.returncode == 0, out[-3000:]
    uninterrupted = d / "exp" / "tiny" / "am_uninterrupted" / "model.pt"
    assert (exp / "model.pt").read_bytes() == uninterrupted.read_bytes()
    log = (exp / "train.log").read_text()
    assert log.startswith(killed_log) and "# ---- rerun at " in log  # the killed run's log kept
    resumed = f"resuming from {exp.resolve() / 'checkpoints' / 'last.ckpt'}"
    assert resumed in log.split("# ---- rerun")[1]


def _decode_another_corpus_with_the_trained_system(d):
    """A second tiny corpus (another seed of the generator) prepared, decoded and scored in a
    recipe of its own with the system the first one trained (--model_exp_dir, --model_data_dir),
    with the settings tuned on the first one's dev set."""
    out = run_recipe(
        d,
        "--corpus_size",
        "tiny",
        "--corpus_seed",
        "7",
        "--local_data_opts",
        "--size tiny --seed 7 --out corpus/tiny_seed7",
        "--corpus_dir",
        "corpus/tiny_seed7/LibriSpeech",
        "--data_dir",
        "data/tiny_seed7",
        "--exp_dir",
        "exp/tiny_seed7",
        "--model_exp_dir",
        "exp/tiny",
        "--model_data_dir",
        "data/tiny",
        "--test_sets",
        "test-clean",
        "--results_file",
        "RESULTS_seed7.md",
    )
    assert "Stages 3-7: the system of exp/tiny and data/tiny (--model_exp_dir)" in out
    ours = (d / "data" / "tiny_seed7" / "test_clean" / "text").read_text()
    assert ours != (d / "data" / "tiny" / "test_clean" / "text").read_text()  # other sentences
    results = (d / "RESULTS_seed7.md").read_text()
    assert "Decoded with the system of `exp/tiny`" in results
    am = "am_train_conformer_ctc_senone_tiny"
    for row in (
        *(f"{am}/decode_test-clean_{m}" for m in ("greedy", "beam_lm", "tlg", "hclg")),
        "align/tri/decode_test-clean_hclg",
    ):
        line = next(ln for ln in results.splitlines() if ln.startswith(f"|{row}|"))
        assert line.split("|")[2] == "10", row  # all 10 test utterances of the new corpus scored
    exp = d / "exp" / "tiny_seed7"
    assert not list(exp.glob("**/decode_dev-clean_*"))  # nothing tuned here: the first's settings
    assert not (exp / am / "model.pt").exists()  # nothing trained here
    assert "LM text overlap: " in results.split("## WER: test-clean")[1]


def _kd_from_the_ssl_teacher(d):
    """MVQ and hint KD through the recipe: stage 5 quantizes a layer of the ssl1 recipe's
    committed teacher for a config with model.mvq_kd, stage 6 trains both heads beside CTC and
    the senone head, and model.pt holds neither."""
    import torch
    import yaml

    (d / "conf" / "train_kd_ssl_test_tiny.yaml").write_text(
        "base: train_conformer_ctc_senone_tiny.yaml\n"
        "model:\n  mvq_kd: {layer: 1, num_codebooks: 8, weight: 0.1}\n"
        "  hint_kd: {layer: 1, teacher_layer: 6, weight: 0.1}\n"
        "train: {max_epochs: 1, average_best: 1}\n"
    )
    teacher = REPO / "egs" / "synth" / "ssl1" / "exp" / "full" / "teacher" / "model.pt"
    config = ["--asr_config", "conf/train_kd_ssl_test.yaml", "--tag", "kd_ssl_test"]
    out = _run(d, "--stage", "5", "--stop_stage", "6", *config, "--kd_teacher", str(teacher))
    codebooks = d / "exp" / "tiny" / "kd_codebooks" / "teacher_layer6_cb8"
    summary = yaml.safe_load((codebooks / "quantizer.yaml").read_text())
    assert summary["layer"] == 6 and summary["num_codebooks"] == 8 and "codebooks of" in out
    assert summary["relative_reconstruction_error"] > 0  # 20 steps a phase: no better than 1
    for part in ("train-clean-100", "dev-clean"):
        assert (codebooks / f"cuts_{part}.jsonl.gz").is_file()
    am = d / "exp" / "tiny" / "am_kd_ssl_test"
    log = (am / "train.log").read_text()
    assert "MVQ KD head at block 1 (8 codebooks)" in log
    assert "hint KD head at block 1 (layer 6 of" in log
    state = torch.load(am / "model.pt", weights_only=False)["state_dict"]
    assert not any(k.startswith(("mvq_head.", "hint_head.")) for k in state)
    # a rerun of stage 5 keeps the codebooks
    out = _run(d, "--stage", "5", "--stop_stage", "5", *config, "--kd_teacher", str(teacher))
    assert "quantizer.yaml exists: skipping" in out


@pytest.mark.slow  # about 15 minutes, mostly on one core: CI runs it (make test-slow)
def test_tiny_recipe_end_to_end_then_rerun_from_stage_3(tiny_corpus, tmp_path):
    d = _recipe_copy(tmp_path, tiny_corpus)
    out = _run(d)
    results = (d / "RESULTS_tiny.md").read_text()
    assert "## WER: test-clean" in results and "## WER: dev-clean" in results
    row = next(
        ln
        for ln in results.splitlines()
        if ln.startswith("|am_train_conformer_ctc_senone_tiny/decode_test-clean")
    )
    assert row.split("|")[2] == "10"  # #Snt: all 10 tiny test utterances scored
    gmm_row = next(
        ln for ln in results.splitlines() if ln.startswith("|align/tri/decode_test-clean_hclg")
    )
    assert gmm_row.split("|")[2] == "10"  # the triphone GMM-HMM over HCLG
    hybrid_row = next(
        ln
        for ln in results.splitlines()
        if ln.startswith("|am_train_conformer_ctc_senone_tiny/decode_test-clean_hclg")
    )
    assert hybrid_row.split("|")[2] == "10"  # the network's senone head over HCLG
    # test-other (the held-out festival voices) is decoded by every method beside test-clean
    other = results.split("## WER: test-other")[1].split("\n## ")[0]
    for method in ("greedy", "beam_lm", "tlg", "hclg"):
        row = next(
            ln
            for ln in other.splitlines()
            if ln.startswith(f"|am_train_conformer_ctc_senone_tiny/decode_test-other_{method}|")
        )
        assert row.split("|")[2] == "10", method
    assert "LM text overlap: 0 of 10 sentences (0.0%)" in other  # test-clean's held-out sentences
    assert "## Alignment quality (stage 4)" in results and "|align/quality_festival|" in results
    am = d / "exp" / "tiny" / "am_train_conformer_ctc_senone_tiny"
    result_txt = (am / "decode_test-clean_greedy" / "score" / "result.txt").read_text()
    assert result_txt.startswith("%WER") and result_txt.count("\nREF:") == 10
    for set_name in ("train_clean_100", "dev_clean", "test_clean", "test_other"):
        kaldi = d / "data" / "tiny" / set_name
        assert all(
            (kaldi / f).is_file() for f in ("wav.scp", "text", "utt2spk", "spk2utt", "feats.scp")
        )
    assert "Successfully finished" in out
    assert "done, skipping" not in out  # a first run skips nothing (dev-clean: valid and test set)
    # the generator keeps test sentences out of the LM text, and the table says so
    assert "LM text overlap: 0 of 10 sentences (0.0%)" in results.split("## WER: test-clean")[1]
    align = d / "exp" / "tiny" / "align"
    assert (d / "data" / "tiny" / "lang_phone" / "L.fst").is_file()
    n_targets = len((align / "targets" / "senone.scp").read_text().splitlines())
    n_failed = len((align / "failed.txt").read_text().splitlines())
    n_train = int(re.search(r"(\d+) training utterances", (align / "align.log").read_text())[1])
    n_valid = len((d / "data" / "tiny" / "dev_clean" / "text").read_text().splitlines())
    assert n_targets + n_failed == 3 * n_train + n_valid  # speed-perturbed copies, valid set too

    watched = [
        am / "model.pt",
        d / "data" / "tiny" / "fbank" / "cuts_test-clean.jsonl.gz",
        d / "data" / "tiny" / "lang_bpe_100" / "bpe.model",
        am / "decode_test-clean_greedy" / "text",
        d / "data" / "tiny" / "lang_phone" / "L.fst",
        align / "targets" / "senone.ark",
    ]
    mtimes = [p.stat().st_mtime_ns for p in watched]
    out = _run(d, "--stage", "3")
    assert "Stage 1" not in out and "Stage 2" not in out
    assert "Stage 3" in out and "skipping" in out
    assert "Stage 6: training" in out and "model.pt exists: skipping" in out
    assert "Stage 4: " in out and "targets/.done exists: skipping" in out
    assert [p.stat().st_mtime_ns for p in watched] == mtimes  # nothing finished was redone

    _kill_9_in_stage_6_then_rerun(d)
    _decode_another_corpus_with_the_trained_system(d)

    # cross-modal KD through the recipe: stage 5 trains a unit LM, stage 6 a model with a KD head
    # (run.sh picks conf/<name>_tiny.yaml for the tiny corpus)
    (d / "conf" / "lm_unit_test.yaml").write_text(
        "lm_conf: {unit: 32, nlayers: 1}\ntrain: {max_epochs: 1, max_tokens: 8000}\n"
        "optim: {warmup_steps: 5}\n"
    )
    (d / "conf" / "train_kd_test_tiny.yaml").write_text(
        "base: train_conformer_ctc_senone_tiny.yaml\n"
        "model:\n  kd_heads:\n    monophone: {layer: 1}\n  label_interpolation: {weight: 0.3}\n"
        "train: {max_epochs: 1, average_best: 1}\n"
    )
    # the subword LM: a Hugging Face causal LM over the recipe's own BPE pieces
    from .test_hf_lm import save_tiny_llama, sentencepiece_tokenizer

    bpe = next((d / "data" / "tiny").glob("lang_bpe_*/bpe.model"))
    hf = save_tiny_llama(tmp_path / "hf_lm", sentencepiece_tokenizer(bpe, tmp_path / "hf_tok"))
    out = _run(
        d,
        "--stage",
        "5",
        "--stop_stage",
        "6",
        "--unit_lms",
        "monophone senone subword",
        "--unit_lm_config",
        "conf/lm_unit_test.yaml",
        "--asr_config",
        "conf/train_kd_test.yaml",
        "--tag",
        "kd_test",
        "--subword_lm_hf",
        str(hf),
    )
    for unit in ("monophone", "senone", "subword"):
        ppl = (d / "exp" / "tiny" / "unit_lm" / unit / "ppl.yaml").read_text()
        assert "valid_perplexity" in ppl and f"{unit} LM" in out
    assert f"hf_model: {hf}" in ppl and f"subword LM exp/tiny/unit_lm/subword with {hf}" in out
    log = (d / "exp" / "tiny" / "am_kd_test" / "train.log").read_text()
    assert "KD head of the monophone LM at block 1" in log and "label interpolation 0.3" in log
    assert (d / "exp" / "tiny" / "am_kd_test" / "model.pt").is_file()

    # the ablation driver on two configurations (tiny variants written here), one seed
    for name, heads in (
        ("none", ""),
        ("hier", "  kd_heads:\n    senone: {layer: 1}\n    monophone: {layer: 2}\n"),
    ):
        (d / "conf" / f"train_kd_{name}_tiny.yaml").write_text(
            "base: train_conformer_ctc_senone_tiny.yaml\n"
            + (f"model:\n{heads}" if heads else "")
            + "train: {max_epochs: 1, average_best: 1}\n"
        )
    run_recipe(
        d,
        "--corpus_size",
        "tiny",
        "--configs",
        "none hier",
        "--units",
        "monophone senone",
        "--seeds",
        "7",
        "--unit_lm_config",
        "conf/lm_unit_test.yaml",
        script="local/run_kd_ablation.sh",
    )
    table = (d / "exp" / "tiny" / "kd_ablation" / "table.md").read_text()
    assert "|kd_hier|" in table and "|kd_none|" in table and "### hclg, test-clean" in table
    assert "### hclg, test-other" in table  # the held-out engine beside test-clean
    results = (d / "RESULTS_tiny.md").read_text()
    assert "## Cross-modal KD ablation" in results and "|kd_hier|" in results
    assert (d / "exp" / "tiny" / "kd_ablation" / "ablation.png").is_file()
    # the driver decodes only the methods its table compares (--methods hclg tlg)
    am = d / "exp" / "tiny" / "am_kd_hier_seed7"
    assert (am / "decode_test-clean_tlg").is_dir() and (am / "decode_test-clean_hclg").is_dir()
    assert not list(am.glob("decode_*_greedy")) and not list(am.glob("decode_*_beam_lm"))

    _kd_from_the_ssl_teacher(d)

    # --force redoes finished work of stages 4 and 5, which their programs would otherwise resume
    # (bin/align.py skips trained systems; the unit-LM trainer returns a finished model.pt)
    align = d / "exp" / "tiny" / "align"
    unit_lm = d / "exp" / "tiny" / "unit_lm" / "monophone" / "model.pt"
    watched = [align / s for s in ("mono/ali.npz", "tri/ali.npz", "targets/senone.ark")] + [unit_lm]
    mtimes = [p.stat().st_mtime_ns for p in watched]
    force = "--stage 4 --stop_stage 5 --force true --unit_lms monophone"
    out = _run(d, *force.split(), "--unit_lm_config", "conf/lm_unit_test.yaml")
    assert "exists: skipping" not in out
    log = (align / "align.log").read_text()
    assert "monophone system is trained" not in log and "triphone system is trained" not in log
    assert all(
        new != old for new, old in zip([p.stat().st_mtime_ns for p in watched], mtimes, strict=True)
    )
