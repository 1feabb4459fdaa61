"""The learned layer's bags for training and evaluation (guard4): each text's whole-text embedding and the
embeddings of its sentence windows (`chains/guard/windows.py`, cached by `bench/guard_embed.py`), and the
fits and pooled scores over them that `bench/guard_window_select.py` compares and `bench/guard_train.py` /
`bench/guard_eval.py` use for the configuration that ships (`guard_learn.WINDOWS`).

Configurations (`fit_variant`):

- `emb`: logistic regression on whole texts, a text scored whole (what shipped before guard4);
- `max`: fitted on whole texts, scored as the max over the text and its windows;
- `neg`: also fitted on the windows of benign texts as negatives (a benign text's windows together weigh
  what it weighs), scored as the max;
- `mil`: `neg`, then refitted with each training attack's best window as a positive (multiple instance);
- suffix `-data`: windows pooled only for data sources (listing, describe), a chat turn scored whole (what
  `screen()` does: `GuardConfig.window_sources`);
- `mlp:H`: (route 2) a one-hidden-layer network of H tanh units on the whole-text embedding, seeded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_embed import embed_all  # noqa: E402
from bench.guard_learn import SEED, choose_thresholds, detected, fit, predict, weights  # noqa: E402
from bench.guard_sources import Sample  # noqa: E402
from bench.guard_windows import all_windows  # noqa: E402
from chains.guard.models import GuardConfig  # noqa: E402

__all__ = ["PRETRAINED_VIEWS", "Bags", "augment", "fit_coef", "fit_variant", "held_out", "load_bags", "oof",
           "pool_of"]

Scorer = Callable[[np.ndarray], np.ndarray]


class Bags:
    """Whole-text embeddings `x` (n, 384) and window embeddings `w` (m, 384) owned by texts `owner` (m,)."""

    def __init__(self, x: np.ndarray, w: np.ndarray, owner: np.ndarray, data: np.ndarray) -> None:
        self.x, self.w, self.owner = x, w, owner
        self.data = data  # (n,) the text comes from a data source (not a chat turn)

    def pooled(self, scorer: Scorer, idx: np.ndarray, pool: str = "max") -> np.ndarray:
        """The pooled probability of texts `idx` (indices)."""
        p = scorer(self.x[idx])
        if pool == "text":
            return p
        pos = {int(i): k for k, i in enumerate(idx)}
        sel = np.isin(self.owner, idx)
        if pool == "data":
            sel &= self.data[self.owner]
        if sel.any():
            pw = scorer(self.w[sel])
            where = np.array([pos[int(o)] for o in self.owner[sel]])
            np.maximum.at(p, where, pw)
        return p


def _lr_scorer(coef: np.ndarray, bias: float) -> Scorer:
    return lambda e: predict(e, coef, bias)


def fit_variant(cfg: str, bags: Bags, samples: list[Sample], idx: np.ndarray) -> Scorer:
    """Fits configuration `cfg` on texts `idx`; returns the scorer of embeddings."""
    if cfg.startswith("mlp"):
        tr = [samples[i] for i in idx]
        y = np.array([s.label for s in tr], dtype=np.float64)
        return _fit_mlp(bags.x[idx], y, weights(tr), hidden=int(cfg.split(":")[1]))
    return _lr_scorer(*fit_coef(cfg, bags, samples, idx))


def fit_coef(cfg: str, bags: Bags, samples: list[Sample], idx: np.ndarray) -> tuple[np.ndarray, float]:
    """Fits the logistic regression of configuration `cfg` (not `mlp`) on texts `idx`: (weights, bias)."""
    tr = [samples[i] for i in idx]
    y = np.array([s.label for s in tr], dtype=np.float64)
    w = weights(tr)
    cfg = cfg.removesuffix("-data")
    if cfg in ("emb", "max"):
        return fit(bags.x[idx], y, w)
    # windows of the training texts
    pos = {int(i): k for k, i in enumerate(idx)}
    sel = np.flatnonzero(np.isin(bags.owner, idx))
    own = np.array([pos[int(o)] for o in bags.owner[sel]], dtype=np.int64)
    counts = np.bincount(own, minlength=len(idx)).astype(np.float64)
    neg = y[own] == 0
    xs = [bags.x[idx], bags.w[sel[neg]]]
    ys = [y, np.zeros(int(neg.sum()))]
    ws = [w, w[own[neg]] / counts[own[neg]]]  # a benign text's windows together weigh what it weighs
    coef, bias = fit(np.vstack(xs), np.concatenate(ys), _norm(np.concatenate(ws), np.concatenate(ys)))
    if cfg == "mil":
        att = ~neg
        pw = predict(bags.w[sel[att]], coef, bias)
        best: dict[int, tuple[float, int]] = {}
        for j, (o, p) in enumerate(zip(own[att], pw, strict=True)):
            if p > best.get(int(o), (-1.0, -1))[0]:
                best[int(o)] = (float(p), int(sel[att][j]))
        rows = [r for _, r in best.values()]
        owners = np.array(list(best.keys()), dtype=np.int64)
        xs.append(bags.w[rows])
        ys.append(np.ones(len(rows)))
        ws.append(w[owners])
        coef, bias = fit(np.vstack(xs), np.concatenate(ys), _norm(np.concatenate(ws), np.concatenate(ys)))
    return coef, bias


def _norm(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = w.copy()
    for label in (0, 1):
        m = y == label
        out[m] /= 2 * out[m].sum()
    return out


def _fit_mlp(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, hidden: int, steps: int = 250,
             l2: float = 3e-3, lr: float = 0.02) -> Scorer:
    """One hidden tanh layer, weighted log loss + L2, full-batch Adam, seeded (float32: ~5 s a fit here)."""
    rng = np.random.default_rng(SEED)
    x, y, w = x.astype(np.float32), y.astype(np.float32), w.astype(np.float32)
    d = x.shape[1]
    params: list[np.ndarray] = [rng.normal(0, 1 / np.sqrt(d), (d, hidden)).astype(np.float32),
              np.zeros(hidden, np.float32),
              rng.normal(0, 1 / np.sqrt(hidden), hidden).astype(np.float32), np.zeros(1, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        a1, b1, a2, b2 = params
        h = np.tanh(x @ a1 + b1)
        z = h @ a2 + b2[0]
        p = 1 / (1 + np.exp(-np.clip(z, -40, 40)))
        g = w * (p - y)
        ga2 = h.T @ g + l2 * a2
        gb2 = np.array([g.sum()])
        gh = np.outer(g, a2) * (1 - h * h)
        ga1 = x.T @ gh + l2 * a1
        gb1 = gh.sum(axis=0)
        for k, gr in enumerate((ga1, gb1, ga2, gb2)):
            m[k] = 0.9 * m[k] + 0.1 * gr
            v[k] = 0.999 * v[k] + 0.001 * gr * gr
            params[k] = params[k] - lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    a1, b1, a2, b2 = (np.array(p) for p in params)

    def score(e: np.ndarray) -> np.ndarray:
        z = np.tanh(e.astype(np.float64) @ a1 + b1) @ a2 + b2[0]
        return np.asarray(1 / (1 + np.exp(-np.clip(z, -40, 40))))

    return score


def pool_of(cfg: str) -> str:
    if cfg == "emb" or cfg.startswith("mlp"):
        return "text"
    return "data" if cfg.endswith("-data") else "max"


def oof(cfg: str, bags: Bags, samples: list[Sample], idx: np.ndarray, folds: int = 4) -> np.ndarray:
    """Out-of-fold pooled probabilities of texts `idx` (families dealt into folds as `out_of_fold` does)."""
    tr = [samples[i] for i in idx]
    fams = sorted({s.family for s in tr})
    order = np.random.default_rng(SEED).permutation(len(fams))
    fold_of = {fams[j]: i % folds for i, j in enumerate(order)}
    fold = np.array([fold_of[s.family] for s in tr])
    out = np.zeros(len(idx))
    for k in range(folds):
        scorer = fit_variant(cfg, bags, samples, idx[fold != k])
        out[fold == k] = bags.pooled(scorer, idx[fold == k], pool_of(cfg))
    return out


def held_out(cfg: str, bags: Bags, samples: list[Sample], rules: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Detections of the texts `test` (mask) by a model and thresholds that never saw them."""
    train = np.flatnonzero(~test)
    t_low, t_flag = choose_thresholds(oof(cfg, bags, samples, train), rules[train], [samples[i] for i in train])
    scorer = fit_variant(cfg, bags, samples, train)
    te = np.flatnonzero(test)
    return detected(rules[te], bags.pooled(scorer, te, pool_of(cfg)), t_low, t_flag)


