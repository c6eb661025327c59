"""Phonetic decision trees: context-dependent HMM states -> pdfs (senones).

A tree has one root per (phone set, pdf class) -- Kaldi's ``roots.txt`` with "not-shared" roots:
a phone set is a base phone with its word-position variants (``phones/sets.txt``). Each internal
node asks whether the phone at one context position (0 = left, 1 = centre, 2 = right for
triphones) is in a question set; leaves are pdf ids. The monophone system is the tree with
context width 1 and no questions: one leaf per (phone set, pdf class).

Building (Kaldi's ``build-tree``): from single-Gaussian statistics (count, sum, sum of squares)
of every seen (context window, pdf class), split greedily the leaf whose best question gains the
most log-likelihood, over all roots, until ``max_leaves`` or the best gain is under
``min_gain``; a child must keep ``min_count`` frames. Silence roots are never split.

Questions (Kaldi's ``cluster-phones``): phone sets clustered top-down by their monophone Gaussian
statistics (each split by 2-means under likelihood), every cluster a question; optionally
extended by a table of phone classes (:data:`ARPABET_CLASSES`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Classical phonetic classes for ARPAbet (the question table option).
ARPABET_CLASSES: dict[str, str] = {
    "vowel": "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW",
    "front_vowel": "AE EH EY IH IY",
    "back_vowel": "AA AO OW UH UW",
    "central_vowel": "AH ER",
    "high_vowel": "IH IY UH UW",
    "low_vowel": "AA AE AO",
    "diphthong": "AW AY EY OW OY",
    "rounded": "AO OW OY UH UW W",
    "consonant": "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH",
    "stop": "B D G K P T",
    "voiced_stop": "B D G",
    "unvoiced_stop": "K P T",
    "fricative": "DH F HH S SH TH V Z ZH",
    "voiced_fricative": "DH V Z ZH",
    "sibilant": "CH JH S SH Z ZH",
    "affricate": "CH JH",
    "nasal": "M N NG",
    "liquid": "L R",
    "glide": "W Y",
    "approximant": "ER L R W Y",
    "labial": "B F M P V W",
    "dental": "DH TH",
    "alveolar": "D L N S T Z",
    "postalveolar": "CH JH SH ZH",
    "velar": "G K NG",
    "voiced": "AA AE AH AO AW AY B D DH EH ER EY G IH IY JH L M N NG OW OY R UH UW V W Y Z ZH",
    "silence": "SIL SPN",
}


@dataclass
class Node:
    """A leaf (``pdf`` set) or a question: ``phones`` at context ``position`` -> yes / no."""

    pdf: int = -1
    position: int = -1
    phones: frozenset[int] = frozenset()
    yes: Node | None = None
    no: Node | None = None

    def to_json(self) -> dict:  # noqa: D102
        if self.yes is None:
            return {"pdf": self.pdf}
        return {
            "position": self.position,
            "phones": sorted(self.phones),
            "yes": self.yes.to_json(),
            "no": self.no.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Node:  # noqa: D102
        if "pdf" in d:
            return cls(pdf=d["pdf"])
        return cls(
            position=d["position"],
            phones=frozenset(d["phones"]),
            yes=cls.from_json(d["yes"]),
            no=cls.from_json(d["no"]),
        )


class Tree:
    """Context window + pdf class -> pdf id (see module doc)."""

    def __init__(
        self,
        context_width: int,
        central: int,
        phone_sets: list[list[int]],
        roots: dict[tuple[int, int], Node],
        num_pdfs: int,
    ) -> None:
        self.context_width = context_width
        self.central = central
        self.phone_sets = phone_sets
        self.set_of = {p: i for i, s in enumerate(phone_sets) for p in s}
        self.roots = roots
        self.num_pdfs = num_pdfs

    @classmethod
    def monophone(cls, phone_sets: list[list[int]], pdf_classes: dict[int, int]) -> Tree:
        """One leaf per (phone set, pdf class); ``pdf_classes``: phone -> number of classes."""
        roots, n = {}, 0
        for i, s in enumerate(phone_sets):
            for k in range(pdf_classes[s[0]]):
                roots[(i, k)] = Node(pdf=n)
                n += 1
        return cls(1, 0, phone_sets, roots, n)

    def pdf(self, window: tuple[int, ...] | list[int], pdf_class: int) -> int:
        """The pdf of HMM state class ``pdf_class`` of the centre phone in ``window``."""
        node = self.roots[(self.set_of[window[self.central]], pdf_class)]
        while node.yes is not None:
            node = node.yes if window[node.position] in node.phones else node.no
        return node.pdf

    def pdfs_of_root(self, key: tuple[int, int]) -> list[int]:
        """All leaves under a root."""
        out, stack = [], [self.roots[key]]
        while stack:
            node = stack.pop()
            if node.yes is None:
                out.append(node.pdf)
            else:
                stack += [node.yes, node.no]
        return sorted(out)

    def save(self, path: Path) -> None:
        """JSON: context, phone sets, and every root's nodes."""
        blob = {
            "context_width": self.context_width,
            "central": self.central,
            "phone_sets": self.phone_sets,
            "num_pdfs": self.num_pdfs,
            "roots": [[s, k, node.to_json()] for (s, k), node in sorted(self.roots.items())],
        }
        path.write_text(json.dumps(blob))

    @classmethod
    def load(cls, path: Path) -> Tree:  # noqa: D102
        b = json.loads(path.read_text())
        roots = {(s, k): Node.from_json(n) for s, k, n in b["roots"]}
        return cls(b["context_width"], b["central"], b["phone_sets"], roots, b["num_pdfs"])

    def dump(self, phone_names: dict[int, str]) -> str:
        """Readable text: every root and its questions, indented, with leaf pdf ids."""
        pos_name = (
            {0: "centre"} if self.context_width == 1 else {0: "left", 1: "centre", 2: "right"}
        )
        lines = []

        def walk(node: Node, depth: int) -> None:
            pad = "  " * depth
            if node.yes is None:
                lines.append(f"{pad}-> pdf {node.pdf}")
                return
            names = " ".join(phone_names.get(p, str(p)) for p in sorted(node.phones))
            lines.append(f"{pad}{pos_name.get(node.position, node.position)} in {{{names}}}?")
            walk(node.yes, depth + 1)
            lines.append(f"{pad}else:")
            walk(node.no, depth + 1)

        for (s, k), node in sorted(self.roots.items()):
            names = " ".join(phone_names.get(p, str(p)) for p in self.phone_sets[s])
            lines.append(f"root [{names}] state {k}: {len(self.pdfs_of_root((s, k)))} leaves")
            walk(node, 1)
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- building
def gaussian_loglike(count: float, s: np.ndarray, s2: np.ndarray, var_floor: float) -> float:
    """Log-likelihood of data with these stats under its own ML diagonal Gaussian."""
    if count <= 0:
        return 0.0
    var = np.maximum(s2 / count - (s / count) ** 2, var_floor)
    return -0.5 * count * (len(s) * (math.log(2 * math.pi) + 1) + float(np.log(var).sum()))


