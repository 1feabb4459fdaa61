"""Chooses the learned layer's features and penalties on development families only (guard3).

The families under target in BENCHMARKS.md (and the benign rows of the same packages) are left out of every
fit here and never printed: they stay unseen for `bench/guard_eval.py`. On what remains, every family is
scored by a model fitted without it (leave-one-family-out), the two thresholds are chosen on those
probabilities with the rules (`choose_thresholds`), and the macro detection over attack families and the
false positives are printed per configuration.

    .venv/bin/python bench/guard_select.py [--configs emb,hash16:3e-3:3e-3,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_embed import embed_all  # noqa: E402
from bench.guard_features import Features, build_features, fit_two_view, predict_two_view  # noqa: E402
from bench.guard_learn import ZERO_FP, choose_thresholds, detected, fit, predict, rule_scores, weights  # noqa: E402
from bench.guard_sources import Sample, load_all  # noqa: E402

__all__ = ["UNSEEN", "main"]

# Under target on 2026-12-07 (BENCHMARKS.md) and the benign rows of their packages: never fitted, never shown.
UNSEEN = frozenset({
    "pyrit_jailbreakchat", "pyrit_arth_singh", "bastion_direct", "hermes_jailbench", "agentprobe_direct",
    "nullsec", "weiseer", "jbmini", "aib_indirect", "bastion_indirect", "agentprobe_indirect",
    "tripwire_indirect", "dual_llm_indirect", "bastion_benign", "agentprobe_benign",
})


def _lofo(x: Any, samples: list[Sample], fitter: Callable[..., tuple[np.ndarray, float]],
          predictor: Callable[..., np.ndarray]) -> np.ndarray:
    fams = np.array([s.family for s in samples])
    y = np.array([s.label for s in samples], dtype=np.float64)
    out = np.zeros(len(samples))
    for fam in sorted(set(fams)):
        test = fams == fam
        tr = [s for s, t in zip(samples, ~test, strict=True) if t]
        coef, bias = fitter(x[~test], y[~test], weights(tr))
        out[test] = predictor(x[test], coef, bias)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="emb,nb:1e-5:3e-3,nb:1e-4:3e-3,nb:1e-6:3e-3",
                    help="emb (the embedding alone) or nb:ALPHA:L2 (two views), comma-separated")
    ap.add_argument("--nested", action="store_true",
                    help="guard_eval's protocol on the development families: each held out with thresholds chosen "
                         "without it (out-of-fold over the others), the zero-FP margin of --zero-margin")
    ap.add_argument("--zero-margin", type=float, default=None)
    args = ap.parse_args()
    samples = [s for s in load_all() if s.family not in UNSEEN]
    emb = embed_all([s.text for s in samples], progress=False)
    feats = build_features([s.text for s in samples], emb, [s.family for s in samples])
    rules = rule_scores(samples)
    labels = np.array([s.label for s in samples])
    fams = np.array([s.family for s in samples])
    attack_fams = sorted({s.family for s in samples if s.label == 1})
    print(f"{len(samples)} development samples, {len(attack_fams)} attack families")
    if args.nested:
        _nested(args, samples, emb, feats, rules)
        return
    for cfg in args.configs.split(","):
        t0 = time.monotonic()
        if cfg == "emb":
            p = _lofo(emb, samples, fit, predict)
        else:
            _, a, b = cfg.split(":")

            def fitter(f: Features, y: np.ndarray, w: np.ndarray, a: float = float(a),
                       b: float = float(b)) -> tuple[np.ndarray, float]:
                return fit_two_view(f, y, w, lambda xd, yd, wd: fit(xd, yd, wd, l2=b), alpha=a)

            p = _lofo(feats, samples, fitter, predict_two_view)
        t_low, t_flag = choose_thresholds(p, rules, samples)
        hit = detected(np.nan_to_num(rules), p, t_low, t_flag)
        per = {f: float(hit[(fams == f) & (labels == 1)].mean()) for f in attack_fams}
        benign = labels == 0
        zero = np.array([f in ZERO_FP for f in fams]) & benign
        # ranking alone: attack recall of the learned layer at the threshold passing 0.5% of benign
        cut = float(np.quantile(p[benign], 0.995))
        alone = float(np.mean([(p[(fams == f) & (labels == 1)] > cut).mean() for f in attack_fams]))
        print(f"{cfg:22} macro {np.mean(list(per.values())):.3f}  learned-alone macro {alone:.3f}  "
              f"fp {int(hit[benign].sum())}/{int(benign.sum())} zero-fp {int(hit[zero].sum())}  "
              f"t {t_low:.3f}/{t_flag:.3f}  ({time.monotonic() - t0:.0f} s)")
        print("   " + "  ".join(f"{f}:{v:.2f}" for f, v in per.items()))


def _nested(args: argparse.Namespace, samples: list[Sample], emb: np.ndarray, feats: Features,
            rules: np.ndarray) -> None:
    from bench import guard_learn
    from bench.guard_eval import _held_out

    if args.zero_margin is not None:
        guard_learn.ZERO_MARGIN = args.zero_margin
    fams = np.array([s.family for s in samples])
    r = np.nan_to_num(rules)
    for cfg in args.configs.split(","):
        t0 = time.monotonic()
        x: Any = emb if cfg == "emb" else feats
        det: list[tuple[str, float, int]] = []
        fp: list[tuple[str, float, int]] = []
        for fam in sorted(set(fams)):
            test = fams == fam
            hit = _held_out(x, samples, r, test)
            label = next(s.label for s in samples if s.family == fam)
            (det if label else fp).append((fam, float(hit.mean()), int(hit.sum())))
        print(f"{cfg:8} nested macro {np.mean([d for _, d, _ in det]):.3f}  false positives "
              f"{sum(k for _, _, k in fp)} ({', '.join(f'{f} {k}' for f, _, k in fp if k)})  "
              f"({time.monotonic() - t0:.0f} s)")
        print("   " + "  ".join(f"{f}:{d:.2f}" for f, d, _ in det))


if __name__ == "__main__":
    main()
