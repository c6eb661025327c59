"""Shared fixtures: a tiny synthetic corpus (built once per session) and its features."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .cli import cli_args
from .figures import test_seed

REPO = Path(__file__).resolve().parent.parent
TINY_AM_CONF = REPO / "egs" / "synth" / "asr1" / "conf" / "train_conformer_ctc_senone_tiny.yaml"


def tiny_am_config(*overrides: str) -> dict:
    """The tiny recipe's acoustic-model config over the trainer's defaults, then ``overrides``
    (``section.key=value``)."""
    from espnet_distill.asr.trainer import DEFAULT_CONFIG
    from espnet_distill.config import apply_overrides, load_config, merge_config

    return apply_overrides(merge_config(DEFAULT_CONFIG, load_config(TINY_AM_CONF)), list(overrides))


PARTS = ["train-clean-100", "dev-clean", "test-clean"]


def copy_recipe(tmp_path: Path, corpus: str, task: str = "asr1") -> Path:
    """egs/<corpus>/<task> copied to tmp_path/egs, with the corpus's other recipes (ssl1 reads
    ../asr1) and without outputs (data, exp, corpus, RESULTS_*); the other egs/ dirs and utils/
    are linked, so the relative links to egs/synth and egs/TEMPLATE hold."""
    egs = tmp_path / "egs"
    if not egs.exists():
        egs.mkdir()
        for other in (REPO / "egs").iterdir():
            if other.name != corpus:
                (egs / other.name).symlink_to(other)
        (tmp_path / "utils").symlink_to(REPO / "utils")
    if (egs / corpus).is_symlink():  # linked by an earlier call: copy it instead
        (egs / corpus).unlink()
    shutil.copytree(
        REPO / "egs" / corpus,
        egs / corpus,
        symlinks=True,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("data", "exp", "corpus", "RESULTS_*"),
    )
    return egs / corpus / task


def run_recipe(d: Path, *args: str, ok: bool = True, script: str = "./run.sh") -> str:
    """``script ARGS`` in recipe dir ``d``; asserts its exit status is 0 (or not, ``ok=False``)
    and returns stdout + stderr."""
    env = dict(os.environ, MAIN_ROOT=str(REPO))
    r = subprocess.run([script, *args], cwd=d, env=env, capture_output=True, text=True)
    assert (r.returncode == 0) == ok, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run tools/install.sh")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Root of a tiny corpus: <root>/LibriSpeech/{train-clean-100,dev-clean,test-clean}."""
    for tool in ("espeak-ng", "flite", "sox"):
        _need(tool)
    from espnet_distill.data.synth_corpus import generate

    root = tmp_path_factory.mktemp("corpus") / "tiny"
    generate(root, size="tiny", seed=test_seed(), nj=2)
    return root


@pytest.fixture(scope="session")
def kws_sv_corpora(tmp_path_factory) -> Path:
    """Root of tiny synthetic corpora: <root>/SpeechCommands and <root>/VoxCeleb1."""
    for tool in ("espeak-ng", "flite", "sox"):
        _need(tool)
    from espnet_distill.data.synth_kws_sv import generate_speech_commands, generate_voxceleb1

    root = tmp_path_factory.mktemp("kws_sv")
    generate_speech_commands(root, "tiny", seed=test_seed(), nj=2)
    generate_voxceleb1(root, "tiny", seed=test_seed(), nj=2)
    return root


@pytest.fixture(scope="session")
def tiny_features(tiny_corpus, tmp_path_factory) -> Path:
    """data dir with manifests/, fbank/cuts_<part>.jsonl.gz, fbank/cmvn.npz, lang_bpe_64/."""
    from espnet_distill.data import features
    from espnet_distill.data.librispeech import prepare_part
    from espnet_distill.lang.bpe import train_bpe

    data = tmp_path_factory.mktemp("data")
    for part in PARTS:
        prepare_part(tiny_corpus / "LibriSpeech", part, data / "manifests")
        out = data / "fbank" / part
        n = features.split_cuts(data / "manifests", part, 1, out)
        for j in range(1, n + 1):
            features.extract(out / "split" / f"cuts.{j}.jsonl.gz", out, j)
        cuts = features.combine(out, n, part)
        if part == "train-clean-100":
            features.compute_global_cmvn(cuts, data / "fbank" / "cmvn.npz")
    texts = [
        s.text
        for c in __import__("lhotse").CutSet.from_file(
            data / "fbank" / "cuts_train-clean-100.jsonl.gz"
        )
        for s in c.supervisions
    ]
    train_bpe(texts, data / "lang_bpe_64", 64)
    return data


