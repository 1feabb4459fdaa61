"""Window pooling and other heads for the learned layer, chosen under the nested protocol on development
families only (guard4, issue 17 routes 1 and 2).

Each development family is held out in turn; on the rest, out-of-fold probabilities (4 folds by family, as
`guard_learn.out_of_fold`) choose the thresholds with the rules (`choose_thresholds`), a model fitted on the
rest scores the held-out family. The families under target (`guard_select.UNSEEN`) are never fitted nor
printed. The configurations are `bench/guard_bags.py`'s (`emb` is what shipped before guard4).

    .venv/bin/python bench/guard_window_select.py [--configs emb,max,neg,mil,neg-data,mlp:32] [--families a,b]
        [--pretrained none,logit,hidden] [--sources listing,describe] [--unaddressed]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_bags import augment, held_out, load_bags  # noqa: E402
from bench.guard_learn import rule_scores  # noqa: E402
from bench.guard_select import UNSEEN  # noqa: E402
from bench.guard_sources import load_all  # noqa: E402

__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="emb,max,neg,mil")
    ap.add_argument("--families", help="development families to hold out (default: every one)")
    ap.add_argument("--sources", help="only texts from these sources, e.g. listing,describe (guard5: a data-source "
                    "specialist fitted and evaluated on data-source families alone)")
    ap.add_argument("--unaddressed", action="store_true",
                    help="include guard5's ours_unaddressed families (bench/guard_sources_extra.py UNADDRESSED; tried, "
                         "not shipped)")
    ap.add_argument("--pretrained", default="",
                    help="comma-separated views of the pre-trained MLP to compare (guard5: none,logit,hidden)")
    args = ap.parse_args()
    if args.unaddressed:
        from bench import guard_sources_extra

        guard_sources_extra.UNADDRESSED = True
    keep = set(args.sources.split(",")) if args.sources else None
    samples = [s for s in load_all() if s.family not in UNSEEN and (keep is None or s.source in keep)]
    plain = load_bags(samples)
    raw = rule_scores(samples)
    rules = np.nan_to_num(raw)  # as guard_eval: the thresholds see every text
    screened = ~np.isnan(raw)  # the figures only the texts that reach the guard (<= 4,000 characters)
    fams = np.array([s.family for s in samples])
    chosen = sorted(set(fams)) if not args.families else args.families.split(",")
    print(f"{len(samples)} development samples, {len(plain.w)} windows")
    runs = [(c, v) for v in (args.pretrained.split(",") if args.pretrained else ["none"])
            for c in args.configs.split(",")]
    for cfg, view in runs:
        bags = augment(plain, None if view == "none" else view)
        t0 = time.monotonic()
        det: list[tuple[str, float]] = []
        fp: list[tuple[str, int]] = []
        for fam in chosen:
            test = fams == fam
            hit = held_out(cfg, bags, samples, rules, test)[screened[test]]
            if samples[int(np.flatnonzero(test)[0])].label:
                det.append((fam, float(hit.mean())))
            else:
                fp.append((fam, int(hit.sum())))
        print(f"{cfg}+{view:8} nested macro {np.mean([d for _, d in det]):.3f}  false positives "
              f"{sum(k for _, k in fp)} ({', '.join(f'{f} {k}' for f, k in fp if k)})  "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
        print("   " + "  ".join(f"{f}:{d:.2f}" for f, d in det), flush=True)


if __name__ == "__main__":
    main()
