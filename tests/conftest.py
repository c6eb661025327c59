"""Shared fixtures: a tiny synthetic corpus (built once per session) and its features."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PARTS = ["train-clean-100", "dev-clean", "test-clean"]


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
    generate(root, size="tiny", seed=1234, nj=2)
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
