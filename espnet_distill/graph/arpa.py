"""ARPA n-gram -> G.fst at full precision (Kaldi's ``arpa2fst`` construction).

kaldilm writes G's weights with 6 significant digits, which moves a sentence's cost by up to
~4e-3 nats; this builds the same FST from the ARPA numbers directly (weights printed with 9
digits). One state per n-gram history (the start state is ``<s>``, the back-off root is the
empty history); an n-gram is an arc from its history to the state of its longest suffix that is a
history; ``</s>`` is a final weight; each history backs off to its suffix by an arc that reads the
disambiguation symbol ``#0`` and outputs nothing. N-grams holding a word the symbol table lacks
are skipped and counted. A malformed ARPA raises ``ValueError`` naming the file and line.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import kaldifst
from lhotse.serialization import open_best

log = logging.getLogger(__name__)

LN10 = math.log(10.0)


def read_arpa(path: Path) -> tuple[int, dict[tuple[str, ...], tuple[float, float]]]:
    """(order, n-gram -> (log10 prob, log10 back-off)); a clear error on malformed input."""
    counts: dict[int, int] = {}
    ngrams: dict[tuple[str, ...], tuple[float, float]] = {}
    section = None  # None: before \data\; 0: in \data\; n: in \n-grams:
    seen: dict[int, int] = {}
    ended = False
    with open_best(path, "r") as f:  # plain or .gz
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            where = f"{path}:{lineno}"
            if not line:
                continue
            if line == "\\data\\":
                section = 0
                continue
            if line == "\\end\\":
                ended = True
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                try:
                    section = int(line[1:].split("-")[0])
                except ValueError:
                    raise ValueError(f"{where}: bad section header {line!r}") from None
                seen[section] = 0
                continue
            if section is None:
                raise ValueError(f"{where}: text before \\data\\: {line!r}")
            if section == 0:
                if not line.startswith("ngram ") or "=" not in line:
                    raise ValueError(f"{where}: expected 'ngram N=count', got {line!r}")
                n, c = line[6:].split("=")
                counts[int(n)] = int(c)
                continue
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                raise ValueError(
                    f"{where}: a {section}-gram line needs {section + 1} or "
                    f"{section + 2} fields, got {line!r}"
                )
            try:
                logp = float(fields[0])
                bow = float(fields[section + 1]) if len(fields) == section + 2 else 0.0
            except ValueError:
                raise ValueError(f"{where}: bad number in {line!r}") from None
            ngrams[tuple(fields[1 : section + 1])] = (logp, bow)
            seen[section] += 1
    if not ended:
        raise ValueError(f"{path}: no \\end\\ line (truncated file?)")
    if not counts:
        raise ValueError(f"{path}: no \\data\\ section")
    for n, c in counts.items():
        if seen.get(n, 0) != c:
            raise ValueError(f"{path}: header says {c} {n}-grams, found {seen.get(n, 0)}")
    return max(counts), ngrams


def arpa_to_fst(
    arpa: Path, word_ids: dict[str, int], disambig: str = "#0", bos: str = "<s>", eos: str = "</s>"
) -> kaldifst.StdVectorFst:
    """G as an OpenFst acceptor over ``word_ids`` (see module doc)."""
    order, ngrams = read_arpa(arpa)
    unknown = {w for g in ngrams for w in g if w not in word_ids and w not in (bos, eos)}
    if unknown:
        log.warning(
            "%s: %d n-grams skipped: %d words not in the symbol table (e.g. %s)",
            arpa,
            sum(any(w in unknown for w in g) for g in ngrams),
            len(unknown),
            sorted(unknown)[:3],
        )
        ngrams = {g: v for g, v in ngrams.items() if not any(w in unknown for w in g)}
    state: dict[tuple[str, ...], int] = {(): 0}
    if (bos,) not in ngrams:
        raise ValueError(f"{arpa}: no unigram {bos}")
    state[(bos,)] = 1
    for g in ngrams:
        if len(g) < order and g[-1] != eos and g not in state:
            state[g] = len(state)

    def suffix_state(h: tuple[str, ...]) -> int:
        while h not in state:
            h = h[1:]
        return state[h]

    arcs: list[list[str]] = [[] for _ in state]
    finals: dict[int, float] = {}
    for g, (logp, _) in ngrams.items():
        w, h = g[-1], g[:-1]
        if w == bos:
            continue
        if h not in state:
            raise ValueError(f"{arpa}: n-gram {' '.join(g)} has no history {' '.join(h)}")
        src, cost = state[h], -logp * LN10
        if w == eos:
            finals[src] = cost
            continue
        arcs[src].append(f"{src} {suffix_state(g)} {word_ids[w]} {word_ids[w]} {cost:.9g}")
    back = word_ids[disambig]
    for h, s in state.items():
        if h:
            bow = ngrams.get(h, (0.0, 0.0))[1]
            arcs[s].append(f"{s} {suffix_state(h[1:])} {back} 0 {-bow * LN10:.9g}")
    lines = arcs[1] + [a for s, lst in enumerate(arcs) if s != 1 for a in lst]
    lines += [f"{s} {c:.9g}" for s, c in finals.items()]
    return kaldifst.compile("\n".join(lines) + "\n")
