"""GMM-HMM training: flat-start monophones, then a triphone tree and senone GMMs (stage 4).

The recipe of Kaldi's ``steps/train_mono.sh`` and ``steps/train_deltas.sh`` on MFCC+deltas:

- monophones: every pdf starts at the global mean/variance, the first statistics come from an
  equal alignment of each training graph, then EM iterations re-align (Viterbi) on a schedule and
  grow the Gaussians towards ``totgauss``;
- triphones: tree statistics from the monophone alignment, questions by clustering phones, a tree
  of ``num_leaves`` senones, GMMs initialised from the leaves' statistics, the monophone
  alignment converted to the tree's pdfs, then EM iterations with re-alignment as above.

An utterance that cannot be aligned (e.g. too short for its phone sequence, or a transcript the
lexicon cannot spell) is skipped, named in the log and counted; it gets no targets.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path

import kaldifst
import numpy as np
import torch
from tqdm import tqdm

from espnet_distill.align.gmm import GmmSet
from espnet_distill.align.hmm import (
    Alignment,
    TransitionModel,
    align_utterance,
    phone_segments,
    training_graph,
)
from espnet_distill.align.tree import ARPABET_CLASSES, Tree, build_tree, cluster_phone_questions
from espnet_distill.lang.lexicon_fst import read_symbol_table
from espnet_distill.lang.phone_lang import base_phone
from espnet_distill.lang.topology import Topology, read_topo
from espnet_distill.utils import atomic_output

log = logging.getLogger(__name__)


@dataclass
class Lang:
    """What alignment needs from a phone lang dir."""

    phones: dict[str, int]
    words: dict[str, int]
    topology: Topology
    phone_sets: list[list[int]]
    silence_sets: set[int]
    L: kaldifst.StdVectorFst

    @classmethod
    def load(cls, lang_dir: Path) -> Lang:  # noqa: D102
        phones = read_symbol_table(lang_dir / "phones.txt")
        sets = [
            [phones[p] for p in line.split()]
            for line in (lang_dir / "phones" / "sets.txt").read_text().splitlines()
        ]
        silence = {phones[p] for p in (lang_dir / "phones" / "silence.txt").read_text().split()}
        L = kaldifst.StdVectorFst.read(str(lang_dir / "L.fst"))
        kaldifst.arcsort(L, sort_type="olabel")
        return cls(
            phones,
            read_symbol_table(lang_dir / "words.txt"),
            read_topo(lang_dir / "topo"),
            sets,
            {i for i, s in enumerate(sets) if s[0] in silence},
            L,
        )

    @property
    def real_phones(self) -> list[int]:
        """Phones with an HMM (not epsilon, not disambiguation symbols)."""
        return [p for s in self.phone_sets for p in s]

    def word_ids(self, words: list[str], oov: str = "<unk>") -> tuple[list[int], int]:
        """Ids of a transcript, OOVs mapped to ``oov``; also the number of OOVs."""
        ids = [self.words.get(w, -1) for w in words]
        n_oov = sum(i < 0 for i in ids)
        return [i if i >= 0 else self.words[oov] for i in ids], n_oov


@dataclass
class GmmSystem:
    """A trained aligner: tree, transition model, GMMs."""

    tree: Tree
    tm: TransitionModel
    gmm: GmmSet
    log: list[dict] = field(default_factory=list)

    def save(self, out_dir: Path) -> None:
        """``tree.json``, ``final.npz`` (GMM + transition log-probs), ``train_log.tsv``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.tree.save(out_dir / "tree.json")
        np.savez(out_dir / "final.npz", **self.gmm.state_dict(), **self.tm.state_dict())
        if self.log:
            keys = list(self.log[0])
            rows = ["\t".join(keys)] + [
                "\t".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
                for r in self.log
            ]
            (out_dir / "train_log.tsv").write_text("\n".join(rows) + "\n")

    @classmethod
    def load(cls, out_dir: Path, lang: Lang) -> GmmSystem:  # noqa: D102
        tree = Tree.load(out_dir / "tree.json")
        blob = np.load(out_dir / "final.npz")
        tm = TransitionModel(lang.topology, tree, lang.real_phones)
        tm.log_probs = blob["log_probs"]
        return cls(tree, tm, GmmSet.from_state_dict(blob))


_JOB_DATA: dict = {}  # lang and utterances, shared with forked job processes