def align_tiny(tiny_features: Path, out: Path, *lang_flags: str, **options) -> tuple[Path, Path]:
    """The phone lang dir of the tiny corpus's words (prepare_lang with ``lang_flags``), then
    stage 4 (bin/align) on its training cuts with ``options`` as flags: (exp dir, lang dir)."""
    from espnet_distill.bin import align as align_cli
    from espnet_distill.bin.prepare_lang import main as prepare_lang_main

    lang, exp = out / "lang_phone", out / "exp"
    words = tiny_features / "lang_bpe_64" / "words.txt"
    assert prepare_lang_main(cli_args(words=words, lang_dir=lang) + list(lang_flags)) == 0
    argv = cli_args(
        lang_dir=lang,
        cuts=tiny_features / "fbank" / "cuts_train-clean-100.jsonl.gz",
        bpe_model=tiny_features / "lang_bpe_64" / "bpe.model",
        exp_dir=exp,
        **options,
    )
    assert align_cli.main(argv) == 0
    return exp, lang


@pytest.fixture(scope="session")
def aligned(tiny_features, tmp_path_factory):
    """Stage 4 run on the tiny corpus (dev-clean aligned too): (exp dir, lang dir, cuts, bpe)."""
    exp, lang = align_tiny(
        tiny_features,
        tmp_path_factory.mktemp("align"),
        extra_cuts=tiny_features / "fbank" / "cuts_dev-clean.jsonl.gz",
        mono_iters=6,
        tri_iters=6,
        num_leaves=150,
        tri_totgauss=400,
        mono_totgauss=300,
        mono_subset=30,
    )
    cuts = tiny_features / "fbank" / "cuts_train-clean-100.jsonl.gz"
    return exp, lang, cuts, tiny_features / "lang_bpe_64" / "bpe.model"


@pytest.fixture(scope="session")
def hclg_graph(aligned, tmp_path_factory) -> Path:
    """HCLG of the tiny triphone tree with a word 3-gram of the training text (its dir)."""
    from lhotse import CutSet

    from espnet_distill.align.trainer import GmmSystem, Lang
    from espnet_distill.graph.hclg import compile_hclg
    from espnet_distill.lm.ngram import train_word_ngram

    exp, lang_dir, cuts_file, _ = aligned
    out = tmp_path_factory.mktemp("hclg")
    texts = [c.supervisions[0].text for c in CutSet.from_file(cuts_file) if "_sp" not in c.id]
    (out / "lm.txt").write_text("\n".join(texts) + "\n")
    train_word_ngram([out / "lm.txt"], out / "lm", order=3)
    tri = GmmSystem.load(exp / "tri", Lang.load(lang_dir))
    compile_hclg(lang_dir, tri.tree, tri.tm, out / "lm" / "word_3gram.arpa", out / "graph")
    return out / "graph"


def train_tiny_am(
    config: dict, exp_dir: Path, tiny_features: Path, train_cuts: Path | None = None, **kwargs
) -> Path:
    """asr.trainer.train on the tiny corpus (its dev cuts, BPE-64 lang dir and CMVN); the
    training cuts default to its train-clean-100. Returns model.pt."""
    from espnet_distill.asr.trainer import train

    fbank = tiny_features / "fbank"
    return train(
        config,
        exp_dir,
        train_cuts or fbank / "cuts_train-clean-100.jsonl.gz",
        fbank / "cuts_dev-clean.jsonl.gz",
        tiny_features / "lang_bpe_64",
        fbank / "cmvn.npz",
        **kwargs,
    )


def without_repeats(seq) -> list[int]:
    """Runs merged: the state sequence of senone frames (every HMM state has its own pdfs), or
    what frames can show of a unit sequence (not a unit repeated back to back: "P P" in
    SUPPOSED, the N of "ONE KNOWS")."""
    return [int(x) for i, x in enumerate(seq) if i == 0 or x != seq[i - 1]]


def constructed_alignment(text: str, lang_dir: Path, lang, tri, frames_per_state: int = 2):
    """The forced alignment (the stage-4 aligner over the transcript's training graph) of
    ``text`` given log-likelihoods that favour one path alone: first pronunciations, a silence
    at each end, no inner pause, each HMM state ``frames_per_state`` frames. A test that needs
    this realisation builds it, instead of hoping that EM on the tiny corpus yields one."""
    import numpy as np

    from espnet_distill.align.hmm import align_utterance, training_graph
    from espnet_distill.align.targets import senones_from_text
    from espnet_distill.lang.phone_lang import read_lexicon

    words = text.split()
    lexicon = read_lexicon(lang_dir / "lexicon.txt")
    pdfs = senones_from_text(words, lexicon, lang.phones, tri.tree, lang.topology)
    loglikes = np.full((len(pdfs) * frames_per_state, tri.tree.num_pdfs), -100.0, np.float32)
    for k, pdf in enumerate(pdfs):
        loglikes[k * frames_per_state : (k + 1) * frames_per_state, pdf] = 0.0
    graph = training_graph(lang.L, lang.word_ids(words)[0], tri.tm, tri.tree)
    ali = align_utterance(graph, loglikes, tri.tm)
    assert ali is not None, f"no alignment of {text!r}"
    return ali
