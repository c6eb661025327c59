"""Decoding-weight grids chosen on a dev set, and the files every stage-8 decode dir holds.

A decode dir has ``text`` (Kaldi-format hypotheses), ``decode.sh`` (the exact command),
``rtf.txt``; a tuned one also ``grid.tsv`` (every combination and its WER) and ``best.yaml`` (the
chosen weights, with ``tuned_on`` and ``tuned_wer``); test sets reuse ``best.yaml``.
"""

from __future__ import annotations

import itertools
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from espnet_distill.score.wer import read_text_file, score_corpus
from espnet_distill.utils import atomic_write_text


def weight_grid(
    names: Sequence[str], values: Sequence[Sequence[float]], best_from: Path | None
) -> list[tuple]:
    """All combinations of ``values``, or the one stored in ``best_from``'s best.yaml."""
    if best_from is not None:
        best = yaml.safe_load(best_from.read_text())
        missing = [n for n in names if n not in best]
        if missing:
            raise ValueError(f"{best_from}: no {', '.join(missing)} (tuned for another method?)")
        return [tuple(best[n] for n in names)]
    return list(itertools.product(*values))


def tune(
    grid: list[tuple],
    names: Sequence[str],
    decode: Callable[..., dict[str, str]],
    tune_ref: Path | None,
    out_dir: Path,
    settings: dict,
) -> tuple[dict[str, str], dict]:
    """Decode every combination; score on ``tune_ref``; write grid.tsv and best.yaml.

    Returns the chosen hypotheses and settings. Ties go to the first combination in grid order.
    """
    if len(grid) > 1 and tune_ref is None:
        raise ValueError("several weight combinations need --tune-ref to choose one")
    results = []
    for combo in grid:
        hyps = decode(*combo)
        wer = (
            score_corpus(read_text_file(tune_ref), hyps).totals()["err"]
            if tune_ref
            else float("nan")
        )
        results.append((wer, combo, hyps))
    if tune_ref:
        atomic_write_text(
            out_dir / "grid.tsv",
            "\t".join([*names, "wer"])
            + "\n"
            + "".join("\t".join([*map(str, c), f"{e:.2f}"]) + "\n" for e, c, _ in results),
        )
    wer, combo, hyps = min(results, key=lambda r: (r[0], r[1]))
    chosen = {**dict(zip(names, combo, strict=True)), **settings}
    if tune_ref:
        chosen["tuned_on"] = str(tune_ref)
        chosen["tuned_wer"] = round(wer, 2)
    atomic_write_text(out_dir / "best.yaml", yaml.safe_dump(chosen, sort_keys=False))
    return hyps, chosen


def write_command(out_dir: Path, module: str, argv: list[str] | None) -> None:
    """``decode.sh``: the exact command that made this decode dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = shlex.join([sys.executable, "-m", module, *(argv if argv is not None else sys.argv[1:])])
    atomic_write_text(out_dir / "decode.sh", f"#!/usr/bin/env bash\n{cmd}\n")


def write_hypotheses(out_dir: Path, hyps: dict[str, str], elapsed: float, seconds: float) -> float:
    """``text`` and ``rtf.txt``; returns the real-time factor."""
    atomic_write_text(
        out_dir / "text", "".join(f"{u} {h}".rstrip() + "\n" for u, h in sorted(hyps.items()))
    )
    rtf = elapsed / max(seconds, 1e-9)
    atomic_write_text(out_dir / "rtf.txt", f"{rtf:.4f}\n")
    return rtf
