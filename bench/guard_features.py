"""The learned layer's two feature views for training (guard3): the MiniLM embedding (dense, 384) and the
hashed word and character n-grams of `chains/guard/ngrams.py` (sparse, `2 ** BITS` buckets per view).

The n-grams enter the logistic regression as two numbers, not 65,536 weights each: per view, the weighted
mean over a text's n-grams of log((attack mass + ALPHA) / (benign mass + ALPHA)) (naive Bayes log odds with
the same class and family weights as the regression). A fit is then two `bincount`s and a 386-dimensional
Newton solve: cheap enough for the hundreds of fits a leave-one-family-out evaluation makes. So that the
regression learns how far to trust the n-gram scores on a family it has not seen, the scores it is fitted on
are out of fold by family (`INNER_FOLDS` groups, seeded): a training text is scored by log odds counted
without its family. The shipped log odds are counted on every training text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from chains.guard.learned import embedding_text
from chains.guard.ngrams import BITS, views

__all__ = ["ALPHA", "INNER_FOLDS", "Csr", "Features", "build_features", "fit_two_view", "predict_two_view"]

ALPHA = 1e-3  # additive smoothing of each bucket's mass (a class's buckets sum to 0.5); bench/guard_select.py
INNER_FOLDS = 4
SEED = 17


@dataclass(frozen=True)
class Csr:
    """One n-gram view of n texts: row i's buckets are idx[indptr[i]:indptr[i + 1]]."""

    indptr: np.ndarray
    idx: np.ndarray
    vals: np.ndarray

    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))

    def take(self, mask: np.ndarray) -> Csr:
        keep = mask[self.rows()]
        counts = np.diff(self.indptr)[mask]
        return Csr(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), self.idx[keep], self.vals[keep])

    def score(self, logodds: np.ndarray) -> np.ndarray:
        """Each row's weighted mean log odds (its values sum to 1; an empty row scores 0)."""
        n = len(self.indptr) - 1
        return np.bincount(self.rows(), weights=self.vals * logodds[self.idx], minlength=n)

    def mass(self, w: np.ndarray, size: int) -> np.ndarray:
        """Each bucket's total of row weight x value."""
        return np.bincount(self.idx, weights=self.vals * w[self.rows()], minlength=size)


@dataclass(frozen=True)
class Features:
    """n samples: `emb` (n, 384), the word and character views, and each sample's family (for inner folds)."""

    emb: np.ndarray
    grams: tuple[Csr, ...]
    families: np.ndarray
    bits: int = BITS

    def __len__(self) -> int:
        return int(self.emb.shape[0])

    def __getitem__(self, mask: np.ndarray) -> Features:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            full = np.zeros(len(self), dtype=bool)
            full[mask] = True
            mask = full
        return Features(self.emb[mask], tuple(g.take(mask) for g in self.grams), self.families[mask], self.bits)


def build_features(texts: Sequence[str], emb: np.ndarray, families: Sequence[str], *, bits: int = BITS) -> Features:
    """Both views of `texts` (raw texts; `emb` their cached embeddings, `bench/guard_embed.py`).

    Args:
        texts: raw texts, normalised here as `screen()` does.
        emb: (n, 384) embeddings of the same texts.
        families: each text's family (the inner folds group by it).
        bits: the n-gram buckets are `2 ** bits`.
    """
    per_text = [views(embedding_text(t), bits) for t in texts]
    grams = []
    for v in range(2):
        parts = [p[v] for p in per_text]
        indptr = np.concatenate([[0], np.cumsum([len(i) for i, _ in parts])]).astype(np.int64)
        idx = np.concatenate([i for i, _ in parts]).astype(np.int64)
        vals = np.concatenate([x for _, x in parts]).astype(np.float64)
        grams.append(Csr(indptr, idx, vals))
    return Features(np.asarray(emb, dtype=np.float64), tuple(grams), np.asarray(families), bits)


def logodds(g: Csr, y: np.ndarray, w: np.ndarray, size: int, alpha: float = ALPHA) -> np.ndarray:
    """Per bucket: log((attack mass + alpha) / (benign mass + alpha)), each class's weights scaled to 0.5."""
    wa = np.where(y > 0, w, 0.0)
    wb = np.where(y > 0, 0.0, w)
    wa = wa * (0.5 / max(wa.sum(), 1e-12))
    wb = wb * (0.5 / max(wb.sum(), 1e-12))
    return np.log((g.mass(wa, size) + alpha) / (g.mass(wb, size) + alpha))


def _inner_scores(f: Features, y: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """(n, views) n-gram scores of the training texts, each from log odds counted without its family's fold."""
    fams = sorted(set(f.families.tolist()))
    order = np.random.default_rng(SEED).permutation(len(fams))
    fold_of = {fams[j]: i % INNER_FOLDS for i, j in enumerate(order)}
    fold = np.array([fold_of[x] for x in f.families.tolist()])
    size = 1 << f.bits
    out = np.zeros((len(f), len(f.grams)))
    for k in range(INNER_FOLDS):
        test = fold == k
        if not test.any():
            continue
        for v, g in enumerate(f.grams):
            lo = logodds(g.take(~test), y[~test], w[~test], size, alpha)
            out[test, v] = g.take(test).score(lo)
    return out


Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, float]]


def fit_two_view(f: Features, y: np.ndarray, w: np.ndarray, dense_fit: Fitter, *,
                 alpha: float = ALPHA) -> tuple[np.ndarray, float]:
    """Fits the two-view model; returns (coefficients, bias), the coefficients laid out as
    [384 embedding weights, one weight per n-gram view, then each view's `2 ** bits` log odds].

    Args:
        f: the features.
        y: (n,) labels 0/1.
        w: (n,) sample weights (summing to 1).
        dense_fit: the logistic regression over dense features (`guard_learn.fit`).
        alpha: the log odds' smoothing.
    """
    inner = _inner_scores(f, y, w, alpha)
    coef, bias = dense_fit(np.hstack([f.emb, inner]), y, w)
    size = 1 << f.bits
    tables = [logodds(g, y, w, size, alpha) for g in f.grams]
    return np.concatenate([coef, *tables]), bias


def predict_two_view(f: Features, coef: np.ndarray, bias: float) -> np.ndarray:
    """P(attack) for each sample from `fit_two_view`'s coefficients."""
    d, nv, size = f.emb.shape[1], len(f.grams), 1 << f.bits
    z = f.emb @ coef[:d] + bias
    for v, g in enumerate(f.grams):
        table = coef[d + nv + v * size : d + nv + (v + 1) * size]
        z = z + coef[d + v] * g.score(table)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
