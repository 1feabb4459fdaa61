"""Training pieces shared by `bench/guard_train.py` (the shipped model) and `bench/guard_eval.py` (held-out runs).

- `fit()`: L2-regularised logistic regression by Newton's method in numpy (deterministic: no sampling), with
  sample weights that give each class the same total and each family within it the same total (so the 1,100
  in-the-wild jailbreaks do not drown a family of 20). The penalty and the family weighting were chosen by
  leave-one-family-out figures on the development families only (the five families under target in
  BENCHMARKS.md left out of the choice and of the printout): equal family totals beat sqrt(size) totals
  (macro detection 0.858 vs 0.805 at the same penalty), and the penalty 3e-3 was the best of 3e-4..1e-2.
- `out_of_fold()`: probabilities for every sample from a model that never saw its family (group k-fold).
- `choose_thresholds()`: the learned layer's two thresholds, from out-of-fold probabilities and the rules'
  scores: the most attack families caught (macro average) with at most `MAX_FP` false positives on benign
  text and none on our marketplace and listing hard negatives, even with `ZERO_MARGIN` added to their
  probabilities.
- `rule_scores()`: the rules' score for each sample (`screen()` with the learned layer off), cached.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_features import Features, fit_two_view, predict_two_view  # noqa: E402
from bench.guard_sources import Sample  # noqa: E402
from chains.guard import GuardConfig, screen  # noqa: E402
from chains.guard.learned import MAX_WEIGHT  # noqa: E402
from chains.guard.rules import PATTERNS_FILE  # noqa: E402
from errors import InputTooLong  # noqa: E402

__all__ = ["MAX_FP", "ZERO_FP", "choose_thresholds", "detected", "fit", "out_of_fold", "rule_scores", "weights"]

SEED = 17
# guard3 tried a second feature view (hashed word and character n-grams as two naive-Bayes scores,
# bench/guard_features.py) and does not ship it: under guard_eval's own protocol on the development families
# only (bench/guard_select.py --nested; the families under target neither fitted nor shown) the embedding
# alone scored macro 0.880 against 0.866 with the n-grams (the simpler out-of-fold comparison had said 0.856
# against 0.885: it chose thresholds on the very probabilities it scored).
TWO_VIEW = False
# guard4: the learned layer's configuration over sentence windows (bench/guard_bags.py; None = whole texts
# only, as before guard4), chosen by bench/guard_window_select.py on the development families only: nested
# macro emb 0.921, max 0.928, neg 0.931, mil 0.932, neg-data 0.928 (all 0 false positives), mlp:32 0.909 (1 FP);
# neg-data because windows for chat turns cost an ONNX run per window (the 3 ms p99 per chat turn).
WINDOWS: str | None = "neg-data"
L2 = 3e-3
FAMILY_POWER = 1.0  # a family's weight within its class is size ** (1 - FAMILY_POWER): 1.0 = equal totals
MAX_FP = 0.005  # the thresholds keep dev false positives at half the 1% target
ZERO_FP = frozenset({"marketplace", "marketplace_holdout", "marketplace_hard", "listing_hard", "ours_requests_benign",
                     "ours_direct_benign"})
FLAG_AT = 0.5
# The zero-false-positive families must stay clear of the flag threshold by this much probability: a family
# held out is scored by a model that never saw it, so zero in-fold is not zero out of it. Chosen on benign
# data only: the smallest of 0, 0.05, 0.1, 0.15 with no false positive on any zero-FP family held out in
# turn (guard2: 0: 2/40 marketplace_hard, 0.05: 1/40, 0.1: 0; guard3, with its new corpora, the embedding
# alone and with the n-gram view alike: 0.1: 1/40 marketplace_hard, 0.15: 0 on all six zero-FP families,
# `guard_eval.py --families <the six> --no-templates --zero-margin M`).
ZERO_MARGIN = 0.15
RULES_CACHE = ROOT / "bench" / ".cache" / "guard" / "rule_scores.json"


def weights(samples: Sequence[Sample]) -> np.ndarray:
    """Per-sample weights: each class sums to 1, each family within it to its size ** (1 - FAMILY_POWER)."""
    sizes: dict[tuple[int, str], int] = defaultdict(int)
    for s in samples:
        sizes[(s.label, s.family)] += 1
    raw = np.array([sizes[(s.label, s.family)] ** -FAMILY_POWER for s in samples], dtype=np.float64)
    for label in (0, 1):
        mask = np.array([s.label == label for s in samples])
        if mask.any():
            raw[mask] /= raw[mask].sum()
    return raw / 2.0


def fit(x: np.ndarray | Features, y: np.ndarray, w: np.ndarray, *, l2: float = L2,
        iters: int = 30) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression (Newton's method); returns (weights, bias). Given `Features` (the
    embedding and the hashed n-grams), the two-view fit of `bench/guard_features.py`.

    Args:
        x: (n, d) features, or `Features`.
        y: (n,) labels 0/1.
        w: (n,) sample weights (summing to 1).
        l2: the penalty on the weights (not the bias).
        iters: at most this many Newton steps.
    """
    if isinstance(x, Features):
        return fit_two_view(x, y, w, lambda xd, yd, wd: fit(xd, yd, wd, l2=l2, iters=iters))
    n, d = x.shape
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iters):
        z = np.clip(xb @ theta, -40, 40)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = xb.T @ (w * (p - y)) + reg * theta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-6:
            break
    return theta[:-1], float(theta[-1])