# guard5 (route 3, not shipped): the pre-trained MLP's output appended to each embedding as extra features
# (bench/guard_pretrained.py): `logit` its logit / LOGIT_SCALE (one column), `hidden` its 128 last hidden
# units (ReLU) / HIDDEN_SCALE. bench/guard_window_select.py --pretrained compares them.
PRETRAINED_VIEWS = ("logit", "hidden")
LOGIT_SCALE = 10.0
HIDDEN_SCALE = 10.0


def pretrained_features(e: np.ndarray, view: str) -> np.ndarray:
    """The extra columns of view `view` for embeddings `e` (n, 384)."""
    from bench.guard_pretrained import load_mlp

    mlp = load_mlp()
    if view == "logit":
        return (mlp.logits(e) / LOGIT_SCALE)[:, None]
    return mlp.hidden(e).astype(np.float64) / HIDDEN_SCALE


def augment(bags: Bags, view: str | None) -> Bags:
    """`bags` with the pre-trained view's columns appended to every text and window embedding (None: as is)."""
    if not view:
        return bags
    x = np.hstack([bags.x.astype(np.float64), pretrained_features(bags.x, view)])
    w = np.hstack([bags.w.astype(np.float64), pretrained_features(bags.w, view)]) if len(bags.w) else bags.w
    return Bags(x, w, bags.owner, bags.data)


def load_bags(samples: list[Sample], *, progress: bool = True) -> Bags:
    """The bags of `samples` (embedding what the cache lacks)."""
    x = embed_all([s.text for s in samples], progress=False)
    ws = all_windows([s.text for s in samples])
    flat = [w for ww in ws for w in ww]
    owner = np.array([i for i, ww in enumerate(ws) for _ in ww], dtype=np.int64)
    w = embed_all(flat, progress=progress) if flat else np.zeros((0, x.shape[1]), dtype=np.float32)
    windowed = GuardConfig().window_sources
    return Bags(x, w, owner, np.array([s.source in windowed for s in samples]))