def _iteration_job(args: tuple) -> tuple:
    """One job's share of an EM iteration: (re-)align, then accumulate GMM/transition stats."""
    system, uids, realign, given, accumulate = args
    torch.set_num_threads(1)
    lang, utts = _JOB_DATA["lang"], _JOB_DATA["utts"]
    stats = system.gmm.new_stats()
    tid_counts = np.zeros(system.tm.num_tids + 1)
    alis: dict[str, Alignment] = {}
    failed: dict[str, str] = {}
    total_ll, frames = 0.0, 0
    for uid in uids:
        word_ids, feats = utts[uid]
        gauss_ll = system.gmm.gauss_loglikes(feats)
        if realign:
            try:
                graph = training_graph(lang.L, word_ids, system.tm, system.tree)
            except ValueError as err:
                failed[uid] = str(err)
                continue
            ali = align_utterance(graph, system.gmm.loglikes(feats, gauss_ll), system.tm)
            if ali is None:
                failed[uid] = f"no alignment reached the end ({len(feats)} frames)"
                continue
        else:
            ali = given[uid]
        alis[uid] = ali
        if not accumulate:
            continue
        total_ll += system.gmm.accumulate(stats, feats, system.tm.tid_pdf[ali.tids], gauss_ll)
        tid_counts += np.bincount(ali.tids, minlength=len(tid_counts))
        frames += len(feats)
    return alis, failed, stats, tid_counts, total_ll, frames


class Aligner:
    """The training utterances and ``nj`` parallel jobs over them (Kaldi's JOB=1:nj)."""

    def __init__(
        self, lang: Lang, utts: dict[str, tuple[list[int], np.ndarray]], nj: int = 1
    ) -> None:
        self.lang = lang
        self.utts = utts  # id -> (word ids, features)
        self.nj = max(1, nj)
        self.failed: dict[str, str] = {}

    def iteration(
        self,
        system: GmmSystem,
        realign: bool,
        alis: dict[str, Alignment] | None,
        desc: str,
        accumulate: bool = True,
    ) -> tuple[dict[str, Alignment], dict, np.ndarray, float, int]:
        """Alignments (new if ``realign``) and summed stats of one EM iteration (none if not
        ``accumulate``: alignment only)."""
        uids = list(self.utts) if realign else [u for u in self.utts if u in (alis or {})]
        chunks = [uids[j :: self.nj] for j in range(self.nj)]
        jobs = [
            (system, c, realign, None if realign else {u: alis[u] for u in c}, accumulate)
            for c in chunks
        ]
        _JOB_DATA.update(lang=self.lang, utts=self.utts)
        if self.nj == 1:
            results = [_iteration_job(jobs[0])]
        else:
            with multiprocessing.get_context("fork").Pool(self.nj) as pool:
                results = list(
                    tqdm(
                        pool.imap(_iteration_job, jobs),
                        total=len(jobs),
                        desc=desc,
                        leave=False,
                        disable=None,
                    )
                )
        out_alis: dict[str, Alignment] = {}
        stats = system.gmm.new_stats()
        tid_counts = np.zeros(system.tm.num_tids + 1)
        total_ll, frames = 0.0, 0
        for job_alis, failed, job_stats, counts, ll, n in results:
            out_alis.update(job_alis)
            for uid, why in failed.items():
                if uid not in self.failed:
                    log.warning("%s: not aligned: %s", uid, why)
                self.failed[uid] = why
            for k in stats:
                stats[k] += job_stats[k]
            tid_counts += counts
            total_ll += ll
            frames += n
        return out_alis, stats, tid_counts, total_ll, frames

    def equal_align_all(self, system: GmmSystem, seed: int = 0) -> dict[str, Alignment]:
        """Kaldi's align-equal-compiled: a path of the right length with equal-ish segments."""
        out = {}
        for n, (uid, (word_ids, feats)) in enumerate(self.utts.items()):
            try:
                graph = training_graph(self.lang.L, word_ids, system.tm, system.tree)
            except ValueError as err:
                self.failed[uid] = str(err)
                log.warning("%s: not aligned: %s", uid, err)
                continue
            ok, path = kaldifst.equal_align(graph, len(feats), seed + n)
            if not ok:
                self.failed[uid] = f"too short ({len(feats)} frames) for its phone sequence"
                log.warning("%s: not aligned: %s", uid, self.failed[uid])
                continue
            _, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
            out[uid] = Alignment(np.array(tids), 0.0)
        return out


def _pdf_counts(system: GmmSystem, alis: dict[str, Alignment]) -> np.ndarray:
    counts = np.zeros(system.tree.num_pdfs)
    for ali in alis.values():
        counts += np.bincount(system.tm.tid_pdf[ali.tids], minlength=len(counts))
    return counts