def predict(x: np.ndarray | Features, coef: np.ndarray, bias: float) -> np.ndarray:
    if isinstance(x, Features):
        return predict_two_view(x, coef, bias)
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64) @ coef + bias, -40, 40)))


def out_of_fold(x: np.ndarray | Features, samples: Sequence[Sample], *, folds: int = 4) -> np.ndarray:
    """Each sample's probability from a model fitted without its family (families dealt into `folds`
    groups by a seeded shuffle)."""
    fams = sorted({s.family for s in samples})
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(fams))
    fold_of = {fams[j]: i % folds for i, j in enumerate(order)}
    y = np.array([s.label for s in samples], dtype=np.float64)
    out = np.zeros(len(samples))
    for k in range(folds):
        test = np.array([fold_of[s.family] == k for s in samples])
        train = ~test
        tr = [s for s, t in zip(samples, train, strict=True) if t]
        coef, bias = fit(x[train], y[train], weights(tr))
        out[test] = predict(x[test], coef, bias)
    return out


def learned_weight(p: np.ndarray, t_low: float, t_flag: float, flag_at: float = FLAG_AT) -> np.ndarray:
    """`LearnedModel.weight` over an array."""
    low = np.where(p < t_low, 0.0, flag_at * (p - t_low) / (t_flag - t_low))
    high = flag_at + (MAX_WEIGHT - flag_at) * (p - t_flag) / max(1 - t_flag, 1e-9)
    return np.where(p < t_flag, low, high)


def detected(rules: np.ndarray, p: np.ndarray | None, t_low: float, t_flag: float) -> np.ndarray:
    """Flag or block: the noisy-OR of the rules' score and the learned weight reaches the flag threshold."""
    if p is None:
        return rules >= FLAG_AT
    score = 1 - (1 - rules) * (1 - learned_weight(p, t_low, t_flag))
    return score >= FLAG_AT - 1e-9


def choose_thresholds(p: np.ndarray, rules: np.ndarray, samples: Sequence[Sample]) -> tuple[float, float]:
    """(t_low, t_flag) with the best macro detection over attack families under the false-positive limits.

    Args:
        p: out-of-fold probabilities.
        rules: the rules' scores.
        samples: the samples (labels, families).
    """
    ok = ~np.isnan(rules)  # texts over the length limit never reach the guard
    samples = [s for s, k in zip(samples, ok, strict=True) if k]
    p, rules = p[ok], rules[ok]
    labels = np.array([s.label for s in samples])
    fams = np.array([s.family for s in samples])
    zero = np.array([s.family in ZERO_FP for s in samples])
    attack_fams = sorted({s.family for s in samples if s.label == 1})
    masks = [(fams == f) & (labels == 1) for f in attack_fams]
    benign = labels == 0
    best = (-1.0, 0.98, 0.99)
    for t_flag in np.round(np.arange(0.50, 0.995, 0.01), 3):
        for frac in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
            t_low = round(float(t_flag) * frac, 3)
            if frac == 1.0:
                t_low = round(float(t_flag) - 1e-3, 4)
            hit = detected(rules, p, t_low, float(t_flag))
            near = detected(rules, np.minimum(p + ZERO_MARGIN, 1.0), t_low, float(t_flag))
            if hit[benign].mean() > MAX_FP or near[benign & zero].any():
                continue
            macro = float(np.mean([hit[m].mean() for m in masks]))
            if macro > best[0] + 1e-9:
                best = (macro, t_low, float(t_flag))
    return best[1], best[2]


def rule_scores(samples: Sequence[Sample]) -> np.ndarray:
    """The rules' score for each sample (learned layer off; NaN for a text over the length limit, which
    validation refuses before any screening), cached by text, source and the rules file."""
    tag = hashlib.sha1(PATTERNS_FILE.read_bytes()).hexdigest()[:12]
    cache: dict[str, float] = {}
    if RULES_CACHE.exists():
        doc = json.loads(RULES_CACHE.read_text(encoding="utf-8"))
        if doc.get("rules") == tag:
            cache = doc["scores"]
    cfg = GuardConfig(learned=False)
    out = []
    for s in samples:
        k = hashlib.sha1(f"{s.source}\0{s.text}".encode("utf-8", "surrogatepass")).hexdigest()
        if k not in cache:
            try:
                cache[k] = screen(s.text, source=s.source, config=cfg).score
            except InputTooLong:
                cache[k] = -1.0  # over the length limit: refused by validation, never screened
        out.append(cache[k] if cache[k] >= 0 else math.nan)
    RULES_CACHE.parent.mkdir(parents=True, exist_ok=True)
    RULES_CACHE.write_text(json.dumps({"rules": tag, "scores": cache}), encoding="utf-8")
    return np.array(out)
