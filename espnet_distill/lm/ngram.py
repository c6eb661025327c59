"""Word n-gram LMs with KenLM's lmplz and build_binary (built by tools/install.sh).

``train_word_ngram`` streams the LM text (plain or .gz) into ``lmplz`` and writes
``<out>/word_<N>gram.arpa`` and the binary ``<out>/word_<N>gram.bin`` that the decoders load.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from lhotse.serialization import open_best

from espnet_distill.utils import REPO_ROOT, atomic_output

log = logging.getLogger(__name__)

KENLM_BIN = REPO_ROOT / "tools" / "kenlm" / "bin"


def kenlm_tool(name: str) -> str:
    """Path of a KenLM binary: tools/kenlm/bin first, then PATH; a clear error if neither."""
    local = KENLM_BIN / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"KenLM's {name} not found in {KENLM_BIN} or on PATH: run tools/install.sh"
        )
    return found


def read_text_lines(paths: Iterable[Path]) -> Iterable[str]:
    """Non-empty lines of plain or .gz text files, in order."""
    for path in paths:
        with open_best(path, "r") as f:
            for line in f:
                if line.strip():
                    yield line


def train_word_ngram(texts: list[Path], out_dir: Path, order: int = 3, memory: str = "20%") -> Path:
    """Train an order-``order`` modified Kneser-Ney LM; returns the binary model's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arpa = out_dir / f"word_{order}gram.arpa"
    binary = out_dir / f"word_{order}gram.bin"
    cmd = [
        kenlm_tool("lmplz"),
        "-o",
        str(order),
        "-S",
        memory,
        "-T",
        str(out_dir),
        "--discount_fallback",
    ]
    n_lines = 0
    with atomic_output(arpa) as tmp, open(tmp, "w") as arpa_out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=arpa_out, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdin is not None
        for line in read_text_lines(texts):
            proc.stdin.write(line)
            n_lines += 1
        proc.stdin.close()
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise RuntimeError(
                f"lmplz failed on {', '.join(map(str, texts))}: {stderr.strip()[-500:]}"
            )
    with atomic_output(binary) as tmp:
        subprocess.run(
            [kenlm_tool("build_binary"), str(arpa), str(tmp)], check=True, capture_output=True
        )
    log.info("word %d-gram from %d sentences -> %s", order, n_lines, binary)
    return binary
