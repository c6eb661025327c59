"""The corpora the real-data recipes read, downloaded by lhotse (``run.sh --download true``;
a network is needed: by default the recipes expect the data on disk)."""

from __future__ import annotations

import urllib.error
from pathlib import Path

CORPORA = ("librispeech", "mini_librispeech", "speech_commands", "voxceleb1")


def download(corpus: str, target_dir: Path, parts: list[str] | None = None) -> Path:
    """Download (resumable, lhotse) and return the directory the recipe's --corpus_dir takes.
    OSError, with what to do instead, when the download fails."""
    try:
        return _download(corpus, target_dir, parts)
    except (urllib.error.URLError, OSError) as err:
        raise OSError(
            f"downloading {corpus} failed ({err}); without a network, "
            "put the corpus on disk and pass its path (--corpus_dir)"
        ) from err


def _download(corpus: str, target_dir: Path, parts: list[str] | None) -> Path:
    from lhotse.recipes import download_librispeech, download_speechcommands, download_voxceleb1

    if corpus == "librispeech":
        return download_librispeech(target_dir, dataset_parts=parts or "librispeech")
    if corpus == "mini_librispeech":
        return download_librispeech(target_dir, dataset_parts="mini_librispeech")
    if corpus == "speech_commands":
        return download_speechcommands("2", target_dir)
    if corpus == "voxceleb1":
        return download_voxceleb1(target_dir)
    raise ValueError(f"unknown corpus '{corpus}', expected one of {', '.join(CORPORA)}")
