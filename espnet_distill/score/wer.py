"""WER scoring: kaldialign alignments, sclite-style reports, bootstrap confidence intervals.

The alignment is kaldialign's (Levenshtein with Kaldi's tie-breaking), never hand-written. Each
utterance gets sclite's ``pra`` block (REF/HYP with errors in upper case, correct words lower case),
and the corpus WER gets a 95% bootstrap interval over utterances (Bisani and Ney, ICASSP 2004).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import kaldialign
import numpy as np

from espnet_distill.utils import atomic_write_text

log = logging.getLogger(__name__)

# The gap of an alignment: no token (always a str) can equal it, so a literal "*" is a word.
EPS = None


@dataclass
class UttScore:
    id: str
    ref: list[str]
    hyp: list[str]
    alignment: list[tuple[str | None, str | None]]  # EPS (None) marks the gap
    corr: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins


@dataclass
class CorpusScore:
    utts: list[UttScore]
    missing_hyps: list[str] = field(default_factory=list)
    extra_hyps: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        words = sum(len(u.ref) for u in self.utts)
        corr, sub, dele, ins = (
            sum(getattr(u, k) for u in self.utts) for k in ("corr", "sub", "dele", "ins")
        )
        snt_err = sum(u.errors > 0 for u in self.utts)

        def pct(x: int) -> float:
            # no reference words: errors (insertions) make the rate infinite, not 0% that hides them
            if words:
                return 100.0 * x / words
            return math.inf if x else 0.0

        return {
            "snt": len(self.utts),
            "wrd": words,
            "corr": pct(corr),
            "sub": pct(sub),
            "del": pct(dele),
            "ins": pct(ins),
            "err": pct(sub + dele + ins),
            "s_err": 100.0 * snt_err / max(1, len(self.utts)),
            "n_err": sub + dele + ins,
        }


def score_utterance(utt_id: str, ref: list[str], hyp: list[str]) -> UttScore:
    # kaldialign marks gaps with a symbol of the sequences' own type: align token ids, with -1 as
    # the gap, so that no word (a literal "*") is taken for a gap
    vocab = list(dict.fromkeys([*ref, *hyp]))
    ids = {w: i for i, w in enumerate(vocab)}
    ali = kaldialign.align([ids[w] for w in ref], [ids[w] for w in hyp], -1)
    alignment = [(EPS if r < 0 else vocab[r], EPS if h < 0 else vocab[h]) for r, h in ali]
    s = UttScore(utt_id, ref, hyp, alignment)
    for r, h in alignment:
        if r is EPS:
            s.ins += 1
        elif h is EPS:
            s.dele += 1
        elif r == h:
            s.corr += 1
        else:
            s.sub += 1
    return s


def score_corpus(refs: dict[str, str], hyps: dict[str, str]) -> CorpusScore:
    """Score every reference; a reference with no hypothesis counts as all deletions (and is listed)."""
    missing = sorted(set(refs) - set(hyps))
    extra = sorted(set(hyps) - set(refs))
    if missing:
        log.warning(
            "%d references have no hypothesis (scored as deletions), e.g. %s",
            len(missing),
            missing[0],
        )
    if extra:
        log.warning("%d hypotheses have no reference (ignored), e.g. %s", len(extra), extra[0])
    utts = [score_utterance(u, refs[u].split(), hyps.get(u, "").split()) for u in sorted(refs)]
    return CorpusScore(utts, missing, extra)


def bootstrap_ci(
    errors: np.ndarray, words: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the corpus WER (%), resampling utterances."""
    errors = np.asarray(errors, dtype=np.float64)
    words = np.asarray(words, dtype=np.float64)
    if len(errors) == 0 or words.sum() == 0:
        return (math.inf, math.inf) if errors.sum() else (0.0, 0.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors), size=(n_boot, len(errors)))
    wer = 100.0 * errors[idx].sum(1) / np.maximum(words[idx].sum(1), 1)
    lo, hi = np.percentile(wer, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def paired_bootstrap(
    errors_base: np.ndarray,
    errors_sys: np.ndarray,
    words: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Paired bootstrap of a system against a baseline on the same utterances (Bisani and Ney,
    ICASSP 2004): utterances are resampled together for both systems.

    Returns ``delta`` (system - baseline WER, points), its percentile interval (``delta_low``,
    ``delta_high``) and ``p_not_better``: the fraction of resamples where the system is not better
    (1 - Bisani and Ney's probability of improvement; < 0.05: significantly better), and
    ``p_not_worse``: the fraction where it is not worse (< 0.05: significantly worse);
    ``delta_se``: the resampled deltas' standard deviation (the test set's part of the standard
    error, for :mod:`espnet_distill.score.power`). Ties count
    in both, so with discrete scores (accuracy on a few utterances) the two sum to more than 1
    and ``p_not_better`` > 0.95 does not make the system significantly worse.
    """
    base = np.asarray(errors_base, dtype=np.float64)
    system = np.asarray(errors_sys, dtype=np.float64)
    words = np.asarray(words, dtype=np.float64)
    if not (len(base) == len(system) == len(words)) or len(words) == 0:
        raise ValueError(
            f"paired scores need the same non-empty utterance list, got "
            f"{len(base)}, {len(system)}, {len(words)}"
        )
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(words), size=(n_boot, len(words)))
    n = np.maximum(words[idx].sum(1), 1)
    delta = 100.0 * (system[idx].sum(1) - base[idx].sum(1)) / n
    lo, hi = np.percentile(delta, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    full = 100.0 * (system.sum() - base.sum()) / max(words.sum(), 1)
    return {
        "delta": float(full),
        "delta_low": float(lo),
        "delta_high": float(hi),
        "p_not_better": float((delta >= 0).mean()),
        "p_not_worse": float((delta <= 0).mean()),
        "delta_se": float(delta.std(ddof=1)) if n_boot > 1 else 0.0,
    }


def paired_bootstrap_by_id(
    base: dict[str, tuple[int, int]],
    system: dict[str, tuple[int, int]],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float] | None:
    """:func:`paired_bootstrap` of two systems' per-item (errors, reference length), keyed by
    item id; None unless both scored the same items."""
    if base.keys() != system.keys():
        return None
    ids = sorted(base)
    return paired_bootstrap(
        np.array([base[i][0] for i in ids]),
        np.array([system[i][0] for i in ids]),
        np.array([base[i][1] for i in ids]),
        n_boot=n_boot,
        seed=seed,
    )


def sclite_block(u: UttScore) -> str:
    """One utterance as in sclite's ``pra`` output."""
    ref_row, hyp_row, eval_row = [], [], []
    for r, h in u.alignment:
        if r is EPS:
            r_tok, h_tok, op = "*" * len(h), h.upper(), "I"
        elif h is EPS:
            r_tok, h_tok, op = r.upper(), "*" * len(r), "D"
        elif r == h:
            r_tok, h_tok, op = r.lower(), h.lower(), ""
        else:
            r_tok, h_tok, op = r.upper(), h.upper(), "S"
        width = max(len(r_tok), len(h_tok), len(op))
        ref_row.append(r_tok.ljust(width))
        hyp_row.append(h_tok.ljust(width))
        eval_row.append(op.ljust(width))
    return (
        f"id: ({u.id})\n"
        f"Scores: (#C #S #D #I) {u.corr} {u.sub} {u.dele} {u.ins}\n"
        f"REF:  {' '.join(ref_row)}\n"
        f"HYP:  {' '.join(hyp_row)}\n"
        f"Eval: {' '.join(eval_row).rstrip()}\n"
    )


def write_report(score: CorpusScore, out_dir: Path, name: str = "") -> dict:
    """``result.txt`` (summary + per-utterance alignments), ``wer.json``, ``per_utt.tsv``."""
    tot = score.totals()
    if tot["wrd"] == 0 and tot["n_err"]:
        log.warning(
            "%s: no reference words, %d inserted words: WER is infinite",
            name or out_dir,
            tot["n_err"],
        )
    lo, hi = bootstrap_ci(
        np.array([u.errors for u in score.utts]), np.array([len(u.ref) for u in score.utts])
    )
    tot.update({"ci_low": lo, "ci_high": hi, "missing_hyps": len(score.missing_hyps), "name": name})
    header = (
        f"%WER {tot['err']:.2f} [ {tot['n_err']} / {tot['wrd']}, "
        f"{sum(u.ins for u in score.utts)} ins, {sum(u.dele for u in score.utts)} del, "
        f"{sum(u.sub for u in score.utts)} sub ] 95% CI [{lo:.2f}, {hi:.2f}]\n"
        f"%SER {tot['s_err']:.2f} [ {sum(u.errors > 0 for u in score.utts)} / {tot['snt']} ]\n"
    )
    if score.missing_hyps:
        header += f"# {len(score.missing_hyps)} utterances had no hypothesis: {' '.join(score.missing_hyps)}\n"
    blocks = "\n".join(sclite_block(u) for u in score.utts)
    atomic_write_text(out_dir / "result.txt", header + "\n" + blocks)
    atomic_write_text(
        out_dir / "per_utt.tsv",
        "id\tref_words\tcorr\tsub\tdel\tins\n"
        + "".join(
            f"{u.id}\t{len(u.ref)}\t{u.corr}\t{u.sub}\t{u.dele}\t{u.ins}\n" for u in score.utts
        ),
    )
    atomic_write_text(out_dir / "wer.json", json.dumps(tot, indent=1))
    return tot


def read_text_file(path: Path) -> dict[str, str]:
    """Kaldi ``text``: ``<id> <words...>``; an id alone means an empty transcript."""
    out = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if fields[0] in out:
            raise ValueError(f"{path}:{lineno}: duplicate id {fields[0]}")
        out[fields[0]] = fields[1] if len(fields) > 1 else ""
    return out


__all__ = [
    "UttScore",
    "CorpusScore",
    "score_corpus",
    "bootstrap_ci",
    "paired_bootstrap",
    "write_report",
    "read_text_file",
    "asdict",
]