@dataclass
class _Leaf:
    key: tuple[int, int]
    node: Node
    rows: np.ndarray  # indices into the stats table


def cluster_phone_questions(
    stats: dict[int, tuple[float, np.ndarray, np.ndarray]],
    phone_sets: list[list[int]],
    var_floor: float,
) -> list[frozenset[int]]:
    """Kaldi's cluster-phones: top-down 2-means of phone sets by Gaussian likelihood.

    ``stats``: phone set index -> (count, sum, sum of squares) pooled over its states. Every
    cluster found (and every single phone set) becomes a question, expanded to phone ids.
    """
    items = [i for i in range(len(phone_sets)) if i in stats and stats[i][0] > 0]
    questions: list[frozenset[int]] = []

    def members(idx: list[int]) -> frozenset[int]:
        return frozenset(p for i in idx for p in phone_sets[i])

    def split(idx: list[int]) -> None:
        questions.append(members(idx))
        if len(idx) < 2:
            return
        means = {i: stats[i][1] / stats[i][0] for i in idx}
        # seed the 2 clusters with the farthest pair, then 2-means by likelihood of pooled stats
        a, b = max(
            ((i, j) for i in idx for j in idx if i < j),
            key=lambda ij: float(((means[ij[0]] - means[ij[1]]) ** 2).sum()),
        )
        groups = [[a], [b]]
        for _ in range(10):
            pooled = [_pool(stats, g) for g in groups]
            new: list[list[int]] = [[], []]
            for i in idx:
                gains = [
                    gaussian_loglike(*_add(pooled[k], stats[i]), var_floor)
                    - gaussian_loglike(*pooled[k], var_floor)
                    for k in range(2)
                ]
                new[int(np.argmax(gains))].append(i)
            if not new[0] or not new[1] or new == groups:
                break
            groups = new
        if groups[0] and groups[1]:
            split(groups[0])
            split(groups[1])

    split(items)
    return list(dict.fromkeys(questions))


def _pool(stats: dict, idx: list[int]) -> tuple[float, np.ndarray, np.ndarray]:
    c = sum(stats[i][0] for i in idx)
    return c, sum(stats[i][1] for i in idx), sum(stats[i][2] for i in idx)