def train_gmm_iterations(
    system: GmmSystem,
    aligner: Aligner,
    alis: dict[str, Alignment],
    num_iters: int,
    realign_iters: set[int],
    totgauss: int,
    var_floor: np.ndarray,
    name: str,
) -> dict[str, Alignment]:
    """EM iterations with Viterbi re-alignment and Gaussian growth; returns the last alignment."""
    start_gauss = system.gmm.num_gauss()
    # one log line per iteration; tqdm only on a terminal (disable=None)
    for it in tqdm(range(1, num_iters + 1), desc=f"{name} GMM-HMM", leave=False, disable=None):
        realign = it in realign_iters
        alis, stats, tid_counts, total_ll, frames = aligner.iteration(
            system, realign, alis, f"{name} iter {it}"
        )
        avg_ll = total_ll / max(frames, 1)
        system.gmm.update(stats, var_floor)
        system.tm.update(tid_counts)
        target = start_gauss + (totgauss - start_gauss) * it // max(1, num_iters - 1)
        if it < num_iters and target > system.gmm.num_gauss():
            system.gmm.mixup(min(target, totgauss), _pdf_counts(system, alis))
        system.log.append(
            {
                "system": name,
                "iter": it,
                "realign": int(realign),
                "avg_loglike": avg_ll,
                "frames": frames,
                "utts": len(alis),
                "gaussians": system.gmm.num_gauss(),
            }
        )
        log.info(
            "%s iter %d%s: avg log-lik %.3f over %d frames of %d utts, %d Gaussians",
            name,
            it,
            " (realigned)" if realign else "",
            avg_ll,
            frames,
            len(alis),
            system.gmm.num_gauss(),
        )
    return alis


