"""Diagonal-covariance GMMs, one per pdf (senone), trained by Viterbi EM as in Kaldi's gmm-est.

All pdfs' Gaussians live in flat arrays so the log-likelihoods of every pdf on a whole utterance
are one matrix product (torch, CPU or GPU). Mixtures grow by splitting (Kaldi's ``--mix-up``): the
target total is shared among pdfs in proportion to ``count ** 0.2`` and each split perturbs the
heaviest component's mean by +-0.2 standard deviations.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOG_2PI = math.log(2.0 * math.pi)


class GmmSet:
    """``num_pdfs`` diagonal GMMs over ``dim``-d features."""

    def __init__(
        self,
        means: np.ndarray,
        variances: np.ndarray,
        weights: np.ndarray,
        owner: np.ndarray,
        num_pdfs: int,
    ) -> None:
        self.means = means.astype(np.float64)  # (G, D)
        self.vars = variances.astype(np.float64)  # (G, D)
        self.weights = weights.astype(np.float64)  # (G,), sums to 1 within each pdf
        self.owner = owner.astype(np.int64)  # (G,) pdf of each Gaussian
        self.num_pdfs = num_pdfs
        self._cache: tuple | None = None

    def __getstate__(self) -> dict:  # the torch cache is rebuilt where it is used
        return {**self.__dict__, "_cache": None}

    @classmethod
    def single(cls, mean: np.ndarray, var: np.ndarray, num_pdfs: int) -> GmmSet:
        """Every pdf one Gaussian at the global mean and variance (Kaldi's gmm-init-mono)."""
        return cls(
            np.tile(mean, (num_pdfs, 1)),
            np.tile(var, (num_pdfs, 1)),
            np.ones(num_pdfs),
            np.arange(num_pdfs),
            num_pdfs,
        )

    @property
    def dim(self) -> int:  # noqa: D102
        return self.means.shape[1]

    def num_gauss(self) -> int:  # noqa: D102
        return len(self.owner)

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        if self._cache is None:
            inv = 1.0 / self.vars
            gconst = np.log(self.weights) - 0.5 * (
                self.dim * LOG_2PI + np.log(self.vars).sum(1) + (self.means**2 * inv).sum(1)
            )
            # (P, K) table of Gaussian indices per pdf, padded with index G (a -inf column)
            per_pdf = np.bincount(self.owner, minlength=self.num_pdfs)
            table = np.full((self.num_pdfs, max(1, per_pdf.max())), len(self.owner))
            slot = np.zeros(self.num_pdfs, dtype=np.int64)
            for g, p in enumerate(self.owner):
                table[p, slot[p]] = g
                slot[p] += 1
            self._cache = (
                torch.from_numpy((self.means * inv).T.copy()).float(),
                torch.from_numpy(-0.5 * inv.T.copy()).float(),
                torch.from_numpy(gconst).float(),
                torch.from_numpy(table),
            )
        return self._cache

    def gauss_loglikes(self, feats: np.ndarray) -> torch.Tensor:
        """(T, G) log (weight * N(x; mean, var)) of every Gaussian."""
        mu_inv, neg_half_inv, gconst, _ = self._tensors()
        x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
        return gconst + x @ mu_inv + (x * x) @ neg_half_inv

    def loglikes(self, feats: np.ndarray, gauss_ll: torch.Tensor | None = None) -> np.ndarray:
        """(T, P) log-likelihood of each frame under each pdf (from ``gauss_ll`` if given)."""
        _, _, _, table = self._tensors()
        g = self.gauss_loglikes(feats) if gauss_ll is None else gauss_ll
        g = torch.cat([g, torch.full((len(g), 1), -math.inf)], dim=1)
        return torch.logsumexp(g[:, table], dim=2).numpy()

    # ------------------------------------------------------------------ estimation
    def new_stats(self) -> dict[str, np.ndarray]:
        """Zeroed accumulators (occupancy, first and second order) per Gaussian."""
        g, d = self.means.shape
        return {"occ": np.zeros(g), "x": np.zeros((g, d)), "x2": np.zeros((g, d))}

    def accumulate(
        self, stats: dict, feats: np.ndarray, pdfs: np.ndarray, gauss_ll: torch.Tensor | None = None
    ) -> float:
        """Add an utterance's stats given its frame-level pdf alignment; returns its log-lik.

        Only the Gaussians of each frame's own pdf are evaluated (a (T, K) table, K the most
        components of any pdf); ``gauss_ll`` reuses :meth:`gauss_loglikes` when already computed.
        """
        _, _, _, table = self._tensors()
        g = self.gauss_loglikes(feats) if gauss_ll is None else gauss_ll
        g = torch.cat([g, torch.full((len(g), 1), -math.inf)], dim=1)
        idx = table[torch.from_numpy(pdfs)]  # (T, K) Gaussian ids, G = padding
        sub = torch.gather(g, 1, idx)
        frame_ll = torch.logsumexp(sub, dim=1)
        post = torch.exp(sub - frame_ll[:, None]).double().numpy()
        idx_np = idx.numpy()
        valid = idx_np < len(self.owner)
        x = feats.astype(np.float64)
        rows = np.nonzero(valid)
        gids, w = idx_np[rows], post[rows]
        xs = x[rows[0]]
        np.add.at(stats["occ"], gids, w)
        np.add.at(stats["x"], gids, w[:, None] * xs)
        np.add.at(stats["x2"], gids, w[:, None] * xs * xs)
        return float(frame_ll.sum())

    def update(self, stats: dict, var_floor: np.ndarray, min_count: float = 3.0) -> None:
        """ML re-estimation; Gaussians with under ``min_count`` frames keep their parameters."""
        occ = stats["occ"]
        ok = occ >= min_count
        mean = stats["x"][ok] / occ[ok, None]
        var = stats["x2"][ok] / occ[ok, None] - mean**2
        self.means[ok] = mean
        self.vars[ok] = np.maximum(var, var_floor)
        pdf_occ = np.bincount(self.owner, weights=occ, minlength=self.num_pdfs)
        has = pdf_occ[self.owner] > 0
        self.weights[has] = np.maximum(occ[has] / pdf_occ[self.owner][has], 1e-5)
        self.weights /= np.bincount(self.owner, weights=self.weights)[self.owner]
        self._cache = None

    def mixup(
        self, target: int, pdf_counts: np.ndarray, power: float = 0.2, perturb: float = 0.2
    ) -> None:
        """Split Gaussians until about ``target`` in total (see module doc)."""
        alloc = pdf_counts**power
        want = np.maximum(1, np.round(target * alloc / max(alloc.sum(), 1e-12))).astype(int)
        have = np.bincount(self.owner, minlength=self.num_pdfs)
        means, vars_ = list(self.means), list(self.vars)
        weights, owner = list(self.weights), list(self.owner)
        members: dict[int, list[int]] = {}
        for g, p in enumerate(owner):
            members.setdefault(int(p), []).append(g)
        for pdf in np.nonzero(want > have)[0]:
            # at least 20 frames per component, or the split Gaussians only fit noise
            n_new = min(want[pdf], int(pdf_counts[pdf] // 20)) - have[pdf]
            for _ in range(max(0, n_new)):
                g = max(members[int(pdf)], key=lambda i: weights[i])
                offset = perturb * np.sqrt(vars_[g])
                weights[g] /= 2
                means.append(means[g] - offset)
                means[g] = means[g] + offset
                vars_.append(vars_[g].copy())
                weights.append(weights[g])
                owner.append(int(pdf))
                members[int(pdf)].append(len(owner) - 1)
        self.means, self.vars = np.array(means), np.array(vars_)
        self.weights, self.owner = np.array(weights), np.array(owner, dtype=np.int64)
        self._cache = None

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:  # noqa: D102
        return {
            "means": self.means,
            "vars": self.vars,
            "weights": self.weights,
            "owner": self.owner,
            "num_pdfs": np.array(self.num_pdfs),
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> GmmSet:  # noqa: D102
        return cls(d["means"], d["vars"], d["weights"], d["owner"], int(d["num_pdfs"]))