def _add(a: tuple, b: tuple) -> tuple[float, np.ndarray, np.ndarray]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def build_tree(
    windows: np.ndarray,
    pdf_classes: np.ndarray,
    counts: np.ndarray,
    sums: np.ndarray,
    sums2: np.ndarray,
    phone_sets: list[list[int]],
    questions: list[frozenset[int]],
    no_split_sets: set[int],
    max_leaves: int,
    min_count: float = 100.0,
    min_gain: float = 0.0,
    var_floor: float = 1e-3,
    positions: tuple[int, ...] = (0, 1, 2),
    num_classes_of_set: dict[int, int] | None = None,
) -> tuple[Tree, dict[str, float]]:
    """Grow a triphone tree (see module doc) from per-(window, pdf class) Gaussian stats.

    ``windows`` (N, 3) phone ids, ``pdf_classes`` (N,), ``counts`` (N,), ``sums``/``sums2``
    (N, D). ``num_classes_of_set`` adds a leaf for every (phone set, pdf class) even if unseen
    (a phone the training text never uses must still have a pdf). Returns the tree and totals:
    log-likelihood of the stats at the roots and at the leaves.
    """
    set_of = {p: i for i, s in enumerate(phone_sets) for p in s}
    centre_sets = np.array([set_of[w] for w in windows[:, 1]])

    def ll(rows: np.ndarray) -> float:
        return gaussian_loglike(
            counts[rows].sum(), sums[rows].sum(0), sums2[rows].sum(0), var_floor
        )

    leaves: list[_Leaf] = []
    roots: dict[tuple[int, int], Node] = {}  # root nodes turn into questions as they split
    keys = {(int(s), int(k)) for s, k in zip(centre_sets, pdf_classes, strict=True)}
    for set_idx, n in (num_classes_of_set or {}).items():
        keys |= {(set_idx, k) for k in range(n)}
    for key in sorted(keys):
        rows = np.nonzero((centre_sets == key[0]) & (pdf_classes == key[1]))[0]
        roots[key] = Node()
        leaves.append(_Leaf(key, roots[key], rows))
    root_ll = sum(ll(leaf.rows) for leaf in leaves)
    qmasks = [np.array([p in q for p in range(max(set_of) + 1)]) for q in questions]

    def best_split(leaf: _Leaf) -> tuple[float, int, int]:
        if leaf.key[0] in no_split_sets or counts[leaf.rows].sum() < 2 * min_count:
            return -math.inf, -1, -1
        base = ll(leaf.rows)
        best = (-math.inf, -1, -1)
        for pos in positions:
            ctx = windows[leaf.rows, pos]
            for qi, mask in enumerate(qmasks):
                yes = mask[ctx]
                if yes.all() or not yes.any():
                    continue
                cy = counts[leaf.rows[yes]].sum()
                cn = counts[leaf.rows[~yes]].sum()
                if cy < min_count or cn < min_count:
                    continue
                gain = ll(leaf.rows[yes]) + ll(leaf.rows[~yes]) - base
                if gain > best[0]:
                    best = (gain, pos, qi)
        return best

    candidates = [best_split(leaf) for leaf in leaves]
    while len(leaves) < max_leaves:
        i = int(np.argmax([c[0] for c in candidates]))
        gain, pos, qi = candidates[i]
        if gain <= min_gain or not math.isfinite(gain):
            break
        leaf = leaves[i]
        yes = qmasks[qi][windows[leaf.rows, pos]]
        leaf.node.position, leaf.node.phones = pos, questions[qi]
        leaf.node.yes, leaf.node.no = Node(), Node()
        left = _Leaf(leaf.key, leaf.node.yes, leaf.rows[yes])
        right = _Leaf(leaf.key, leaf.node.no, leaf.rows[~yes])
        leaves[i] = left
        candidates[i] = best_split(left)
        leaves.append(right)
        candidates.append(best_split(right))

    # pdf ids in root order, then by first stats row: the same stats give the same numbering
    order = sorted(
        range(len(leaves)),
        key=lambda j: (leaves[j].key, int(leaves[j].rows.min(initial=len(counts)))),
    )
    for pdf, j in enumerate(order):
        leaves[j].node.pdf = pdf
    totals = {
        "root_loglike": root_ll,
        "leaf_loglike": sum(ll(leaf.rows) for leaf in leaves),
        "frames": float(counts.sum()),
        "leaves": float(len(leaves)),
    }
    return Tree(3, 1, phone_sets, roots, len(leaves)), totals