def global_stats(utts: dict[str, tuple[list[int], np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of all frames."""
    x = np.concatenate([f for _, f in utts.values()]).astype(np.float64)
    return x.mean(0), x.var(0)


def train_mono(
    lang: Lang, aligner: Aligner, num_iters: int = 25, totgauss: int = 1000, seed: int = 0
) -> tuple[GmmSystem, dict[str, Alignment]]:
    """Flat-start monophone system (see module doc); returns it and its final alignment."""
    pdf_classes = {p: lang.topology.num_pdf_classes(p) for p in lang.real_phones}
    tree = Tree.monophone(lang.phone_sets, pdf_classes)
    tm = TransitionModel(lang.topology, tree, lang.real_phones)
    mean, var = global_stats(aligner.utts)
    system = GmmSystem(tree, tm, GmmSet.single(mean, var, tree.num_pdfs))
    var_floor = 0.01 * var
    alis = aligner.equal_align_all(system, seed)
    realign = set(range(1, 11)) | set(range(12, num_iters + 1, 2))
    alis = train_gmm_iterations(
        system, aligner, alis, num_iters, realign, totgauss, var_floor, "mono"
    )
    return system, alis


def windows_of(ali: Alignment, tm: TransitionModel) -> np.ndarray:
    """(T, 3) triphone window (left, centre, right phone; 0 at the edges) of every frame."""
    segs = phone_segments(ali.tids, tm)
    phones = [0] + [p for p, _, _ in segs] + [0]
    out = np.zeros((len(ali.tids), 3), dtype=np.int64)
    for i, (_, start, end) in enumerate(segs):
        out[start:end] = phones[i : i + 3]
    return out


def tree_stats(system: GmmSystem, alis: dict[str, Alignment], aligner: Aligner) -> tuple:
    """Single-Gaussian stats per seen (window, pdf class) (Kaldi's acc-tree-stats)."""
    acc: dict[tuple, list] = {}
    topo = aligner.lang.topology
    for uid, ali in alis.items():
        feats = aligner.utts[uid][1].astype(np.float64)
        win = windows_of(ali, system.tm)
        classes = [
            topo.states(p)[s].pdf_class
            for p, s in zip(
                system.tm.tid_phone[ali.tids], system.tm.tid_state[ali.tids], strict=True
            )
        ]
        keys = [(*w, c) for w, c in zip(map(tuple, win), classes, strict=True)]
        for t, key in enumerate(keys):
            entry = acc.get(key)
            if entry is None:
                entry = acc[key] = [0.0, np.zeros(feats.shape[1]), np.zeros(feats.shape[1])]
            entry[0] += 1
            entry[1] += feats[t]
            entry[2] += feats[t] ** 2
    keys = sorted(acc)
    windows = np.array([k[:3] for k in keys])
    classes = np.array([k[3] for k in keys])
    counts = np.array([acc[k][0] for k in keys])
    sums = np.array([acc[k][1] for k in keys])
    sums2 = np.array([acc[k][2] for k in keys])
    return windows, classes, counts, sums, sums2


def train_tri(
    lang: Lang,
    aligner: Aligner,
    mono: GmmSystem,
    mono_alis: dict[str, Alignment],
    num_leaves: int = 500,
    totgauss: int = 5000,
    num_iters: int = 20,
    use_phone_classes: bool = True,
    phone_names: dict[int, str] | None = None,
) -> tuple[GmmSystem, dict[str, Alignment], dict[str, float]]:
    """Triphone tree + senone GMMs from the monophone alignment (see module doc)."""
    windows, classes, counts, sums, sums2 = tree_stats(mono, mono_alis, aligner)
    mean, var = global_stats(aligner.utts)
    var_floor = 0.01 * var
    set_of = {p: i for i, s in enumerate(lang.phone_sets) for p in s}
    per_set: dict[int, tuple] = {}
    for w, c, s, s2 in zip(windows[:, 1], counts, sums, sums2, strict=True):
        i = set_of[int(w)]
        prev = per_set.get(i, (0.0, 0.0, 0.0))
        per_set[i] = (prev[0] + c, prev[1] + s, prev[2] + s2)
    nonsil = {i: v for i, v in per_set.items() if i not in lang.silence_sets}
    questions = cluster_phone_questions(nonsil, lang.phone_sets, float(var_floor.mean()))
    questions.append(frozenset(p for i in lang.silence_sets for p in lang.phone_sets[i]))
    if use_phone_classes and phone_names:
        base = {i: base_phone(phone_names[s[0]]) for i, s in enumerate(lang.phone_sets)}
        for members in ARPABET_CLASSES.values():
            names = set(members.split())
            ids = frozenset(p for i, s in enumerate(lang.phone_sets) if base[i] in names for p in s)
            if ids:
                questions.append(ids)
    questions = list(dict.fromkeys(questions))
    num_classes = {i: lang.topology.num_pdf_classes(s[0]) for i, s in enumerate(lang.phone_sets)}
    tree, totals = build_tree(
        windows,
        classes,
        counts,
        sums,
        sums2,
        lang.phone_sets,
        questions,
        lang.silence_sets,
        num_leaves,
        var_floor=float(var_floor.mean()),
        num_classes_of_set=num_classes,
    )
    totals["questions"] = float(len(questions))
    log.info(
        "tree: %d leaves from %d questions; stats log-lik %.1f at roots -> %.1f at leaves",
        tree.num_pdfs,
        len(questions),
        totals["root_loglike"],
        totals["leaf_loglike"],
    )

    # GMMs from the leaves' pooled statistics (Kaldi's gmm-init-model)
    leaf_of_row = np.array(
        [tree.pdf(tuple(w), int(c)) for w, c in zip(windows, classes, strict=True)]
    )
    occ = np.bincount(leaf_of_row, weights=counts, minlength=tree.num_pdfs)
    s1 = np.zeros((tree.num_pdfs, sums.shape[1]))
    s2 = np.zeros_like(s1)
    np.add.at(s1, leaf_of_row, sums)
    np.add.at(s2, leaf_of_row, sums2)
    safe = np.maximum(occ, 1)[:, None]
    leaf_mean = np.where(occ[:, None] > 0, s1 / safe, mean)
    leaf_var = np.where(occ[:, None] > 0, np.maximum(s2 / safe - leaf_mean**2, var_floor), var)
    gmm = GmmSet(
        leaf_mean, leaf_var, np.ones(tree.num_pdfs), np.arange(tree.num_pdfs), tree.num_pdfs
    )
    tm = TransitionModel(lang.topology, tree, lang.real_phones)
    system = GmmSystem(tree, tm, gmm)

    # convert the monophone alignment to the tree's pdfs (Kaldi's convert-ali)
    alis = {}
    for uid, ali in mono_alis.items():
        win = windows_of(ali, mono.tm)
        new = np.empty_like(ali.tids)
        for t, tid in enumerate(ali.tids):
            phone, state = int(mono.tm.tid_phone[tid]), int(mono.tm.tid_state[tid])
            pdf = tree.pdf(tuple(win[t]), lang.topology.states(phone)[state].pdf_class)
            new[t] = tm.tid(phone, state, pdf, int(mono.tm.tid_trans[tid]))
        alis[uid] = Alignment(new, ali.cost)
    realign = {10, 15, num_iters} if num_iters >= 15 else {num_iters // 2, num_iters}
    alis = train_gmm_iterations(
        system, aligner, alis, num_iters, realign, totgauss, var_floor, "tri"
    )
    return system, alis, totals


def save_alignments(alis: dict[str, Alignment], path: Path) -> None:
    """``ali.npz``: the transition-id sequence of every aligned utterance."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{uid: a.tids for uid, a in alis.items()})


def load_alignments(path: Path) -> dict[str, Alignment]:
    """What :func:`save_alignments` wrote (the log-likelihoods are not kept: 0)."""
    blob = np.load(path)
    return {uid: Alignment(blob[uid], 0.0) for uid in blob.files}
